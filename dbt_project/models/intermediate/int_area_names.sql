-- The name of every area of every geography level (all_geography_levels()), and of the breakdowns
-- mart_utilisation adds (the registers a person is on; how many): one row per level and area code.
-- The marts aggregate persons by code and attach these names to the cells (join_area_names()).
-- Where a lookup gives a code two names, the greatest is kept, so that each cell has one name.
{% set condition_counts = [
    ['0', '0 long-term conditions'], ['1', '1 long-term condition'], ['2', '2 long-term conditions'],
    ['3', '3 long-term conditions'], ['4+', '4 or more long-term conditions']] %}
{% set extra = [{'level': 'condition_count', 'names': condition_counts}] %}
{% set conditions = [] %}
{% for register in ldm_registers() %}{% do conditions.append([register.condition, register.condition]) %}{% endfor %}
{% do extra.append({'level': 'condition', 'names': conditions}) %}

with names as (
    {% for g in all_geography_levels() + extra %}
        {% set lookup = g.names if g.names is mapping else none %}
        {% set listed = (lookup.also if lookup and lookup.also is defined else []) if lookup else g.names %}
        {% if lookup %}
            select
                '{{ g.level }}' as geography_level,
                cast({{ lookup.code }} as {{ dbt.type_string() }}) as area_code,
                cast({{ lookup.name }} as {{ dbt.type_string() }}) as area_name
            from {{ ref(lookup.model) }}
            where {{ lookup.code }} is not null
            {% if listed %}union all{% endif %}
        {% endif %}
        {% for code, name in listed %}
            select
                '{{ g.level }}' as geography_level,
                cast('{{ code }}' as {{ dbt.type_string() }}) as area_code,
                cast('{{ name | replace("'", "''") }}' as {{ dbt.type_string() }}) as area_name
            {% if not loop.last %}union all{% endif %}
        {% endfor %}
        {% if not loop.last %}union all{% endif %}
    {% endfor %}
)

select
    geography_level,
    area_code,
    max(area_name) as area_name
from names
group by geography_level, area_code
