{#- Generic tests written for ldm (hub packages such as dbt_utils cannot be installed). -#}

{#- Rows whose combination of columns is not unique. -#}
{% test ldm_unique_combination(model, columns) %}
select
    {{ columns | join(', ') }},
    count(*) as n_rows
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}

{#- Rows for which a SQL expression is not true (NULL counts as a failure only when it is false). -#}
{% test ldm_expression_is_true(model, expression) %}
select *
from {{ model }}
where not ({{ expression }})
{% endtest %}

{#- Non-null values outside [min_value, max_value] (either bound may be omitted). -#}
{% test ldm_between(model, column_name, min_value=none, max_value=none) %}
select {{ column_name }}
from {{ model }}
where
    {{ column_name }} is not null
    and (
        false
        {% if min_value is not none %} or {{ column_name }} < {{ min_value }}{% endif %}
        {% if max_value is not none %} or {{ column_name }} > {{ max_value }}{% endif %}
    )
{% endtest %}
