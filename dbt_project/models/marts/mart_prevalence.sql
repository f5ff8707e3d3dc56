-- Prevalence of each register at reporting_period_end, by geography level and area.
with rules as (
    {{ register_rules() }}
),

population_cells as (
    -- The registered population counted by geography level, area, age band and age: every
    -- register's list is a sum of these cells, so persons are not repeated once per register.
    select
        geography_level,
        area_code,
        area_name,
        age_band,
        age,
        count(*) as persons
    from {{ ref('int_population_by_area') }}
    group by geography_level, area_code, area_name, age_band, age
),

eligible as (
    -- The register's list: registered persons of at least its minimum age (all ages when 0),
    -- counted in cells (persons); and the persons on the register (on_register), one row each.
    select
        rules.condition,
        rules.min_age,
        cells.geography_level,
        cells.area_code,
        cells.area_name,
        cells.age_band,
        cells.persons,
        0 as on_register
    from population_cells as cells
    cross join rules
    where rules.min_age = 0 or cells.age >= rules.min_age
    union all
    -- (int_registers has applied the age rules already; min_age comes from the list's cells.)
    select
        reg.condition,
        cast(null as integer) as min_age,
        pop.geography_level,
        pop.area_code,
        pop.area_name,
        pop.age_band,
        0 as persons,
        1 as on_register
    from {{ ref('int_registers') }} as reg
    inner join {{ ref('int_population_by_area') }} as pop
        on reg.person_id = pop.person_id
),

totals as (
    select
        condition,
        geography_level,
        area_code,
        max(min_age) as min_age,
        max(area_name) as area_name,
        sum(on_register) as numerator,
        sum(persons) as denominator
    from eligible
    group by condition, geography_level, area_code
),

by_band as (
    select
        condition,
        geography_level,
        area_code,
        age_band,
        cast(sum(on_register) as double) as band_count,
        cast(sum(persons) as double) as band_population
    from eligible
    where age_band is not null
    group by condition, geography_level, area_code, age_band
),

standard as (
    -- ESP2013 bands that the register's age rule admits, with their weights.
    select
        rules.condition,
        esp.age_band,
        cast(esp.standard_population as double) as standard_population
    from rules
    cross join {{ ref('stg_reference__esp2013') }} as esp
    where esp.age_upper is null or esp.age_upper >= rules.min_age
),

standard_totals as (
    select
        condition,
        sum(standard_population) as standard_total
    from standard
    group by condition
),

dsr_sums as (
    -- Bands with no local population contribute nothing to the rate (their weight stays in the
    -- standard total).
    select
        by_band.condition,
        by_band.geography_level,
        by_band.area_code,
        {{ dsr_band_sums(
            'by_band.band_count', 'by_band.band_population', 'standard.standard_population', 'by_band.age_band'
        ) }}
    from by_band
    inner join standard
        on by_band.condition = standard.condition and by_band.age_band = standard.age_band
    group by by_band.condition, by_band.geography_level, by_band.area_code
),

dsr_inputs as (
    -- No DSR for the age_band level: a rate within one age band needs no standardising.
    select
        totals.*,
        dsr_sums.sum_xw_n,
        dsr_sums.sum_xw2_n2,
        standard_totals.standard_total,
        case when totals.geography_level <> 'age_band' then dsr_sums.total_count end as total_count
    from totals
    left join dsr_sums
        on
            totals.condition = dsr_sums.condition
            and totals.geography_level = dsr_sums.geography_level
            and totals.area_code = dsr_sums.area_code
    inner join standard_totals
        on totals.condition = standard_totals.condition
),

final as (
    select
        condition,
        geography_level,
        area_code,
        area_name,
        cast(min_age as integer) as min_age,
        cast(numerator as bigint) as numerator,
        cast(denominator as bigint) as denominator,
        cast(numerator as double) / denominator as crude_rate,
        wilson_lower(numerator, denominator, {{ var('confidence_level') }}) as crude_rate_lower,
        wilson_upper(numerator, denominator, {{ var('confidence_level') }}) as crude_rate_upper,
        {{ dsr('value', 'sum_xw_n', 'sum_xw2_n2', 'total_count', 'standard_total') }} as dsr,
        {{ dsr('lower', 'sum_xw_n', 'sum_xw2_n2', 'total_count', 'standard_total') }} as dsr_lower,
        {{ dsr('upper', 'sum_xw_n', 'sum_xw2_n2', 'total_count', 'standard_total') }} as dsr_upper,
        {{ reporting_period_end() }} as reporting_period_end
    from dsr_inputs
)

select * from final
