{#- Geography levels of the marts: each level's code, as an expression over int_registered_list's
    columns, and where its areas' names come from: a reference model (names: {model, code, name})
    or a fixed list (names: [[code, name], ...]). Every level partitions the registered population;
    a person whose area is not known falls in area 'unknown', so each level's denominators add up to
    the city's. Persons carry codes only; names are attached to the aggregated cells from
    int_area_names (join_area_names()), so millions of rows never carry the same few hundred names.

    A level's family names the levels whose areas nest, or nearly nest, in each other's (a PCN's
    practices; the wards, MSOAs and IMD deciles of LSOAs; the city and a person's own breakdowns):
    level_cells() counts the persons once per family and adds each level up from those counts. It is
    for speed only: any family gives the same cells. -#}
{% macro geography_levels() -%}
    {%- set quintiles = [] -%}
    {%- for q in range(1, 6) -%}
        {%- do quintiles.append([q | string, q | string ~ (' (most deprived)' if q == 1 else ' (least deprived)' if q == 5 else '')]) -%}
    {%- endfor -%}
    {%- set deciles = [] -%}
    {%- for d in range(1, 11) -%}
        {%- do deciles.append([d | string, d | string ~ (' (most deprived)' if d == 1 else ' (least deprived)' if d == 10 else '')]) -%}
    {%- endfor -%}
    {{ return([
        {'level': 'city', 'family': 'person', 'code': "'" ~ var('city_code') ~ "'", 'names': [[var('city_code'), var('city_name')]]},
        {'level': 'pcn', 'family': 'practice', 'code': 'pcn_code',
         'names': {'model': 'stg_reference__practices', 'code': 'pcn_code', 'name': 'pcn_name'}},
        {'level': 'practice', 'family': 'practice', 'code': 'practice_code',
         'names': {'model': 'stg_reference__practices', 'code': 'practice_code', 'name': 'practice_name'}},
        {'level': 'ward', 'family': 'area', 'code': 'ward_code',
         'names': {'model': 'stg_reference__wards', 'code': 'ward_code', 'name': 'ward_name'}},
        {'level': 'msoa11', 'family': 'area', 'code': 'msoa11_code',
         'names': {'model': 'stg_reference__msoa11_names', 'code': 'msoa11_code', 'name': 'msoa11_name'}},
        {'level': 'lsoa21', 'family': 'area', 'code': 'lsoa21_code',
         'names': {'model': 'stg_reference__lsoa21_wards', 'code': 'lsoa21_code', 'name': 'lsoa21_name'}},
        {'level': 'imd_quintile', 'family': 'area', 'code': 'cast(imd_quintile as ' ~ dbt.type_string() ~ ')', 'names': quintiles},
        {'level': 'imd_decile', 'family': 'area', 'code': 'cast(imd_decile as ' ~ dbt.type_string() ~ ')', 'names': deciles},
        {'level': 'age_band', 'family': 'person', 'code': 'age_band',
         'names': {'model': 'stg_reference__esp2013', 'code': 'age_band', 'name': 'age_band'}},
        {'level': 'sex', 'family': 'person', 'code': 'sex', 'names': [['F', 'Female'], ['M', 'Male']]},
        {'level': 'ethnic_group', 'family': 'person', 'code': 'ethnic_group',
         'names': {'model': 'stg_reference__ethnic_groups', 'code': 'ethnic_group', 'name': 'ethnic_group_name',
                   'also': [['unknown', 'Not known']]}},
    ]) }}
{%- endmacro %}

{#- Every level of the marts' place and breakdown columns: the city's own levels (geography_levels())
    and the place tiers of the place_tiers var (int_registered_list carries each tier's code as
    <level>_code, from its lookup; the names come from the same lookup). -#}
{% macro all_geography_levels() -%}
    {%- set levels = [] -%}
    {%- for g in geography_levels() -%}{%- do levels.append(g) -%}{%- endfor -%}
    {%- for tier in ldm_place_tiers() -%}
        {%- do levels.append({'level': tier.level, 'family': tier.get('family', tier.level), 'code': tier.level ~ '_code',
                              'names': {'model': tier.seed, 'code': tier.code, 'name': tier.name}}) -%}
    {%- endfor -%}
    {{ return(levels) }}
{%- endmacro %}

{#- The levels of all_geography_levels() named in `only` (all of them when it is none), in order. -#}
{% macro selected_levels(only=none) -%}
    {{ return(all_geography_levels() | selectattr('level', 'in', only) | list if only is not none else all_geography_levels()) }}
{%- endmacro %}

{#- GROUPING SETS over int_population_by_area's level code columns: one set per level (those named
    in `only`, when given), each with `keys` (e.g. period_end and age_band), so that one pass
    aggregates every level (rather than a row per person and level). For millions of rows,
    level_cells() does it in less time; this is for the few thousand deaths. -#}
{% macro level_grouping_sets(keys, only=none) -%}
    grouping sets (
        {%- for g in selected_levels(only) %}
        ({{ (keys + [g.level ~ '_code']) | join(', ') }}){{ ',' if not loop.last }}
        {%- endfor %}
    )
{%- endmacro %}

{#- The select-list items geography_level and area_code of a row aggregated by
    level_grouping_sets(): the level is the one whose code column was grouped (GROUPING() = 0); in a
    grouping set the other levels' columns are NULL, so the coalesce reads that level's code. The
    area's name is attached to the cells afterwards (join_area_names()). -#}
{% macro level_columns(only=none) -%}
    {{ level_columns_of(selected_levels(only)) }}
{%- endmacro %}

{#- level_columns() of the given levels (dicts with a `level`). -#}
{% macro level_columns_of(levels) -%}
    case
        {%- for g in levels %}
        when grouping({{ g.level }}_code) = 0 then '{{ g.level }}'
        {%- endfor %}
    end as geography_level,
    coalesce({% for g in levels %}{{ g.level }}_code{{ ', ' if not loop.last }}{% endfor %}) as area_code
{%- endmacro %}

{#- The cells of every level (those named in `only`, when given) and of each `extra_levels` entry
    ({level, code}: a breakdown the model adds, with its code as an expression over `source`), by
    `keys`, from the rows of `source` (a relation or CTE with int_population_by_area's <level>_code
    columns): the select-list keys, geography_level, area_code and each measure of `measures`
    ([name, aggregate] pairs; the aggregate must be a count or a sum, so that the sum of a level's
    finer cells is its cell).

    Two passes, so that millions of rows are not aggregated once per level: the rows are counted
    once per family of levels (all_geography_levels()), by keys and the codes of all the family's
    levels (a few thousand combinations where the levels nest: LSOAs carry their ward and IMD
    decile), and each level's cells are the sums of its own family's combinations. -#}
{% macro level_cells(source, keys, measures, only=none, extra_levels=[]) -%}
    {%- set levels = selected_levels(only) -%}
    {%- for g in extra_levels -%}{%- do levels.append({'level': g.level, 'family': g.level}) -%}{%- endfor -%}
    {%- set families = levels | map(attribute='family') | unique | list -%}
    select
        {% for key in keys %}{{ key }},{% endfor %}
        geography_level,
        area_code,
        {% for measure in measures %}{{ measure[0] }}{{ ',' if not loop.last }}{% endfor %}
    from (
        select
            {% for key in keys %}{{ key }},{% endfor %}
            level_family,
            {{ level_columns_of(levels) }},
            {% for measure in measures %}sum({{ measure[0] }}) as {{ measure[0] }}{{ ',' if not loop.last }}{% endfor %}
        from (
            select
                {% for key in keys %}{{ key }},{% endfor %}
                {% for g in levels %}{{ g.level }}_code,{% endfor %}
                case
                    {%- for family in families %}
                    {%- set first = levels | selectattr('family', 'equalto', family) | first %}
                    when grouping({{ first.level }}_code) = 0 then '{{ family }}'
                    {%- endfor %}
                end as level_family,
                {% for measure in measures %}{{ measure[1] }} as {{ measure[0] }}{{ ',' if not loop.last }}{% endfor %}
            from (
                select
                    {% for g in extra_levels %}{{ g.code }} as {{ g.level }}_code,{% endfor %}
                    level_rows.*
                from {{ source }} as level_rows
            ) as level_rows
            group by grouping sets (
                {%- for family in families %}
                {%- set columns = keys[:] %}
                {%- for g in levels if g.family == family %}{% do columns.append(g.level ~ '_code') %}{% endfor %}
                ({{ columns | join(', ') }}){{ ',' if not loop.last }}
                {%- endfor %}
            )
        ) as family_cells
        group by grouping sets (
            {%- for g in levels %}
            ({{ (keys + ['level_family', g.level ~ '_code']) | join(', ') }}){{ ',' if not loop.last }}
            {%- endfor %}
        )
    ) as level_cells
    where level_family = case geography_level
        {%- for g in levels %}
        when '{{ g.level }}' then '{{ g.family }}'
        {%- endfor %}
    end
{%- endmacro %}

{#- `left join int_area_names as <alias>` on the geography_level and area_code of `cells`: the name
    of each aggregated cell's area (NULL where the reference data do not name it, as for 'unknown'). -#}
{% macro join_area_names(cells, alias='area_names') -%}
    left join {{ ref('int_area_names') }} as {{ alias }}
        on {{ cells }}.geography_level = {{ alias }}.geography_level and {{ cells }}.area_code = {{ alias }}.area_code
{%- endmacro %}
