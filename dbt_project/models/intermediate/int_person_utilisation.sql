-- Each linked person's use of services in each 12-month window of period_windows() (the periods to
-- build whose window the data cover, and the 12 months to reporting_period_end; a window runs from
-- period_start to period_end, both included), their emergency admissions for each indicator of the
-- admission_indicators var (primary diagnosis in its ICD-10 codelist, a secondary one in its
-- secondary codelist, aged at least its min_age at admission), and their spells discharged in the
-- window with the emergency readmissions within 30 days of those discharges. One row per window
-- and person with any activity in it: a person with no row used no service then.
{% set emergency = "('21', '22', '23', '24', '25', '2A', '2B', '2C', '2D', '28')" %}
with periods as (
    {{ period_windows() }}
),

diagnoses as (
    select
        batch_id,
        source_row_number,
        diagnosis_position,
        icd10_code
    from {{ ref('stg_store__spell_diagnoses') }}
),

emergency_spells as (
    select
        batch_id,
        source_row_number,
        person_id,
        admission_date,
        age_at_admission
    from {{ ref('stg_store__apc_spells') }}
    where person_id is not null and admission_method in {{ emergency }}
),

{% set indicators = ldm_admission_indicators() %}
{% set coded = indicators | selectattr('codelist') | list %}
{% set secondary = indicators | selectattr('secondary_codelist', 'defined') | selectattr('secondary_codelist') | list %}
indicator_codes as (
    {% for indicator in coded %}
        select
            '{{ indicator.measure }}' as measure,
            cast(code as {{ dbt.type_string() }}) as icd10_code
        from {{ ref(indicator.codelist) }}
        {% if not loop.last %}union all{% endif %}
    {% endfor %}
),

{% if secondary %}
    secondary_codes as (
        {% for indicator in secondary %}
            select
                '{{ indicator.measure }}' as measure,
                cast(code as {{ dbt.type_string() }}) as icd10_code
            from {{ ref(indicator.secondary_codelist) }}
            {% if not loop.last %}union all{% endif %}
        {% endfor %}
    ),
{% endif %}

spell_indicators as (
    -- Each emergency spell and every indicator it counts for.
    {% for indicator in indicators %}
        select
            spells.person_id,
            spells.admission_date,
            '{{ indicator.measure }}' as measure
        from emergency_spells as spells
        where
            {% if indicator.min_age is defined and indicator.min_age is not none %}
                spells.age_at_admission >= {{ indicator.min_age }}
            {% else %}
                true
            {% endif %}
            {% if indicator.codelist %}
                and exists (
                    select 1
                    from diagnoses
                    inner join indicator_codes as codes
                        on diagnoses.icd10_code = codes.icd10_code
                    where
                        codes.measure = '{{ indicator.measure }}'
                        and diagnoses.diagnosis_position = 0
                        and diagnoses.batch_id = spells.batch_id
                        and diagnoses.source_row_number = spells.source_row_number
                )
            {% endif %}
            {% if indicator.secondary_codelist is defined and indicator.secondary_codelist %}
                and exists (
                    select 1
                    from diagnoses
                    inner join secondary_codes as codes
                        on diagnoses.icd10_code = codes.icd10_code
                    where
                        codes.measure = '{{ indicator.measure }}'
                        and diagnoses.diagnosis_position > 0
                        and diagnoses.batch_id = spells.batch_id
                        and diagnoses.source_row_number = spells.source_row_number
                )
            {% endif %}
        {% if not loop.last %}union all{% endif %}
    {% endfor %}
),

indicators as (
    select
        periods.period_start,
        periods.period_end,
        spell_indicators.person_id,
        {% for indicator in indicators %}
            sum(case when spell_indicators.measure = '{{ indicator.measure }}' then 1 else 0 end)
                as {{ indicator.measure }},
        {% endfor %}
        count(*) as indicator_admissions
    from spell_indicators
    inner join periods
        on {{ in_period('spell_indicators.admission_date') }}
    group by periods.period_start, periods.period_end, spell_indicators.person_id
),

discharges as (
    -- Spells discharged (not maternity: admission methods 31 and 32) and whether an emergency
    -- admission of the same person followed within 30 days (0 to 29 days after the discharge date).
    select
        spells.person_id,
        spells.discharge_date,
        case
            when exists (
                select 1
                from emergency_spells as next_spell
                where
                    next_spell.person_id = spells.person_id
                    and next_spell.admission_date >= spells.discharge_date
                    and next_spell.admission_date < {{ dbt.dateadd('day', 30, 'spells.discharge_date') }}
                    and not (
                        next_spell.batch_id = spells.batch_id
                        and next_spell.source_row_number = spells.source_row_number
                    )
            ) then 1 else 0
        end as readmitted
    from {{ ref('stg_store__apc_spells') }} as spells
    where
        spells.person_id is not null
        and spells.discharge_date is not null
        and spells.admission_method not in ('31', '32')
),

