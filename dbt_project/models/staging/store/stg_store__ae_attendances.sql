select
    batch_id,
    row_number as source_row_number,
    person_id,
    provider_code,
    arrival_time,
    departure_time,
    cast(arrival_time as date) as arrival_date,
    chief_complaint,
    acuity,
    discharge_destination
from {{ source('store', 'ae_attendances') }}
