-- The registered list at each period end (period_ends(): the periods to build and
-- reporting_period_end): persons with a registration open at that date who had not died by then
-- (by their GP record or a registered death),
-- with their age, their practice at that date and where they lived then (int_residence). Every age
-- is kept here, even one no date of birth can give; int_registered_population leaves those out, and
-- the data-quality test on this model's age counts them. A table: every mart reads it. Codes only,
-- of every geography level and place tier (the place_tiers var): the marts attach names to the
-- cells they aggregate (int_area_names), so that millions of rows never carry them.

{% set tiers = ldm_place_tiers() %}
with period_ends as (
    {{ period_ends() }}
),

{% for tier in tiers %}
    tier_{{ tier.level }} as (
        -- Each key (e.g. 2011 LSOA) once, with its area of the tier.
        select
            {{ tier.key }} as area_key,
            max({{ tier.code }}) as area_code
        from {{ ref(tier.seed) }}
        group by {{ tier.key }}
    ),

{% endfor %}

age_bands as (
    -- The ESP2013 band of each age a living person can have, so that persons join their band on
    -- equality (a range join over millions of rows is slower).
    select
        ages.age,
        esp.age_band,
        esp.age_lower
    from (
        select generated_number - 1 as age
        from ({{ dbt.generate_series(var('max_plausible_age') + 1) }}) as series
    ) as ages
    inner join {{ ref('stg_reference__esp2013') }} as esp
        on ages.age >= esp.age_lower and (esp.age_upper is null or ages.age <= esp.age_upper)
),

registrations as (
    -- Registrations with their PCN (joined here, not to the millions of rows per date), and how
    -- many each person has: most have one, and need no choosing between.
    select
        reg.person_id,
        reg.registration_start,
        reg.registration_end,
        reg.date_of_death,
        reg.batch_id,
        reg.source_row_number,
        reg.practice_code,
        practices.pcn_code,
        count(*) over (partition by reg.person_id) as registrations_of_person
    from {{ ref('stg_store__registrations') }} as reg
    left join {{ ref('stg_reference__practices') }} as practices
        on reg.practice_code = practices.practice_code
    where reg.person_id is not null
),

open_at_period_end as (
    -- The test is a filter of the cross product inside coalesce(), not a join condition, on
    -- purpose: as a join condition DuckDB estimated this join at a few dozen rows, and then hashed
    -- the millions of rows below to join them to the small lookups (19.8 s for this model at
    -- 850,000 persons, against 4.1 s). A null test is false either way.
    select
        reg.*,
        period_ends.period_end
    from registrations as reg
    cross join period_ends
    where
        coalesce(
            reg.registration_start <= period_ends.period_end
            and (reg.registration_end is null or reg.registration_end > period_ends.period_end)
            and (reg.date_of_death is null or reg.date_of_death > period_ends.period_end),
            false
        )
),

open_registrations as (
    -- Each person's practice (and its PCN) at each period end: that of the latest-started
    -- registration open then. A person with one registration has it wherever it is open; only the
    -- others are grouped (grouping every person and date took most of this model's time).
    {% set latest = ['registration_start', 'batch_id', 'source_row_number'] %}
    select
        period_end,
        person_id,
        practice_code,
        pcn_code
    from open_at_period_end
    where registrations_of_person = 1
    union all
    select
        period_end,
        person_id,
        {{ latest_value('practice_code', latest) }} as practice_code,
        {{ latest_value('pcn_code', latest) }} as pcn_code
    from open_at_period_end
    where registrations_of_person > 1
    group by period_end, person_id
),

registered_deaths as (
    -- A registered death counts even before the GP record shows it (months: a death in the period
    -- end's month is by its end): each person's earliest, joined to the person once rather than
    -- looked up for every person and date.
    select
        person_id,
        min(date_of_death) as date_of_death
    from {{ ref('stg_store__deaths') }}
    group by person_id
),

persons as (
    select
        period_ends.period_end,
        p.*,
        {{ age_at('p.year_of_birth', 'p.month_of_birth', 'period_ends.period_end') }} as age
    from {{ ref('stg_store__persons') }} as p
    left join registered_deaths as deaths
        on p.person_id = deaths.person_id
    cross join period_ends
    where
        (p.date_of_death is null or p.date_of_death > period_ends.period_end)
        and (deaths.date_of_death is null or deaths.date_of_death > period_ends.period_end)
)

select
    persons.period_end,
    persons.person_id,
    persons.age,
    bands.age_band,
    bands.age_lower as age_band_lower,
    persons.sex,
    persons.ethnic_category,
    coalesce(ethnic.ethnic_group, 'unknown') as ethnic_group,
    reg.practice_code,
    reg.pcn_code,
    residence.lsoa21_code,
    residence.lsoa11_code,
    residence.msoa11_code,
    residence.ward_code,
    {% for tier in tiers %}
        tier_{{ tier.level }}.area_code as {{ tier.level }}_code,
    {% endfor %}
    residence.imd_decile,
    residence.imd_quintile
from persons
inner join open_registrations as reg
    on
        persons.period_end = reg.period_end
        and persons.person_id = reg.person_id
inner join {{ ref('int_residence') }} as residence
    on persons.period_end = residence.period_end and persons.person_id = residence.person_id
left join age_bands as bands
    on persons.age = bands.age
left join {{ ref('stg_reference__ethnic_groups') }} as ethnic
    on persons.ethnic_category = ethnic.ethnic_category
{% for tier in tiers %}
    left join tier_{{ tier.level }}
        on residence.{{ tier.key }} = tier_{{ tier.level }}.area_key
{% endfor %}
