-- Use of services in the 12 months to reporting_period_end by the registered population at that
-- date, per geography level (every place tier and breakdown of geography_levels()), area and ESP2013
-- age band: events of each kind and the persons they come from. The inputs of mart_utilisation (its
-- counts, rates and age-standardised rates).
{% set measures = [
    'emergency_admissions', 'elective_admissions', 'bed_days',
    'outpatient_attendances', 'outpatient_dnas', 'ae_attendances', 'community_contacts']
    + ldm_admission_indicators() | map(attribute='measure') | list %}
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
        breakdowns.area_name,
        pop.age_band
    from breakdowns
    inner join {{ ref('int_person_utilisation') }} as utilisation
        on breakdowns.person_id = utilisation.person_id
    inner join {{ ref('int_registered_population') }} as pop
        on breakdowns.person_id = pop.person_id
),

cells as (
    -- One pass over the people: every measure's sum and the persons of each cell.
    select
        geography_level,
        area_code,
        max(area_name) as area_name,
        age_band,
        {% for measure in measures %}
            sum({{ measure }}) as {{ measure }},
        {% endfor %}
        count(*) as person_count
    from people
    group by geography_level, area_code, age_band
),

final as (
    {% for measure in measures %}
        select
            '{{ measure }}' as measure,
            geography_level,
            area_code,
            area_name,
            age_band,
            cast({{ measure }} as bigint) as event_count,
            cast(person_count as bigint) as person_count
        from cells
        {% if not loop.last %}union all{% endif %}
    {% endfor %}
)

select * from final
