-- One row per person in the store, for analysts' own SQL: demographics, where they lived at
-- reporting_period_end (int_residence) and its deprivation,
-- register flags at reporting_period_end and use of services in the 12 months to that date.
with flags as (
    select
        person_id,
        {% for register in ldm_registers() %}
            max(case when condition = '{{ register.condition }}' then 1 else 0 end) as has_{{ register.condition }},
        {% endfor %}
        count(*) as condition_count
    from {{ ref('int_registers') }}
    where period_end = {{ reporting_period_end() }}
    group by person_id
),

residence as (
    select * from {{ ref('int_residence') }}
    where period_end = {{ reporting_period_end() }}
),

pop as (
    select * from {{ ref('int_registered_population') }}
    where period_end = {{ reporting_period_end() }}
),

utilisation as (
    select * from {{ ref('int_person_utilisation') }}
    where
        period_end = {{ reporting_period_end() }}
        and period_start = {{ dbt.dateadd('day', 1, dbt.dateadd('year', -1, reporting_period_end())) }}
),

persons as (
    -- Every person, with their age at reporting_period_end (the age column and the age band's key).
    select
        persons.*,
        {{ age_at('persons.year_of_birth', 'persons.month_of_birth', reporting_period_end()) }} as age_at_end
    from {{ ref('stg_store__persons') }} as persons
)

select
    persons.person_id,
    pop.person_id is not null as in_registered_population,
    cast(persons.age_at_end as integer) as age,
    esp.age_band,
    persons.sex,
    persons.ethnic_category,
    coalesce(pop.practice_code, persons.practice_code) as practice_code,
    practices.pcn_code,
    residence.lsoa21_code,
    residence.lsoa11_code,
    residence.msoa11_code,
    residence.ward_code,
    wards.ward_name,
    residence.imd_decile,
    residence.imd_quintile,
    persons.date_of_death,
    {% for register in ldm_registers() %}
        coalesce(flags.has_{{ register.condition }}, 0) = 1 as has_{{ register.condition }},
    {% endfor %}
    cast(coalesce(flags.condition_count, 0) as integer) as condition_count,
    {% for measure in ['emergency_admissions', 'elective_admissions', 'bed_days', 'outpatient_attendances',
                       'outpatient_dnas', 'ae_attendances', 'community_contacts'] %}
        cast(coalesce(utilisation.{{ measure }}, 0) as integer) as {{ measure }},
    {% endfor %}
    {{ reporting_period_end() }} as reporting_period_end,
    {{ build_stamp() }}
from persons
inner join residence
    on persons.person_id = residence.person_id
left join pop
    on persons.person_id = pop.person_id
left join flags
    on persons.person_id = flags.person_id
left join utilisation
    on persons.person_id = utilisation.person_id
left join ({{ esp2013_band_of_each_age() }}) as esp
    on
        least(persons.age_at_end, {{ var('max_plausible_age') }}) = esp.age
left join {{ ref('stg_reference__practices') }} as practices
    on coalesce(pop.practice_code, persons.practice_code) = practices.practice_code
left join {{ ref('stg_reference__wards') }} as wards
    on residence.ward_code = wards.ward_code
