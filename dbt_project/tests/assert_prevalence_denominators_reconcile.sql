-- Every geography level partitions the list, in every period: for each condition, the
-- denominators (and numerators) of a level's areas add up to the city's; and, for the periods this
-- build computed, the city's all-ages list is the registered population at the period end and its
-- numerator the register's size.
{{ config(tags=['mart_prevalence', 'severity_error']) }}
with level_sums as (
    select
        period_type,
        period_end,
        condition,
        geography_level,
        sum(numerator) as numerator,
        sum(denominator) as denominator
    from {{ ref('mart_prevalence') }}
    group by period_type, period_end, condition, geography_level
),

city as (
    select
        period_type,
        period_end,
        condition,
        min_age,
        numerator,
        denominator
    from {{ ref('mart_prevalence') }}
    where geography_level = 'city'
),

built as (
    select
        period_type,
        period_end
    from {{ ref('int_periods') }}
    where to_build
),

registered as (
    select
        period_end,
        count(*) as persons
    from {{ ref('int_registered_population') }}
    group by period_end
),

register_sizes as (
    select
        period_end,
        condition,
        count(*) as persons
    from {{ ref('int_registers') }}
    group by period_end, condition
)

select
    level_sums.period_end,
    level_sums.condition,
    level_sums.geography_level,
    'level does not add up to the city' as problem
from level_sums
inner join city
    on
        level_sums.period_type = city.period_type
        and level_sums.period_end = city.period_end
        and level_sums.condition = city.condition
where level_sums.numerator <> city.numerator or level_sums.denominator <> city.denominator
union all
select
    city.period_end,
    city.condition,
    'city',
    'all-ages list is not the registered population'
from city
inner join built on city.period_type = built.period_type and city.period_end = built.period_end
left join registered on city.period_end = registered.period_end
where city.min_age = 0 and city.denominator <> coalesce(registered.persons, 0)
union all
select
    city.period_end,
    city.condition,
    'city',
    'numerator is not the register size'
from city
inner join built on city.period_type = built.period_type and city.period_end = built.period_end
left join register_sizes
    on city.period_end = register_sizes.period_end and city.condition = register_sizes.condition
where city.numerator <> coalesce(register_sizes.persons, 0)
