-- Practice to PCN only: practice names are not carried forward (many are a partner's name).
select
    org_code as practice_code,
    pcn_code,
    pcn_name
from {{ ref('leeds_practices_2023_pcn_imd') }}
