-- Deaths of the city's residents in each period to build whose window the data cover: one row per
-- period and death record (linked or not: a resident's death counts whether or not it linked to a
-- person), with the age and sex recorded at death, the underlying cause (position 0) and the area of
-- usual residence at death as <level>_code columns for the mortality_levels var, as
-- int_population_by_area has them for the population. A death whose postcode is outside the city
-- (no LSOA) is not a resident's and is left out.
{{ config(materialized='view') }}
{% set levels = [] %}
{% for g in geography_levels() if g.level in ldm_mortality_levels() %}{% do levels.append(g) %}{% endfor %}

with windows as (
    select distinct
        period_start,
        period_end
    from {{ ref('int_periods') }}
    where to_build and activity_complete
),

deaths as (
    select
        deaths.*,
        causes.icd10_code as underlying_cause
    from {{ ref('stg_store__deaths') }} as deaths
    left join {{ ref('stg_store__death_causes') }} as causes
        on
            deaths.batch_id = causes.batch_id
            and deaths.source_row_number = causes.source_row_number
            and causes.cause_position = 0
    where deaths.lsoa21_code is not null and deaths.date_of_death is not null
)

select
    windows.period_start,
    windows.period_end,
    deaths.batch_id,
    deaths.source_row_number,
    deaths.person_id,
    deaths.sex,
    deaths.age_at_death,
    deaths.underlying_cause,
    deaths.place_of_death,
    {% for g in levels %}
        coalesce({{ g.code }}, 'unknown') as {{ g.level }}_code{% if not loop.last %},{% endif %}
    {% endfor %}
from deaths
inner join windows
    on deaths.date_of_death >= windows.period_start and deaths.date_of_death <= windows.period_end
