-- Use of services in each period (the 12 months of period_start to period_end, where the activity
-- data cover them) by the registered population at its end, per 1,000 persons (and the outpatient
-- DNA rate), by geography level and area, by condition (the people on each register at that date)
-- and by number of long-term conditions (0 .. 4+); with directly age-standardised rates (ESP2013)
-- for the event counts, from the age-band cells of int_utilisation_by_age_band. Incremental: a
-- build adds the periods int_periods marks to_build and replaces any it computes again.
{{ config(
    materialized='incremental',
    on_schema_change='fail',
    **period_increments()
) }}
with cells as (
    select * from {{ ref('int_utilisation_by_age_band') }}
),

measures as (
    select
        period_start,
        period_end,
        measure,
        geography_level,
        area_code,
        max(area_name) as area_name,
        sum(event_count) as numerator,
        sum(person_count) as denominator
    from cells
    -- outpatient_dnas, discharges and readmissions are only the numerators and denominators of the
    -- DNA and readmission rates
    where measure not in ('outpatient_dnas', 'discharges', 'emergency_readmissions_30_days')
    group by period_start, period_end, measure, geography_level, area_code
    union all
    select
        period_start,
        period_end,
        'outpatient_dna_rate' as measure,
        geography_level,
        area_code,
        max(area_name) as area_name,
        sum(case when measure = 'outpatient_dnas' then event_count else 0 end) as numerator,
        sum(event_count) as denominator
    from cells
    where measure in ('outpatient_dnas', 'outpatient_attendances')
    group by period_start, period_end, geography_level, area_code
    union all
    select
        period_start,
        period_end,
        'emergency_readmission_rate' as measure,
        geography_level,
        area_code,
        max(area_name) as area_name,
        sum(case when measure = 'emergency_readmissions_30_days' then event_count else 0 end) as numerator,
        sum(case when measure = 'discharges' then event_count else 0 end) as denominator
    from cells
    where measure in ('emergency_readmissions_30_days', 'discharges')
    group by period_start, period_end, geography_level, area_code
),

levels as (
    select distinct
        geography_level,
        area_code
    from cells
),

rules as (
    {{ register_rules() }}
),

min_ages as (
    -- Measures counted from a minimum age (admission_indicators with min_age, and the
    -- age_restricted_measures var): their rates are of the population of that age, standardised over
    -- the ESP2013 bands from it up.
    select
        cast(null as {{ dbt.type_string() }}) as measure,
        0 as min_age
    {% for measure, min_age in measure_min_ages().items() %}
        union all
        select
            '{{ measure }}' as measure,
            {{ min_age }} as min_age
    {% endfor %}
),

min_age_values as (
    select distinct min_age from min_ages
),

standard as (
    -- ESP2013 bands for each breakdown level; for a register, only the bands its age rule admits
    -- (as in mart_prevalence).
    select
        levels.geography_level,
        levels.area_code,
        esp.age_band,
        esp.age_lower,
        cast(esp.standard_population as double) as standard_population
    from levels
    cross join {{ ref('stg_reference__esp2013') }} as esp
    left join rules
        on levels.geography_level = 'condition' and levels.area_code = rules.condition
    where rules.min_age is null or esp.age_upper is null or esp.age_upper >= rules.min_age
),

standard_totals as (
    select
        standard.geography_level,
        standard.area_code,
        ages.min_age,
        sum(case when standard.age_lower >= ages.min_age then standard.standard_population else 0 end)
            as standard_total
    from standard
    cross join min_age_values as ages
    group by standard.geography_level, standard.area_code, ages.min_age
),

