select
    batch_id,
    row_number as source_row_number,
    person_id,
    practice_code,
    registration_start,
    registration_end,
    date_of_death
from {{ source('store', 'registrations') }}
