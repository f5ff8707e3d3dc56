-- Mortality in every period by the mortality_levels var (city, wards, MSOAs, IMD quintiles and
-- deciles; area of usual residence at death): deaths under premature_mortality_age (75) from each
-- cause of the mortality_causes var (underlying cause, ICD-10 ranges) per 100,000 registered
-- persons of those ages, crude with Byar's interval and directly age-standardised to ESP2013 (the
-- bands under 75) with Dobson's; and deaths at home as a share of all deaths (Wilson interval).
-- Incremental: a build adds the periods int_periods marks to_build and replaces any it computes
-- again.
{{ config(
    materialized='incremental',
    on_schema_change='fail',
    **period_increments()
) }}
{% set only = ldm_mortality_levels() %}
{% set under = var('premature_mortality_age') %}
with windows as (
    select distinct
        period_start,
        period_end
    from {{ ref('int_periods') }}
    where to_build and activity_complete
),

causes as (
    {% for cause in ldm_mortality_causes() %}
        select
            'under_{{ under }}_mortality_{{ cause.cause }}' as measure,
            {% if cause.icd10_from is defined %}
                cast('{{ cause.icd10_from }}' as {{ dbt.type_string() }}) as icd10_from,
                cast('{{ cause.icd10_to }}' as {{ dbt.type_string() }}) as icd10_to
            {% else %}
                cast(null as {{ dbt.type_string() }}) as icd10_from,
                cast(null as {{ dbt.type_string() }}) as icd10_to
            {% endif %}
        {% if not loop.last %}union all{% endif %}
    {% endfor %}
),

premature_deaths as (
    select
        deaths.*,
        causes.measure,
        esp.age_band
    from {{ ref('int_mortality_deaths') }} as deaths
    inner join causes
        on
            causes.icd10_from is null
            or left(deaths.underlying_cause, 3) between causes.icd10_from and causes.icd10_to
    inner join {{ ref('stg_reference__esp2013') }} as esp
        on deaths.age_at_death >= esp.age_lower and deaths.age_at_death <= esp.age_upper
    where deaths.age_at_death >= 0 and deaths.age_at_death < {{ under }}
),

death_cells as (
    select
        measure,
        period_start,
        period_end,
        {{ level_columns(only) }},
        age_band,
        count(*) as deaths
    from premature_deaths
    group by {{ level_grouping_sets(['measure', 'period_start', 'period_end', 'age_band'], only) }}
),

population_rows as (
    select
        pop.*,
        windows.period_start
    from {{ ref('int_population_by_area') }} as pop
    inner join windows
        on pop.period_end = windows.period_end
    where pop.age < {{ under }}
),

population_cells as (
    {{ level_cells('population_rows', ['period_start', 'period_end', 'age_band'], [['persons', 'count(*)']], only) }}
),

standard as (
    select
        age_band,
        cast(standard_population as double) as standard_population
    from {{ ref('stg_reference__esp2013') }}
    where age_upper < {{ under }}
),

cells as (
    -- Every cause, area and band of the population under 75, with its deaths (0 where none).
    select
        causes.measure,
        pop.period_start,
        pop.period_end,
        pop.geography_level,
        pop.area_code,
        pop.age_band,
        pop.persons,
        coalesce(death_cells.deaths, 0) as deaths
    from population_cells as pop
    cross join causes
    left join death_cells
        on
            causes.measure = death_cells.measure
            and pop.period_start = death_cells.period_start
            and pop.period_end = death_cells.period_end
            and pop.geography_level = death_cells.geography_level
            and pop.area_code = death_cells.area_code
            and pop.age_band = death_cells.age_band
),

death_totals as (
    -- Every death counts in the numerator, even in an age band (or area) where the registered
    -- population has nobody (the death record and the registration can place a person
    -- differently); only the standardised rate leaves such a band out, having no rate for it.
    select
        measure,
        period_start,
        period_end,
        geography_level,
        area_code,
        sum(deaths) as deaths
    from death_cells
    group by measure, period_start, period_end, geography_level, area_code
),

population_sums as (
    select
        cells.measure,
        cells.period_start,
        cells.period_end,
        cells.geography_level,
        cells.area_code,
        sum(cells.persons) as persons,
        {{ dsr_band_sums('cells.deaths', 'cells.persons', 'standard.standard_population', 'cells.age_band') }}
    from cells
    inner join standard
        on cells.age_band = standard.age_band
    group by cells.measure, cells.period_start, cells.period_end, cells.geography_level, cells.area_code
),

