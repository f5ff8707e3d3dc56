-- Each linked person's use of services in the 12 months to reporting_period_end (dates after the
-- start of the window, up to and including its end), and their emergency admissions for each
-- condition of the admission_indicators var (primary diagnosis in its ICD-10 codelist).
{% set emergency = "('21', '22', '23', '24', '25', '2A', '2B', '2C', '2D', '28')" %}
with primary_diagnoses as (
    select
        batch_id,
        source_row_number,
        icd10_code
    from {{ ref('stg_store__spell_diagnoses') }}
    where diagnosis_position = 0
),

spells as (
    select
        person_id,
        sum(case when admission_method in {{ emergency }} then 1 else 0 end) as emergency_admissions,
        sum(case when admission_method in ('11', '12', '13') then 1 else 0 end) as elective_admissions,
        sum({{ dbt.datediff('admission_date', 'coalesce(discharge_date, ' ~ reporting_period_end() ~ ')', 'day') }})
            as bed_days
    from {{ ref('stg_store__apc_spells') }}
    where
        person_id is not null
        and {{ in_reporting_year('admission_date') }}
    group by person_id
),

indicator_codes as (
    {% for indicator in ldm_admission_indicators() %}
        select
            '{{ indicator.measure }}' as measure,
            cast(code as {{ dbt.type_string() }}) as icd10_code
        from {{ ref(indicator.codelist) }}
        {% if not loop.last %}union all{% endif %}
    {% endfor %}
),

indicators as (
    -- A spell counts for every indicator whose codelist holds its primary diagnosis.
    select
        spells.person_id,
        {% for indicator in ldm_admission_indicators() %}
            sum(case when codes.measure = '{{ indicator.measure }}' then 1 else 0 end) as {{ indicator.measure }},
        {% endfor %}
        count(*) as indicator_admissions
    from {{ ref('stg_store__apc_spells') }} as spells
    inner join primary_diagnoses
        on
            spells.batch_id = primary_diagnoses.batch_id
            and spells.source_row_number = primary_diagnoses.source_row_number
    inner join indicator_codes as codes
        on primary_diagnoses.icd10_code = codes.icd10_code
    where
        spells.person_id is not null
        and spells.admission_method in {{ emergency }}
        and {{ in_reporting_year('spells.admission_date') }}
    group by spells.person_id
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
    {% for indicator in ldm_admission_indicators() %}
        coalesce(indicators.{{ indicator.measure }}, 0) as {{ indicator.measure }},
    {% endfor %}
    coalesce(community.community_contacts, 0) as community_contacts
from {{ ref('stg_store__persons') }} as persons
left join spells on persons.person_id = spells.person_id
left join outpatients on persons.person_id = outpatients.person_id
left join ae on persons.person_id = ae.person_id
left join community on persons.person_id = community.person_id
left join indicators on persons.person_id = indicators.person_id
