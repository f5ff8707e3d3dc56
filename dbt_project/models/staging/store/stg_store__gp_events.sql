select
    batch_id,
    row_number as source_row_number,
    person_id,
    event_date,
    snomed_code,
    value as event_value,
    unit as event_unit,
    practice_code
from {{ source('store', 'gp_events') }}
