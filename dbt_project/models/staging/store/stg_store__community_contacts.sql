select
    batch_id,
    row_number as source_row_number,
    person_id,
    referral_date,
    contact_date,
    service_type,
    team_type,
    contact_mode,
    attended
from {{ source('store', 'community_contacts') }}
