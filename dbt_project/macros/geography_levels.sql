{#- Geography levels of the marts: (level, code column, name expression) over
    int_registered_population. Every level partitions the registered population; a person whose
    area is not known falls in area 'unknown', so each level's denominators add up to the city's. -#}
{% macro geography_levels() -%}
    {{ return([
        {'level': 'city', 'code': "'" ~ var('city_code') ~ "'", 'name': "'" ~ var('city_name') ~ "'"},
        {'level': 'pcn', 'code': 'pcn_code', 'name': 'pcn_name'},
        {'level': 'practice', 'code': 'practice_code', 'name': 'practice_name'},
        {'level': 'ward', 'code': 'ward_code', 'name': 'ward_name'},
        {'level': 'msoa11', 'code': 'msoa11_code', 'name': 'msoa11_name'},
        {'level': 'lsoa21', 'code': 'lsoa21_code', 'name': 'lsoa21_name'},
        {'level': 'imd_quintile', 'code': 'cast(imd_quintile as ' ~ dbt.type_string() ~ ')',
         'name': "case imd_quintile when 1 then '1 (most deprived)' when 5 then '5 (least deprived)' else cast(imd_quintile as " ~ dbt.type_string() ~ ") end"},
        {'level': 'imd_decile', 'code': 'cast(imd_decile as ' ~ dbt.type_string() ~ ')',
         'name': "case imd_decile when 1 then '1 (most deprived)' when 10 then '10 (least deprived)' else cast(imd_decile as " ~ dbt.type_string() ~ ") end"},
        {'level': 'age_band', 'code': 'age_band', 'name': 'age_band'},
        {'level': 'sex', 'code': 'sex', 'name': "case sex when 'F' then 'Female' when 'M' then 'Male' end"},
        {'level': 'ethnic_group', 'code': 'ethnic_group', 'name': 'ethnic_group_name'},
    ]) }}
{%- endmacro %}

{#- Every level of the marts' place and breakdown columns: the city's own levels (geography_levels())
    and the place tiers of the place_tiers var (their code and name from the joined lookup aliased
    tier_<level>). int_population_by_area gives each level a <level>_code and <level>_name column. -#}
{% macro all_geography_levels() -%}
    {%- set levels = [] -%}
    {%- for g in geography_levels() -%}{%- do levels.append(g) -%}{%- endfor -%}
    {%- for tier in ldm_place_tiers() -%}
        {%- do levels.append({'level': tier.level, 'code': 'tier_' ~ tier.level ~ '.area_code',
                              'name': 'tier_' ~ tier.level ~ '.area_name'}) -%}
    {%- endfor -%}
    {{ return(levels) }}
{%- endmacro %}

{#- GROUPING SETS over int_population_by_area's level columns: one set per level (those named in
    `only`, when given), each with `keys` (e.g. period_end and age_band), so that one pass over the
    population aggregates every level (rather than a row per person and level). -#}
{% macro level_grouping_sets(keys, only=none) -%}
    grouping sets (
        {%- for g in all_geography_levels() if only is none or g.level in only %}
        ({{ (keys + [g.level ~ '_code', g.level ~ '_name']) | join(', ') }}){{ ',' if not loop.last }}
        {%- endfor %}
    )
{%- endmacro %}

{#- The select-list items geography_level, area_code and area_name of a row aggregated by
    level_grouping_sets(): the level is the one whose code column was grouped (GROUPING() = 0); in a
    grouping set the other levels' columns are NULL, so the coalesces read that level's code and name. -#}
{% macro level_columns(only=none) -%}
    {%- set levels = [] -%}
    {%- for g in all_geography_levels() if only is none or g.level in only -%}{%- do levels.append(g) -%}{%- endfor -%}
    case
        {%- for g in levels %}
        when grouping({{ g.level }}_code) = 0 then '{{ g.level }}'
        {%- endfor %}
    end as geography_level,
    coalesce({% for g in levels %}{{ g.level }}_code{{ ', ' if not loop.last }}{% endfor %}) as area_code,
    coalesce({% for g in levels %}{{ g.level }}_name{{ ', ' if not loop.last }}{% endfor %}) as area_name
{%- endmacro %}
