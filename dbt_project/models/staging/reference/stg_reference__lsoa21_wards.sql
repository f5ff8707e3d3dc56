select
    lsoa21_code,
    lsoa21_name,
    ward24_code as ward_code,
    ward24_name as ward_name
from {{ ref('leeds_lsoa21_ward24_lookup') }}
