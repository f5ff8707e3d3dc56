{#- Emergency admissions for a condition: the admission_indicators var (measure, ICD-10 codelist
    seed). A macro, so that sqlfluff can stand in for the var. -#}
{% macro ldm_admission_indicators() -%}
    {{ return(var('admission_indicators')) }}
{%- endmacro %}

{#- Measures of mart_utilisation counted from a minimum age: another measure's events and persons in
    the ESP2013 bands from min_age up (the age_restricted_measures var, e.g. A&E attendances per
    1,000 aged 65+). A new one is an entry. -#}
{% macro ldm_age_restricted_measures() -%}
    {{ return(var('age_restricted_measures', [])) }}
{%- endmacro %}

{#- Every measure with a minimum age (admission indicators with min_age, and the age-restricted
    measures), as {measure: min_age}: their rates are per 1,000 persons of that age, standardised
    over the ESP2013 bands from it up. -#}
{% macro measure_min_ages() -%}
    {%- set ages = {} -%}
    {%- for indicator in ldm_admission_indicators() -%}
        {%- if indicator.min_age is defined and indicator.min_age is not none -%}
            {%- do ages.update({indicator.measure: indicator.min_age}) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- for restricted in ldm_age_restricted_measures() -%}
        {%- do ages.update({restricted.measure: restricted.min_age}) -%}
    {%- endfor -%}
    {{ return(ages) }}
{%- endmacro %}
