-- The abridged life tables of every period, mortality level, area and sex: deaths of residents and
-- person-years at risk in each band 0, 1-4, 5-9, ..., 85-89, 90+. The person-years of a 12-month
-- period are the mid-period population, the mean of the registered lists at its start (the day
-- before) and at its end, each person in their band and area at that date: the list at the end
-- alone leaves out the year's dead and counts the year's newcomers for a whole year. Every band of every table
-- is present (0 where nobody is counted), so that int_life_expectancy can see a band with no
-- population and leave that table out rather than fail.
{% set only = ldm_mortality_levels() %}
{% set population_keys = ['period_start', 'window_end', 'sex', 'band_start'] %}
with windows as (
    select distinct
        period_start,
        period_end
    from {{ ref('int_periods') }}
    where to_build and activity_complete
),

population as (
    select
        pop.*,
        windows.period_start,
        windows.period_end as window_end,
        pop.sex_code as sex,
        {{ life_table_band('pop.age') }} as band_start
    from {{ ref('int_population_by_area') }} as pop
    inner join windows
        on
            pop.period_end = windows.period_end
            or pop.period_end = {{ dbt.dateadd('day', -1, 'windows.period_start') }}
    where pop.sex_code in ('F', 'M')
),

population_cells as (
    select
        period_start,
        window_end as period_end,
        sex,
        band_start,
        geography_level,
        area_code,
        cast(persons as bigint) / 2.0 as person_years
    from (
        {{ level_cells('population', population_keys, [['persons', 'count(*)']], only) }}
    ) as cells
),

deaths as (
    select
        *,
        {{ life_table_band('age_at_death') }} as band_start
    from {{ ref('int_mortality_deaths') }}
    where sex in ('F', 'M') and age_at_death >= 0
),

death_cells as (
    select
        period_start,
        period_end,
        sex,
        band_start,
        {{ level_columns(only) }},
        count(*) as deaths
    from deaths
    group by {{ level_grouping_sets(['period_start', 'period_end', 'sex', 'band_start'], only) }}
),

tables as (
    select
        period_start,
        period_end,
        geography_level,
        area_code,
        sex
    from population_cells
    group by period_start, period_end, geography_level, area_code, sex
),

bands as (
    select 0 as band_start
    union all
    select 1 as band_start
    {% for start in range(5, 95, 5) %}
        union all
        select {{ start }} as band_start
    {% endfor %}
)

select
    tables.period_start,
    tables.period_end,
    tables.geography_level,
    tables.area_code,
    area_names.area_name,
    tables.sex,
    bands.band_start,
    cast(coalesce(death_cells.deaths, 0) as bigint) as deaths,
    cast(coalesce(population_cells.person_years, 0) as double) as person_years
from tables
cross join bands
{{ join_area_names('tables') }}
left join population_cells
    on
        {{ keys_match(
            'tables', 'population_cells',
            ['period_start', 'period_end', 'geography_level', 'area_code', 'sex']
        ) }}
        and bands.band_start = population_cells.band_start
left join death_cells
    on
        {{ keys_match(
            'tables', 'death_cells',
            ['period_start', 'period_end', 'geography_level', 'area_code', 'sex']
        ) }}
        and bands.band_start = death_cells.band_start
