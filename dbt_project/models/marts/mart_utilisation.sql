-- Use of services in the 12 months to reporting_period_end by the registered population at that
-- date, per 1,000 persons (and the outpatient DNA rate), by geography level and area.
{% set count_measures = [
    'emergency_admissions', 'elective_admissions', 'bed_days',
    'outpatient_attendances', 'ae_attendances', 'community_contacts'] %}
{% set levels = ['city', 'age_band', 'sex', 'imd_quintile', 'imd_decile'] %}
with people as (
    select
        utilisation.*,
        pop.geography_level,
        pop.area_code,
        pop.area_name
    from {{ ref('int_population_by_area') }} as pop
    inner join {{ ref('int_person_utilisation') }} as utilisation
        on pop.person_id = utilisation.person_id
    where pop.geography_level in ('{{ levels | join("', '") }}')
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
