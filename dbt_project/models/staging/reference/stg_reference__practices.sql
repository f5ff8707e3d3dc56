-- Practices with their PCN. The name is the practice's registered name in NHS ODS (public, and
-- sometimes a partner's name, as the practice itself is called).
select
    org_code as practice_code,
    name as practice_name,
    pcn_code,
    pcn_name
from {{ ref('leeds_practices_2023_pcn_imd') }}
