select
    msoa11cd as msoa11_code,
    msoa11nm as msoa11_ons_name,
    msoa11hclnm as msoa11_name
from {{ ref('leeds_msoa11_hocl_names') }}
