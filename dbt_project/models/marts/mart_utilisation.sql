-- Use of services in the 12 months to reporting_period_end by the registered population at that
-- date, per 1,000 persons (and the outpatient DNA rate), by geography level and area, by condition
-- (the people on each register at that date) and by number of long-term conditions (0 .. 4+).
{% set count_measures = [
    'emergency_admissions', 'elective_admissions', 'bed_days',
    'outpatient_attendances', 'ae_attendances', 'community_contacts'] %}
{% set levels = ['city', 'age_band', 'sex', 'imd_quintile', 'imd_decile'] %}
with condition_counts as (
    select
        pop.person_id,
        count(registers.condition) as condition_count
    from {{ ref('int_registered_population') }} as pop
    left join {{ ref('int_registers') }} as registers
        on pop.person_id = registers.person_id
    group by pop.person_id
),

breakdowns as (
    select
        person_id,
        geography_level,
        area_code,
        area_name
    from {{ ref('int_population_by_area') }}
    where geography_level in ('{{ levels | join("', '") }}')
    union all
    -- A person is in the cell of every register they are on: these cells overlap.
    select
        person_id,
        'condition' as geography_level,
        condition as area_code,
        condition as area_name
    from {{ ref('int_registers') }}
    union all
    select
        person_id,
        'condition_count' as geography_level,
        case when condition_count >= 4 then '4+' else cast(condition_count as varchar) end as area_code,
        case
            when condition_count >= 4 then '4 or more long-term conditions'
            when condition_count = 1 then '1 long-term condition'
            else cast(condition_count as varchar) || ' long-term conditions'
        end as area_name
    from condition_counts
),

people as (
    select
        utilisation.*,
        breakdowns.geography_level,
        breakdowns.area_code,
        breakdowns.area_name
    from breakdowns
    inner join {{ ref('int_person_utilisation') }} as utilisation
        on breakdowns.person_id = utilisation.person_id
),

measures as (
    {% for measure in count_measures %}
        select
            '{{ measure }}' as measure,
            geography_level,
            area_code,
            max(area_name) as area_name,
            sum({{ measure }}) as numerator,
            count(*) as denominator
        from people
        group by geography_level, area_code
        union all
    {% endfor %}
    select
        'outpatient_dna_rate' as measure,
        geography_level,
        area_code,
        max(area_name) as area_name,
        sum(outpatient_dnas) as numerator,
        sum(outpatient_dnas + outpatient_attendances) as denominator
    from people
    group by geography_level, area_code
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
        {{ reporting_period_end() }} as reporting_period_end
    from measures
)

select * from final
