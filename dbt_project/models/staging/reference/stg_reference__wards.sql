-- One row per Leeds electoral ward (the LSOA lookup repeats each ward once per LSOA).
select distinct
    ward_code,
    ward_name
from {{ ref('stg_reference__lsoa21_wards') }}
