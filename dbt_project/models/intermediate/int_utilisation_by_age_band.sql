-- Use of services in each 12-month window of the periods to build (whose window the data cover), by
-- the registered population at the window's end, per geography level (every place tier and
-- breakdown of geography_levels()), area and ESP2013 age band: events of each kind and the persons
-- they come from. The inputs of mart_utilisation (its counts, rates and age-standardised rates).
{% set measures = [
    'emergency_admissions', 'elective_admissions', 'bed_days',
    'outpatient_attendances', 'outpatient_dnas', 'ae_attendances', 'community_contacts',
    'discharges', 'emergency_readmissions_30_days']
    + ldm_admission_indicators() | map(attribute='measure') | list %}
{#- A measure with a minimum age counts only the age bands from it up (numerator and persons); an
    age-restricted measure is another measure's events in those bands. -#}
{% set min_ages = measure_min_ages() %}
{% set restricted = ldm_age_restricted_measures() %}
{% set counted = measures + restricted | map(attribute='measure') | list %}
{#- The cells' sums: each measure, and the persons (person_count). -#}
{% set measure_sums = [] %}
{% for measure in measures %}{% do measure_sums.append([measure, 'sum(' ~ measure ~ ')']) %}{% endfor %}
{% do measure_sums.append(['person_count', 'count(*)']) %}
{% set cell_keys = ['period_start', 'period_end', 'age_band'] %}
{% set condition_count_level = {'level': 'condition_count', 'code':
    "case when condition_count = 4 then '4+' else cast(condition_count as " ~ dbt.type_string() ~ ") end"} %}
{#- The use of services of a person of the registered population (pop) in the window ending on
    its date: none when int_person_utilisation has no row for them. -#}
{% set use_of_services %}
    {% for measure in measures %}
        coalesce(utilisation.{{ measure }}, 0) as {{ measure }}{% if not loop.last %},{% endif %}
    {% endfor %}
{% endset %}
{% set in_window %}
    inner join windows
        on pop.period_end = windows.period_end
    left join {{ ref('int_person_utilisation') }} as utilisation
        on
            windows.period_start = utilisation.period_start
            and windows.period_end = utilisation.period_end
            and pop.person_id = utilisation.person_id
{% endset %}
with windows as (
    select distinct
        period_start,
        period_end
    from {{ ref('int_periods') }}
    where to_build and activity_complete
),

register_counts as (
    -- How many registers each person is on at each period end (4 standing for 4 or more).
    select
        period_end,
        person_id,
        least(count(*), 4) as condition_count
    from {{ ref('int_registers') }}
    group by period_end, person_id
),

people as (
    -- Everyone in the registered population at the window's end, with their use of services in it
    -- (none when they have no row in int_person_utilisation), their area at every level and how
    -- many registers they are on.
    select
        windows.period_start,
        pop.*,
        coalesce(counts.condition_count, 0) as condition_count,
        {{ use_of_services }}
    from {{ ref('int_population_by_area') }} as pop
    {{ in_window }}
    left join register_counts as counts
        on pop.period_end = counts.period_end and pop.person_id = counts.person_id
),

-- Every geography level, and the number of registers a person is on (level condition_count; area
-- '4+' for 4 or more), from the people (level_cells()). Read by this one aggregate, the wide rows of
-- people are not kept whole for several readers (DuckDB keeps a CTE read more than once).
level_cells as (
    {{ level_cells('people', cell_keys, measure_sums, extra_levels=[condition_count_level]) }}
),

register_people as (
    -- The persons on each register at the window's end with their use of services in it (a person
    -- is in the cell of every register they are on: these cells overlap).
    select
        windows.period_start,
        pop.period_end,
        registers.condition,
        pop.age_band,
        {{ use_of_services }}
    from {{ ref('int_registers') }} as registers
    inner join {{ ref('int_population_by_area') }} as pop
        on registers.period_end = pop.period_end and registers.person_id = pop.person_id
    {{ in_window }}
),

condition_cells as (
    select
        period_start,
        period_end,
        'condition' as geography_level,
        condition as area_code,
        age_band,
        {% for measure in measures %}
            sum({{ measure }}) as {{ measure }},
        {% endfor %}
        count(*) as person_count
    from register_people
    group by period_start, period_end, condition, age_band
),

cells as (
    -- The areas' names attached to the cells (int_area_names), not to the people.
    select
        all_cells.*,
        area_names.area_name
    from (
        select
            period_start,
            period_end,
            geography_level,
            area_code,
            age_band,
            {% for measure in measures %}
                {{ measure }},
            {% endfor %}
            person_count
        from level_cells
        union all
        select * from condition_cells
    ) as all_cells
    {{ join_area_names('all_cells') }}
),

measure_list as (
    -- One row per measure: the column of the cells it counts and the age its bands start from. The
    -- cells are read once and crossed with this list (a union of one select per measure would read
    -- them once per measure where the engine does not keep a CTE, as Spark does not).
    {% for measure in counted %}
        select
            '{{ measure }}' as measure,
            {{ 'true' if measure in min_ages else 'false' }} as age_restricted,
            {{ min_ages.get(measure, 0) }} as min_age
        {% if not loop.last %}union all{% endif %}
    {% endfor %}
),

final as (
    select
        cells.period_start,
        cells.period_end,
        measure_list.measure,
        cells.geography_level,
        cells.area_code,
        cells.area_name,
        cells.age_band,
        cast(
            case measure_list.measure
                {% for measure in counted %}
                    {% set source = (restricted | selectattr('measure', 'equalto', measure)
                        | map(attribute='of') | first) or measure %}
                    when '{{ measure }}' then cells.{{ source }}
                {% endfor %}
            end as bigint
        ) as event_count,
        cast(cells.person_count as bigint) as person_count
    from cells
    cross join measure_list
    left join {{ ref('stg_reference__esp2013') }} as esp
        on cells.age_band = esp.age_band
    -- A measure with a minimum age counts only the ESP2013 bands from it up.
    where not measure_list.age_restricted or esp.age_lower >= measure_list.min_age
)

select * from final
