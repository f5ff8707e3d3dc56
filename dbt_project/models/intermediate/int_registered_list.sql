-- The registered list at each period end (period_ends(): the periods to build and
-- reporting_period_end): persons with a registration open at that date who had not died by then
-- (by their GP record or a registered death),
-- with their age, their practice at that date and where they lived then (the span of
-- int_residence_spans that contains the date, as int_residence gives it). Every age
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
    {{ esp2013_band_of_each_age() }}
),

registered_deaths as (
    -- A registered death counts even before the GP record shows it (months: a death in the period
    -- end's month is by its end): each person's earliest.
    select
        person_id,
        min(date_of_death) as date_of_death
    from {{ ref('stg_store__deaths') }}
    group by person_id
),

registrations as (
    -- Registrations with their PCN, and how many each person has: most have one, and need no
    -- choosing between.
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

candidates as (
    -- Each registration beside its person's details, their registered death and every span of
    -- where they lived (int_residence_spans), joined by person: a person has few registrations and
    -- spans, so these joins are of about a million rows, and the dates below only filter them
    -- (joining persons, registrations and areas at every date was three joins of some seven
    -- million rows each at Leeds scale: 4.4 of this model's 9 s of CPU).
    select
        reg.person_id,
        reg.registration_start,
        reg.registration_end,
        reg.date_of_death as registration_date_of_death,
        reg.batch_id,
        reg.source_row_number,
        reg.practice_code,
        reg.pcn_code,
        reg.registrations_of_person,
        p.year_of_birth,
        p.month_of_birth,
        p.sex,
        p.ethnic_category,
        p.date_of_death,
        deaths.date_of_death as registered_date_of_death,
        {% for column in residence_area_columns() %}
            spans.{{ column }},
        {% endfor %}
        spans.valid_from,
        spans.valid_until
    from registrations as reg
    inner join {{ ref('stg_store__persons') }} as p
        on reg.person_id = p.person_id
    inner join {{ ref('int_residence_spans') }} as spans
        on reg.person_id = spans.person_id
    left join registered_deaths as deaths
        on reg.person_id = deaths.person_id
),

open_at_period_end as (
    -- Registrations open at each period end, of persons alive then (by their GP record and any
    -- registered death), with the span of where they lived then. The tests are a filter of the
    -- cross product inside coalesce(), not a join condition, on purpose: as a join condition DuckDB
    -- estimated such a join at a few dozen rows, and then hashed the millions of rows below to join
    -- them to the small lookups. A null test is false either way.
    select
        candidates.*,
        period_ends.period_end,
        {{ age_at('candidates.year_of_birth', 'candidates.month_of_birth', 'period_ends.period_end') }} as age
    from candidates
    cross join period_ends
    where
        coalesce(
            candidates.registration_start <= period_ends.period_end
            and (candidates.registration_end is null or candidates.registration_end > period_ends.period_end)
            and (
                candidates.registration_date_of_death is null
                or candidates.registration_date_of_death > period_ends.period_end
            )
            and (candidates.date_of_death is null or candidates.date_of_death > period_ends.period_end)
            and (
                candidates.registered_date_of_death is null
                or candidates.registered_date_of_death > period_ends.period_end
            ),
            false
        )
        and {{ residence_span_contains('candidates', 'period_ends.period_end') }}
),

{% set kept = ['period_end', 'person_id', 'age', 'sex', 'ethnic_category', 'practice_code', 'pcn_code']
    + residence_area_columns() %}
registered as (
    -- Each person's practice (and its PCN) at each period end: that of the latest-started
    -- registration open then. A person with one registration has it wherever it is open; only the
    -- others' rows are sorted.
    select {{ kept | join(', ') }}
    from open_at_period_end
    where registrations_of_person = 1
    union all
    select {{ kept | join(', ') }}
    from (
        select
            *,
            row_number() over (
                partition by period_end, person_id
                order by registration_start desc, batch_id desc, source_row_number desc
            ) as latest
        from open_at_period_end
        where registrations_of_person > 1
    ) as several
    where latest = 1
)

select
    reg.period_end,
    reg.person_id,
    reg.age,
    bands.age_band,
    bands.age_lower as age_band_lower,
    reg.sex,
    reg.ethnic_category,
    coalesce(ethnic.ethnic_group, 'unknown') as ethnic_group,
    reg.practice_code,
    reg.pcn_code,
    reg.lsoa21_code,
    reg.lsoa11_code,
    reg.msoa11_code,
    reg.ward_code,
    {% for tier in tiers %}
        tier_{{ tier.level }}.area_code as {{ tier.level }}_code,
    {% endfor %}
    reg.imd_decile,
    reg.imd_quintile
from registered as reg
left join age_bands as bands
    on reg.age = bands.age
left join {{ ref('stg_reference__ethnic_groups') }} as ethnic
    on reg.ethnic_category = ethnic.ethnic_category
{% for tier in tiers %}
    left join tier_{{ tier.level }}
        on reg.{{ tier.key }} = tier_{{ tier.level }}.area_key
{% endfor %}
