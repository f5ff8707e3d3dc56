{#- The register rules as rows (condition, min_age, resolved_code), used by int_registers and the
    prevalence mart. -#}
{% macro register_rules() -%}
    {% for register in ldm_registers() %}
        select
            '{{ register.condition }}' as condition,
            {{ register.min_age }} as min_age,
            {% if register.resolved_code -%}
                '{{ register.resolved_code }}'
            {%- else -%}
                cast(null as {{ dbt.type_string() }})
            {%- endif %} as resolved_code
        {% if not loop.last %}union all{% endif %}
    {% endfor %}
{%- endmacro %}
