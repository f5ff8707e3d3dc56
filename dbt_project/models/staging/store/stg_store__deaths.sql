select
    batch_id,
    row_number as source_row_number,
    person_id,
    date_of_death,
    registration_date,
    place_of_death,
    sex,
    lsoa21_code,
    lsoa11_code,
    msoa11_code,
    ward_code,
    imd_decile,
    imd_quintile,
    cast(age_at_event as integer) as age_at_death
from {{ source('store', 'deaths') }}
