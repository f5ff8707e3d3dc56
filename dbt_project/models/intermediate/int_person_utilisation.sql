-- Each linked person's use of services in the 12 months to reporting_period_end (dates after the
-- start of the window, up to and including its end).
with spells as (
    select
        person_id,
        sum(case
            when admission_method in ('21', '22', '23', '24', '25', '2A', '2B', '2C', '2D', '28')
                then 1
            else 0
        end) as emergency_admissions,
        sum(case when admission_method in ('11', '12', '13') then 1 else 0 end) as elective_admissions,
        sum({{ dbt.datediff('admission_date', 'coalesce(discharge_date, ' ~ reporting_period_end() ~ ')', 'day') }})
            as bed_days
    from {{ ref('stg_store__apc_spells') }}
    where
        person_id is not null
        and {{ in_reporting_year('admission_date') }}
    group by person_id
),

outpatients as (
    select
        person_id,
        sum(case when attendance_status in ('5', '6') then 1 else 0 end) as outpatient_attendances,
        sum(case when attendance_status = '3' then 1 else 0 end) as outpatient_dnas
    from {{ ref('stg_store__op_appointments') }}
    where
        person_id is not null
        and {{ in_reporting_year('appointment_date') }}
    group by person_id
),

ae as (
    select
        person_id,
        count(*) as ae_attendances
    from {{ ref('stg_store__ae_attendances') }}
    where
        person_id is not null
        and {{ in_reporting_year('arrival_date') }}
    group by person_id
),

community as (
    select
        person_id,
        sum(case when attended = 'Y' then 1 else 0 end) as community_contacts
    from {{ ref('stg_store__community_contacts') }}
    where
        person_id is not null
        and {{ in_reporting_year('contact_date') }}
    group by person_id
)

select
    persons.person_id,
    coalesce(spells.emergency_admissions, 0) as emergency_admissions,
    coalesce(spells.elective_admissions, 0) as elective_admissions,
    coalesce(spells.bed_days, 0) as bed_days,
    coalesce(outpatients.outpatient_attendances, 0) as outpatient_attendances,
    coalesce(outpatients.outpatient_dnas, 0) as outpatient_dnas,
    coalesce(ae.ae_attendances, 0) as ae_attendances,
    coalesce(community.community_contacts, 0) as community_contacts
from {{ ref('stg_store__persons') }} as persons
left join spells on persons.person_id = spells.person_id
left join outpatients on persons.person_id = outpatients.person_id
left join ae on persons.person_id = ae.person_id
left join community on persons.person_id = community.person_id
