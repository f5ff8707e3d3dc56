{#- The register rules: the registers variable in dbt_project.yml (condition, cluster, min_age,
    resolved_code). Models read it through this macro (so that sqlfluff can stand in for it). -#}
{% macro ldm_registers() -%}
    {{ return(var('registers')) }}
{%- endmacro %}
