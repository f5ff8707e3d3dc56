-- Prevalence of each register at the end of every period, by geography level and area: one row per
-- period (period_type, period_end), condition, level and area. A register is a point in time, so a
-- financial year's row and the rolling 12 months ending on the same day agree. Incremental: a build
-- adds the periods int_periods marks to_build and replaces any it computes again.
{{ config(
    materialized='incremental',
    on_schema_change='fail',
    **period_increments()
) }}
{#- The registers' minimum ages, highest first. -#}
{% set min_ages = ldm_registers() | map(attribute='min_age') | unique | sort(reverse=true) | list %}
with rules as (
    {{ register_rules() }}
),

period_ends as (
    {{ period_ends(period_starts=false) }}
),

population_rows as (
    -- The registered population at the registers' period ends (the list also holds the days before
    -- periods start, for the life tables), with the highest register minimum age each person has
    -- reached (min_age_reached: ages matter only against those minimums).
    select
        pop.*,
        case
            {% for min_age in min_ages %}
                when pop.age >= {{ min_age }} then {{ min_age }}
            {% endfor %}
        end as min_age_reached
    from {{ ref('int_population_by_area') }} as pop
    inner join period_ends
        on pop.period_end = period_ends.period_end
),

population_cells as (
    -- The registered population counted by period end, geography level, area, age band and
    -- min_age_reached, every level at once (level_cells()): every register's list is a sum of these
    -- cells, so persons are not repeated once per register.
    {{ level_cells('population_rows', ['period_end', 'age_band', 'min_age_reached'], [['persons', 'count(*)']]) }}
),

on_registers as (
    select
        pop.*,
        reg.condition
    from {{ ref('int_registers') }} as reg
    inner join {{ ref('int_population_by_area') }} as pop
        on reg.period_end = pop.period_end and reg.person_id = pop.person_id
),

register_cells as (
    -- (int_registers has applied the age rules already.)
    {{ level_cells('on_registers', ['period_end', 'condition', 'age_band'], [['on_register', 'count(*)']]) }}
),

min_ages as (
    select distinct min_age from rules
),

list_cells as (
    -- The list of each minimum age the registers have (few: most registers take every age), by
    -- cell and age band: counted once per minimum age, not once per register.
    select
        cells.period_end,
        min_ages.min_age,
        cells.geography_level,
        cells.area_code,
        cells.age_band,
        sum(cells.persons) as persons
    from population_cells as cells
    cross join min_ages
    where min_ages.min_age = 0 or cells.min_age_reached >= min_ages.min_age
    group by
        cells.period_end, min_ages.min_age, cells.geography_level, cells.area_code, cells.age_band
),

eligible as (
    -- The register's list: registered persons of at least its minimum age (all ages when 0),
    -- counted in cells (persons); and the persons on the register (on_register), counted in cells.
    select
        lists.period_end,
        rules.condition,
        rules.min_age,
        lists.geography_level,
        lists.area_code,
        lists.age_band,
        lists.persons,
        0 as on_register
    from list_cells as lists
    inner join rules
        on lists.min_age = rules.min_age
    union all
    -- (min_age comes from the list's cells.)
    select
        period_end,
        condition,
        cast(null as integer) as min_age,
        geography_level,
        area_code,
        age_band,
        0 as persons,
        on_register
    from register_cells
),

totals as (
    select
        period_end,
        condition,
        geography_level,
        area_code,
        max(min_age) as min_age,
        sum(on_register) as numerator,
        sum(persons) as denominator
    from eligible
    group by period_end, condition, geography_level, area_code
),

by_band as (
    select
        period_end,
        condition,
        geography_level,
        area_code,
        age_band,
        cast(sum(on_register) as double) as band_count,
        cast(sum(persons) as double) as band_population
    from eligible
    where age_band is not null
    group by period_end, condition, geography_level, area_code, age_band
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
        by_band.period_end,
        by_band.condition,
        by_band.geography_level,
        by_band.area_code,
        {{ dsr_band_sums(
            'by_band.band_count', 'by_band.band_population', 'standard.standard_population', 'by_band.age_band'
        ) }}
    from by_band
    inner join standard
        on by_band.condition = standard.condition and by_band.age_band = standard.age_band
    group by by_band.period_end, by_band.condition, by_band.geography_level, by_band.area_code
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
            {{ keys_match('totals', 'dsr_sums', ['period_end', 'condition', 'geography_level', 'area_code']) }}
    inner join standard_totals
        on totals.condition = standard_totals.condition
),

final as (
    select
        periods.period_type,
        periods.period_label,
        periods.period_start,
        periods.period_end,
        dsr_inputs.condition,
        dsr_inputs.geography_level,
        dsr_inputs.area_code,
        area_names.area_name,
        cast(dsr_inputs.min_age as integer) as min_age,
        cast(dsr_inputs.numerator as bigint) as numerator,
        cast(dsr_inputs.denominator as bigint) as denominator,
        cast(dsr_inputs.numerator as double) / dsr_inputs.denominator as crude_rate,
        {{ wilson('lower', 'dsr_inputs.numerator', 'dsr_inputs.denominator') }} as crude_rate_lower,
        {{ wilson('upper', 'dsr_inputs.numerator', 'dsr_inputs.denominator') }} as crude_rate_upper,
        {{ dsr(
            'value', 'dsr_inputs.sum_xw_n', 'dsr_inputs.sum_xw2_n2', 'dsr_inputs.total_count', 'dsr_inputs.standard_total'
        ) }}
            as dsr,
        {{ dsr(
            'lower', 'dsr_inputs.sum_xw_n', 'dsr_inputs.sum_xw2_n2', 'dsr_inputs.total_count', 'dsr_inputs.standard_total'
        ) }}
            as dsr_lower,
        {{ dsr(
            'upper', 'dsr_inputs.sum_xw_n', 'dsr_inputs.sum_xw2_n2', 'dsr_inputs.total_count', 'dsr_inputs.standard_total'
        ) }}
            as dsr_upper,
        {{ build_stamp() }}
    from dsr_inputs
    inner join {{ ref('int_periods') }} as periods
        on dsr_inputs.period_end = periods.period_end
    {{ join_area_names('dsr_inputs') }}
    where periods.to_build
)

select * from final
