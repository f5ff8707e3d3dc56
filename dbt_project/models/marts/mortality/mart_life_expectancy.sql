-- Life expectancy at birth and at 65 by sex in every period, for the city, IMD deciles and
-- quintiles, wards and MSOAs (the mortality_levels var), from int_life_expectancy; on the IMD rows,
-- the gap between the least and most deprived group and the slope index of inequality of the
-- scale. Incremental: a build adds the periods int_periods marks to_build and replaces any it
-- computes again.
{{ config(
    materialized='incremental',
    on_schema_change='fail',
    **period_increments()
) }}
with expectancies as (
    select * from {{ ref('int_life_expectancy') }}
),

extremes as (
    select
        period_start,
        period_end,
        geography_level,
        sex,
        start_age,
        max(case when area_code = '1' then life_expectancy end) as most_deprived,
        max(
            case
                when geography_level = 'imd_decile' and area_code = '10' then life_expectancy
                when geography_level = 'imd_quintile' and area_code = '5' then life_expectancy
            end
        ) as least_deprived
    from expectancies
    where geography_level in ('imd_decile', 'imd_quintile')
    group by period_start, period_end, geography_level, sex, start_age
),

in_periods as (
    select
        expectancies.*,
        periods.period_type,
        periods.period_label,
        extremes.least_deprived - extremes.most_deprived as deprivation_gap
    from expectancies
    inner join {{ ref('int_periods') }} as periods
        on expectancies.period_start = periods.period_start and expectancies.period_end = periods.period_end
    left join extremes
        on
            {{ keys_match(
                'expectancies', 'extremes',
                ['period_start', 'period_end', 'geography_level', 'sex', 'start_age']
            ) }}
    where periods.to_build and periods.activity_complete
)

select
    period_type,
    period_label,
    period_start,
    period_end,
    geography_level,
    area_code,
    area_name,
    sex,
    cast(start_age as integer) as start_age,
    cast(deaths as bigint) as deaths,
    cast(person_years as double) as person_years,
    life_expectancy,
    life_expectancy_lower,
    life_expectancy_upper,
    not_computed,
    deprivation_gap,
    sii,
    sii_lower,
    sii_upper,
    {{ build_stamp() }}
from in_periods
