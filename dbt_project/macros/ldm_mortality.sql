{#- The mortality_levels and mortality_causes vars. Macros, so that sqlfluff can stand in for them. -#}
{% macro ldm_mortality_levels() -%}
    {{ return(var('mortality_levels')) }}
{%- endmacro %}

{% macro ldm_mortality_causes() -%}
    {{ return(var('mortality_causes')) }}
{%- endmacro %}

{#- The start of the abridged life table band of an age (0, 1-4, 5-9, ..., 85-89, 90+), as
    ldm.stats.LE_AGE_STARTS names them. -#}
{% macro life_table_band(age) -%}
    case when {{ age }} = 0 then 0 when {{ age }} < 5 then 1 else least({{ age }} - {{ age }} % 5, 90) end
{%- endmacro %}