areas as (
    select
        measure,
        period_start,
        period_end,
        geography_level,
        area_code
    from population_sums
    union
    select
        measure,
        period_start,
        period_end,
        geography_level,
        area_code
    from death_totals
),

rates as (
    select
        areas.*,
        population_sums.sum_xw_n,
        population_sums.sum_xw2_n2,
        population_sums.total_count,
        coalesce(death_totals.deaths, 0) as numerator,
        coalesce(population_sums.persons, 0) as denominator,
        (select sum(standard.standard_population) from standard) as standard_total
    from areas
    left join population_sums
        on
            {{ keys_match(
                'areas', 'population_sums',
                ['measure', 'period_start', 'period_end', 'geography_level', 'area_code']
            ) }}
    left join death_totals
        on
            {{ keys_match(
                'areas', 'death_totals',
                ['measure', 'period_start', 'period_end', 'geography_level', 'area_code']
            ) }}
),

at_home as (
    select
        'deaths_at_home' as measure,
        period_start,
        period_end,
        {{ level_columns(only) }},
        sum(case when place_of_death = 'HOME' then 1 else 0 end) as numerator,
        count(*) as denominator
    from {{ ref('int_mortality_deaths') }}
    group by {{ level_grouping_sets(['period_start', 'period_end'], only) }}
),

measures as (
    select
        measure,
        period_start,
        period_end,
        geography_level,
        area_code,
        numerator,
        denominator,
        'persons aged under {{ under }}' as denominator_unit,
        'per 100,000 persons aged under {{ under }}' as rate_unit,
        -- (A double from the first operation: on Spark 100000.0 is a DECIMAL, whose quotient keeps six
        -- decimal places.)
        100000 * cast(numerator as double) / nullif(denominator, 0) as rate,
        100000.0 * {{ byar('lower', 'numerator') }} / nullif(denominator, 0) as rate_lower,
        100000.0 * {{ byar('upper', 'numerator') }} / nullif(denominator, 0) as rate_upper,
        100000.0 * {{ dsr('value', 'sum_xw_n', 'sum_xw2_n2', 'total_count', 'standard_total') }} as dsr,
        100000.0 * {{ dsr('lower', 'sum_xw_n', 'sum_xw2_n2', 'total_count', 'standard_total') }} as dsr_lower,
        100000.0 * {{ dsr('upper', 'sum_xw_n', 'sum_xw2_n2', 'total_count', 'standard_total') }} as dsr_upper
    from rates
    union all
    select
        measure,
        period_start,
        period_end,
        geography_level,
        area_code,
        numerator,
        denominator,
        'deaths' as denominator_unit,
        'proportion' as rate_unit,
        cast(numerator as double) / denominator as rate,
        {{ wilson('lower', 'numerator', 'denominator') }} as rate_lower,
        {{ wilson('upper', 'numerator', 'denominator') }} as rate_upper,
        cast(null as double) as dsr,
        cast(null as double) as dsr_lower,
        cast(null as double) as dsr_upper
    from at_home
),

in_periods as (
    select
        measures.*,
        periods.period_type,
        periods.period_label
    from measures
    inner join {{ ref('int_periods') }} as periods
        on measures.period_start = periods.period_start and measures.period_end = periods.period_end
    where periods.to_build and periods.activity_complete
)

select
    in_periods.period_type,
    in_periods.period_label,
    in_periods.period_start,
    in_periods.period_end,
    in_periods.measure,
    in_periods.geography_level,
    in_periods.area_code,
    area_names.area_name,
    cast(in_periods.numerator as bigint) as numerator,
    cast(in_periods.denominator as bigint) as denominator,
    in_periods.denominator_unit,
    in_periods.rate,
    in_periods.rate_lower,
    in_periods.rate_upper,
    in_periods.rate_unit,
    cast(in_periods.dsr as double) as dsr,
    cast(in_periods.dsr_lower as double) as dsr_lower,
    cast(in_periods.dsr_upper as double) as dsr_upper,
    {{ build_stamp() }}
from in_periods
{{ join_area_names('in_periods') }}
