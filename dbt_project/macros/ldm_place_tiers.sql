{#- Place tiers above the city's own areas (the place_tiers var: level, reference seed, key column of
    the registered population, the seed's code and name columns). A macro, so that sqlfluff can
    stand in for the var. -#}
{% macro ldm_place_tiers() -%}
    {{ return(var('place_tiers')) }}
{%- endmacro %}
