select
    batch_id,
    row_number as source_row_number,
    cast(position as integer) as cause_position,
    icd10_code
from {{ source('store', 'death_causes') }}
