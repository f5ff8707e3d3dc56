select
    batch_id,
    row_number as source_row_number,
    cast(position as integer) as diagnosis_position,
    icd10_code
from {{ source('store', 'spell_diagnoses') }}
