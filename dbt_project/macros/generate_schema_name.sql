{#- Use a model's custom schema as given (staging, intermediate, marts, reference), not prefixed with
    the target schema, so that analysts find the marts in schema "marts". -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
