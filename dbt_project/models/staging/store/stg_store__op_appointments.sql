select
    batch_id,
    row_number as source_row_number,
    person_id,
    provider_code,
    appointment_date,
    treatment_function,
    first_attendance,
    attendance_status
from {{ source('store', 'op_appointments') }}
