select
    person_id,
    cast(year_of_birth as integer) as year_of_birth,
    cast(month_of_birth as integer) as month_of_birth,
    sex,
    practice_code,
    lsoa21_code,
    lsoa11_code,
    msoa11_code,
    ward_code,
    cast(imd_decile as integer) as imd_decile,
    cast(imd_quintile as integer) as imd_quintile,
    date_of_death,
    registered as is_registered,
    ethnic_category
from {{ source('store', 'persons') }}