dsr_sums as (
    -- Bands with no local population contribute nothing to the rate (their weight stays in the
    -- standard total). No DSR for the age_band level: a rate within one age band needs no
    -- standardising.
    select
        cells.period_start,
        cells.period_end,
        cells.measure,
        cells.geography_level,
        cells.area_code,
        {{ dsr_band_sums('cells.event_count', 'cells.person_count', 'standard.standard_population', 'cells.age_band') }}
    from cells
    inner join standard
        on
            {{ keys_match('cells', 'standard', ['geography_level', 'area_code', 'age_band']) }}
    -- Bed days are not standardised: Dobson's interval needs a Poisson count of events, and the
    -- days of one spell are not independent events (the mart gives them no crude interval either).
    where
        cells.measure not in ('bed_days', 'outpatient_dnas', 'discharges', 'emergency_readmissions_30_days')
        and cells.geography_level <> 'age_band'
    group by cells.period_start, cells.period_end, cells.measure, cells.geography_level, cells.area_code
),

dsr_inputs as (
    select
        measures.*,
        dsr_sums.sum_xw_n,
        dsr_sums.sum_xw2_n2,
        dsr_sums.total_count,
        standard_totals.standard_total,
        indicator_ages.min_age
    from measures
    left join dsr_sums
        on
            {{ keys_match(
                'measures', 'dsr_sums',
                ['period_start', 'period_end', 'measure', 'geography_level', 'area_code']
            ) }}
    left join min_ages as indicator_ages
        on measures.measure = indicator_ages.measure
    left join standard_totals
        on
            measures.geography_level = standard_totals.geography_level
            and measures.area_code = standard_totals.area_code
            and coalesce(indicator_ages.min_age, 0) = standard_totals.min_age
),

in_periods as (
    select
        dsr_inputs.*,
        periods.period_type,
        periods.period_label
    from dsr_inputs
    inner join {{ ref('int_periods') }} as periods
        on dsr_inputs.period_start = periods.period_start and dsr_inputs.period_end = periods.period_end
    where periods.to_build and periods.activity_complete
),

final as (
    select
        period_type,
        period_label,
        period_start,
        period_end,
        measure,
        geography_level,
        area_code,
        area_name,
        cast(numerator as bigint) as numerator,
        cast(denominator as bigint) as denominator,
        case
            when measure = 'outpatient_dna_rate' then 'appointments'
            when measure = 'emergency_readmission_rate' then 'discharges'
            when min_age is not null then 'persons aged ' || cast(min_age as {{ dbt.type_string() }}) || '+'
            else 'persons'
        end as denominator_unit,
        case
            when denominator = 0 then null
            when measure in ('outpatient_dna_rate', 'emergency_readmission_rate')
                then cast(numerator as double) / denominator
            -- In double precision from the first operation: on Spark a literal such as 1000.0 is a
            -- DECIMAL, and a DECIMAL quotient keeps only six decimal places.
            else 1000 * cast(numerator as double) / denominator
        end as rate,
        case
            when denominator = 0 or measure = 'bed_days' then null
            when measure in ('outpatient_dna_rate', 'emergency_readmission_rate')
                then {{ wilson('lower', 'numerator', 'denominator') }}
            else 1000.0 * {{ byar('lower', 'numerator') }} / denominator
        end as rate_lower,
        case
            when denominator = 0 or measure = 'bed_days' then null
            when measure in ('outpatient_dna_rate', 'emergency_readmission_rate')
                then {{ wilson('upper', 'numerator', 'denominator') }}
            else 1000.0 * {{ byar('upper', 'numerator') }} / denominator
        end as rate_upper,
        case
            when measure in ('outpatient_dna_rate', 'emergency_readmission_rate') then 'proportion'
            when min_age is not null then 'per 1,000 persons aged ' || cast(min_age as {{ dbt.type_string() }}) || '+'
            else 'per 1,000 persons'
        end as rate_unit,
        cast(1000.0 * {{ dsr('value', 'sum_xw_n', 'sum_xw2_n2', 'total_count', 'standard_total') }} as double)
            as dsr,
        cast(1000.0 * {{ dsr('lower', 'sum_xw_n', 'sum_xw2_n2', 'total_count', 'standard_total') }} as double)
            as dsr_lower,
        cast(1000.0 * {{ dsr('upper', 'sum_xw_n', 'sum_xw2_n2', 'total_count', 'standard_total') }} as double)
            as dsr_upper,
        {{ build_stamp() }}
    from in_periods
)

select * from final
