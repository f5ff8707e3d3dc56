-- The SNOMED CT codes of every register (from the registers variable in dbt_project.yml): each
-- cluster's diagnosis codes, and the resolved code where the register has one.
{% for register in ldm_registers() %}
    select
        '{{ register.condition }}' as condition,
        cast(code as {{ dbt.type_string() }}) as snomed_code,
        'diagnosis' as code_type
    from {{ ref(register.cluster) }}
    {%- if register.resolved_code %}
        union all
        select
            '{{ register.condition }}' as condition,
            '{{ register.resolved_code }}' as snomed_code,
            'resolved' as code_type
    {%- endif %}
    {% if not loop.last %}union all{% endif %}
{% endfor %}
