-- The registered list at reporting_period_end: persons with a registration open at that date who
-- had not died by then, with their age, their practice at that date and where they lived then
-- (int_residence). Every age is kept here, even one no date of birth can give;
-- int_registered_population leaves those out, and the data-quality test on this model's age
-- counts them.
{{ config(materialized='view') }}

with open_registrations as (
    select
        person_id,
        practice_code,
        row_number() over (
            partition by person_id
            order by registration_start desc, batch_id desc, source_row_number desc
        ) as registration_rank
    from {{ ref('stg_store__registrations') }}
    where
        person_id is not null
        and registration_start <= {{ reporting_period_end() }}
        and (registration_end is null or registration_end > {{ reporting_period_end() }})
        and (date_of_death is null or date_of_death > {{ reporting_period_end() }})
),

persons as (
    select
        p.*,
        {{ age_at('p.year_of_birth', 'p.month_of_birth', reporting_period_end()) }} as age
    from {{ ref('stg_store__persons') }} as p
    where p.date_of_death is null or p.date_of_death > {{ reporting_period_end() }}
)

select
    persons.person_id,
    persons.age,
    esp.age_band,
    esp.age_lower as age_band_lower,
    persons.sex,
    persons.ethnic_category,
    reg.practice_code,
    practices.practice_name,
    practices.pcn_code,
    practices.pcn_name,
    residence.lsoa21_code,
    lsoa.lsoa21_name,
    residence.lsoa11_code,
    residence.msoa11_code,
    msoa.msoa11_name,
    residence.ward_code,
    wards.ward_name,
    residence.imd_decile,
    residence.imd_quintile,
    coalesce(ethnic.ethnic_group, 'unknown') as ethnic_group,
    coalesce(ethnic.ethnic_group_name, 'Not known') as ethnic_group_name
from persons
inner join open_registrations as reg
    on persons.person_id = reg.person_id and reg.registration_rank = 1
inner join {{ ref('int_residence') }} as residence
    on persons.person_id = residence.person_id
left join {{ ref('stg_reference__esp2013') }} as esp
    on persons.age >= esp.age_lower and (esp.age_upper is null or persons.age <= esp.age_upper)
left join {{ ref('stg_reference__ethnic_groups') }} as ethnic
    on persons.ethnic_category = ethnic.ethnic_category
left join {{ ref('stg_reference__practices') }} as practices
    on reg.practice_code = practices.practice_code
left join {{ ref('stg_reference__lsoa21_wards') }} as lsoa
    on residence.lsoa21_code = lsoa.lsoa21_code
left join {{ ref('stg_reference__msoa11_names') }} as msoa
    on residence.msoa11_code = msoa.msoa11_code
left join {{ ref('stg_reference__wards') }} as wards
    on residence.ward_code = wards.ward_code