spells as (
    select
        periods.period_start,
        periods.period_end,
        spells.person_id,
        sum(case when spells.admission_method in {{ emergency }} then 1 else 0 end) as emergency_admissions,
        sum(case when spells.admission_method in ('11', '12', '13') then 1 else 0 end) as elective_admissions,
        sum({{ dbt.datediff('spells.admission_date', 'coalesce(spells.discharge_date, periods.period_end)', 'day') }})
            as bed_days
    from {{ ref('stg_store__apc_spells') }} as spells
    inner join periods
        on {{ in_period('spells.admission_date') }}
    where spells.person_id is not null
    group by periods.period_start, periods.period_end, spells.person_id
),

readmissions as (
    select
        periods.period_start,
        periods.period_end,
        discharges.person_id,
        count(*) as discharges,
        sum(discharges.readmitted) as emergency_readmissions_30_days
    from discharges
    inner join periods
        on {{ in_period('discharges.discharge_date') }}
    group by periods.period_start, periods.period_end, discharges.person_id
),

outpatients as (
    select
        periods.period_start,
        periods.period_end,
        records.person_id,
        sum(case when records.attendance_status in ('5', '6') then 1 else 0 end) as outpatient_attendances,
        sum(case when records.attendance_status = '3' then 1 else 0 end) as outpatient_dnas
    from {{ ref('stg_store__op_appointments') }} as records
    inner join periods
        on {{ in_period('records.appointment_date') }}
    where records.person_id is not null
    group by periods.period_start, periods.period_end, records.person_id
),

ae as (
    select
        periods.period_start,
        periods.period_end,
        records.person_id,
        count(*) as ae_attendances
    from {{ ref('stg_store__ae_attendances') }} as records
    inner join periods
        on {{ in_period('records.arrival_date') }}
    where records.person_id is not null
    group by periods.period_start, periods.period_end, records.person_id
),

community as (
    select
        periods.period_start,
        periods.period_end,
        records.person_id,
        sum(case when records.attended = 'Y' then 1 else 0 end) as community_contacts
    from {{ ref('stg_store__community_contacts') }} as records
    inner join periods
        on {{ in_period('records.contact_date') }}
    where records.person_id is not null
    group by periods.period_start, periods.period_end, records.person_id
),

active as (
    select
        period_start,
        period_end,
        person_id
    from spells
    union
    select
        period_start,
        period_end,
        person_id
    from outpatients
    union
    select
        period_start,
        period_end,
        person_id
    from ae
    union
    select
        period_start,
        period_end,
        person_id
    from community
    union
    select
        period_start,
        period_end,
        person_id
    from readmissions
)

{#- Each count and the CTE that counts it, in the table's column order. -#}
{% set counts = [
    ('spells', 'emergency_admissions'), ('spells', 'elective_admissions'), ('spells', 'bed_days'),
    ('outpatients', 'outpatient_attendances'), ('outpatients', 'outpatient_dnas'), ('ae', 'ae_attendances')] %}
{% for indicator in indicators %}{% do counts.append(('indicators', indicator.measure)) %}{% endfor %}
{% do counts.extend([('readmissions', 'discharges'), ('readmissions', 'emergency_readmissions_30_days'),
    ('community', 'community_contacts')]) %}
-- Counts as BIGINT (a sum of integers is a 128-bit integer in DuckDB): readers then read and sum
-- 64-bit columns, and the audit digests them as fixed-width numbers rather than as text (at 850,000
-- persons, int_utilisation_by_age_band's CPU time fell by a quarter and this table's seal by 1.5 s).
select
    active.period_start,
    active.period_end,
    active.person_id,
    {% for cte, measure in counts %}
        cast(coalesce({{ cte }}.{{ measure }}, 0) as bigint) as {{ measure }}{% if not loop.last %},{% endif %}
    {% endfor %}
from active
{% for cte in ['spells', 'outpatients', 'ae', 'community', 'indicators', 'readmissions'] %}
    left join {{ cte }}
        on
            active.period_start = {{ cte }}.period_start
            and active.period_end = {{ cte }}.period_end
            and active.person_id = {{ cte }}.person_id
{% endfor %}
