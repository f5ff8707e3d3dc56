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
    group by person_id
)

select
    persons.person_id,
    pop.person_id is not null as in_registered_population,
    cast({{ age_at('persons.year_of_birth', 'persons.month_of_birth', reporting_period_end()) }} as integer)
        as age,
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
    cast(utilisation.emergency_admissions as integer) as emergency_admissions,
    cast(utilisation.elective_admissions as integer) as elective_admissions,
    cast(utilisation.bed_days as integer) as bed_days,
    cast(utilisation.outpatient_attendances as integer) as outpatient_attendances,
    cast(utilisation.outpatient_dnas as integer) as outpatient_dnas,
    cast(utilisation.ae_attendances as integer) as ae_attendances,
    cast(utilisation.community_contacts as integer) as community_contacts,
    {{ reporting_period_end() }} as reporting_period_end
from {{ ref('stg_store__persons') }} as persons
inner join {{ ref('int_residence') }} as residence
    on persons.person_id = residence.person_id
left join {{ ref('int_registered_population') }} as pop
    on persons.person_id = pop.person_id
left join flags
    on persons.person_id = flags.person_id
left join {{ ref('int_person_utilisation') }} as utilisation
    on persons.person_id = utilisation.person_id
left join {{ ref('stg_reference__esp2013') }} as esp
    on
        {{ age_at('persons.year_of_birth', 'persons.month_of_birth', reporting_period_end()) }} >= esp.age_lower
        and (
            esp.age_upper is null
            or {{ age_at('persons.year_of_birth', 'persons.month_of_birth', reporting_period_end()) }}
            <= esp.age_upper
        )
left join {{ ref('stg_reference__practices') }} as practices
    on coalesce(pop.practice_code, persons.practice_code) = practices.practice_code
left join {{ ref('stg_reference__wards') }} as wards
    on residence.ward_code = wards.ward_code
