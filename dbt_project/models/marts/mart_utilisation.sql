-- Use of services in the 12 months to reporting_period_end by the registered population at that
-- date, per 1,000 persons (and the outpatient DNA rate), by geography level and area, by condition
-- (the people on each register at that date) and by number of long-term conditions (0 .. 4+);
-- with directly age-standardised rates (ESP2013) for the event counts, from the age-band cells of
-- int_utilisation_by_age_band.
with cells as (
    select * from {{ ref('int_utilisation_by_age_band') }}
),

measures as (
    select
        measure,
        geography_level,
        area_code,
        max(area_name) as area_name,
        sum(event_count) as numerator,
        sum(person_count) as denominator
    from cells
    -- outpatient_dnas are only the DNA rate's numerator
    where measure <> 'outpatient_dnas'
    group by measure, geography_level, area_code
    union all
    select
        'outpatient_dna_rate' as measure,
        geography_level,
        area_code,
        max(area_name) as area_name,
        sum(case when measure = 'outpatient_dnas' then event_count else 0 end) as numerator,
        sum(event_count) as denominator
    from cells
    where measure in ('outpatient_dnas', 'outpatient_attendances')
    group by geography_level, area_code
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

standard as (
    -- ESP2013 bands for each breakdown level; for a register, only the bands its age rule admits
    -- (as in mart_prevalence).
    select
        levels.geography_level,
        levels.area_code,
        esp.age_band,
        cast(esp.standard_population as double) as standard_population
    from levels
    cross join {{ ref('stg_reference__esp2013') }} as esp
    left join rules
        on levels.geography_level = 'condition' and levels.area_code = rules.condition
    where rules.min_age is null or esp.age_upper is null or esp.age_upper >= rules.min_age
),

standard_totals as (
    select
        geography_level,
        area_code,
        sum(standard_population) as standard_total
    from standard
    group by geography_level, area_code
),

dsr_sums as (
    -- Bands with no local population contribute nothing to the rate (their weight stays in the
    -- standard total). No DSR for the age_band level: a rate within one age band needs no
    -- standardising.
    select
        cells.measure,
        cells.geography_level,
        cells.area_code,
        {{ dsr_band_sums('cells.event_count', 'cells.person_count', 'standard.standard_population', 'cells.age_band') }}
    from cells
    inner join standard
        on
            cells.geography_level = standard.geography_level
            and cells.area_code = standard.area_code
            and cells.age_band = standard.age_band
    -- Bed days are not standardised: Dobson's interval needs a Poisson count of events, and the
    -- days of one spell are not independent events (the mart gives them no crude interval either).
    where
        cells.measure not in ('bed_days', 'outpatient_dnas')
        and cells.geography_level <> 'age_band'
    group by cells.measure, cells.geography_level, cells.area_code
),

dsr_inputs as (
    select
        measures.*,
        dsr_sums.sum_xw_n,
        dsr_sums.sum_xw2_n2,
        dsr_sums.total_count,
        standard_totals.standard_total
    from measures
    left join dsr_sums
        on
            measures.measure = dsr_sums.measure
            and measures.geography_level = dsr_sums.geography_level
            and measures.area_code = dsr_sums.area_code
    left join standard_totals
        on
            measures.geography_level = standard_totals.geography_level
            and measures.area_code = standard_totals.area_code
),

final as (
    select
        measure,
        geography_level,
        area_code,
        area_name,
        cast(numerator as bigint) as numerator,
        cast(denominator as bigint) as denominator,
        case when measure = 'outpatient_dna_rate' then 'appointments' else 'persons' end as denominator_unit,
        case
            when denominator = 0 then null
            when measure = 'outpatient_dna_rate' then cast(numerator as double) / denominator
            else 1000.0 * numerator / denominator
        end as rate,
        case
            when denominator = 0 or measure = 'bed_days' then null
            when measure = 'outpatient_dna_rate'
                then wilson_lower(numerator, denominator, {{ var('confidence_level') }})
            else 1000.0 * byar_lower(numerator, {{ var('confidence_level') }}) / denominator
        end as rate_lower,
        case
            when denominator = 0 or measure = 'bed_days' then null
            when measure = 'outpatient_dna_rate'
                then wilson_upper(numerator, denominator, {{ var('confidence_level') }})
            else 1000.0 * byar_upper(numerator, {{ var('confidence_level') }}) / denominator
        end as rate_upper,
        case when measure = 'outpatient_dna_rate' then 'proportion' else 'per 1,000 persons' end as rate_unit,
        cast(1000.0 * {{ dsr('value', 'sum_xw_n', 'sum_xw2_n2', 'total_count', 'standard_total') }} as double)
            as dsr,
        cast(1000.0 * {{ dsr('lower', 'sum_xw_n', 'sum_xw2_n2', 'total_count', 'standard_total') }} as double)
            as dsr_lower,
        cast(1000.0 * {{ dsr('upper', 'sum_xw_n', 'sum_xw2_n2', 'total_count', 'standard_total') }} as double)
            as dsr_upper,
        {{ reporting_period_end() }} as reporting_period_end
    from dsr_inputs
)

select * from final
