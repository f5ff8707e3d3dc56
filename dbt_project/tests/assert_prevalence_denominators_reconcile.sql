-- Every geography level partitions the list: for each condition, the denominators (and
-- numerators) of a level's areas add up to the city's, and the city's all-ages list is the
-- registered population at reporting_period_end.
with level_sums as (
    select
        condition,
        geography_level,
        sum(numerator) as numerator,
        sum(denominator) as denominator
    from {{ ref('mart_prevalence') }}
    group by condition, geography_level
),

city as (
    select
        condition,
        min_age,
        numerator,
        denominator
    from {{ ref('mart_prevalence') }}
    where geography_level = 'city'
),

registered as (
    select count(*) as persons from {{ ref('int_registered_population') }}
),

register_sizes as (
    select
        condition,
        count(*) as persons
    from {{ ref('int_registers') }}
    group by condition
)

select
    level_sums.condition,
    level_sums.geography_level,
    'level does not add up to the city' as problem
from level_sums
inner join city on level_sums.condition = city.condition
where level_sums.numerator <> city.numerator or level_sums.denominator <> city.denominator
union all
select
    city.condition,
    'city',
    'all-ages list is not the registered population'
from city
cross join registered
where city.min_age = 0 and city.denominator <> registered.persons
union all
select
    city.condition,
    'city',
    'numerator is not the register size'
from city
left join register_sizes on city.condition = register_sizes.condition
where city.numerator <> coalesce(register_sizes.persons, 0)
