select
    batch_id,
    row_number as source_row_number,
    person_id,
    provider_code,
    admission_date,
    discharge_date,
    admission_method,
    cast(age_at_event as integer) as age_at_admission
from {{ source('store', 'apc_spells') }}
