{#- Emergency admissions for a condition: the admission_indicators var (measure, ICD-10 codelist
    seed). A macro, so that sqlfluff can stand in for the var. -#}
{% macro ldm_admission_indicators() -%}
    {{ return(var('admission_indicators')) }}
{%- endmacro %}
