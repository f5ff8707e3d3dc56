{#- Generic tests written for ldm (hub packages such as dbt_utils cannot be installed).

    Two kinds of test, told apart by `max_share`:
    - without it, a test guards ldm's own logic (keys, intervals, reconciliations): any failing row
      is an error, as in dbt by default;
    - with it, a test guards the quality of what providers sent: a record that got past validation
      with a value the marts cannot use. One such record must not stop the monthly run, so the test
      warns on any failing row, with the number of rows, and fails the build only when more than
      `max_share` of the model's rows fail (a systematic fault, not a typo) and more than `min_rows`
      (10 unless given: in a small extract one row can be more than the share). Such tests are
      tagged `data_quality` (`dbt test --select tag:data_quality`).
    dbt's warn_if and error_if compare the count with a fixed number, so the share is computed in
    the test: each failing row carries the failing share of the model (`ldm_failing_share`), and
    error_if checks it beside the count. The count dbt reports (`failures` in run_results.json) is
    always the number of failing rows. The helpers are in macros/ldm_data_quality.sql. -#}

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
{% test ldm_expression_is_true(model, expression, max_share=none, min_rows=10) %}
{{ ldm_data_quality_config(max_share, min_rows) }}
{{ ldm_failing_rows(model, '*', 'not (' ~ expression ~ ')', max_share) }}
{% endtest %}

{#- Non-null values outside [min_value, max_value] (either bound may be omitted). -#}
{% test ldm_between(model, column_name, min_value=none, max_value=none, max_share=none, min_rows=10) %}
{{ ldm_data_quality_config(max_share, min_rows) }}
{%- set outside -%}
    {{ column_name }} is not null
    and (
        false
        {% if min_value is not none %} or {{ column_name }} < {{ min_value }}{% endif %}
        {% if max_value is not none %} or {{ column_name }} > {{ max_value }}{% endif %}
    )
{%- endset -%}
{{ ldm_failing_rows(model, column_name, outside, max_share) }}
{% endtest %}

{#- Non-null values not in a list (text values are quoted unless quote=false), one row per failing row. -#}
{% test ldm_accepted_values(model, column_name, values, quote=true, max_share=none, min_rows=10) %}
{{ ldm_data_quality_config(max_share, min_rows) }}
{%- set listed -%}
    {%- for value in values -%}
        {%- if quote %}'{{ value }}'{% else %}{{ value }}{% endif %}{{ ', ' if not loop.last }}
    {%- endfor -%}
{%- endset -%}
{{ ldm_failing_rows(model, column_name, column_name ~ ' is not null and ' ~ column_name ~ ' not in (' ~ listed ~ ')', max_share) }}
{% endtest %}

{#- Tiers reconcile: for every group of `keys` (e.g. period and measure), the sum of `columns` over
    the areas of each partitioning geography level equals the city's. `levels` are the levels that
    partition the population (a person in exactly one area); one row per group and level that does
    not add up. -#}
{% test ldm_levels_add_up_to_city(model, keys, columns, levels) %}
with sums as (
    select
        {{ keys | join(', ') }},
        geography_level,
        {% for column in columns %}
            sum({{ column }}) as {{ column }}{{ ',' if not loop.last }}
        {% endfor %}
    from {{ model }}
    where geography_level in ('city'{% for level in levels %}, '{{ level }}'{% endfor %})
    group by {{ keys | join(', ') }}, geography_level
)

select
    {% for key in keys %}levels.{{ key }}, {% endfor %}
    levels.geography_level,
    {% for column in columns %}levels.{{ column }} as level_{{ column }}, city.{{ column }} as city_{{ column }}{{ ',' if not loop.last }}{% endfor %}
from sums as levels
inner join sums as city
    on
        city.geography_level = 'city'
        {% for key in keys %}and levels.{{ key }} = city.{{ key }} {% endfor %}
where
    levels.geography_level <> 'city'
    and (
        false
        {% for column in columns %}or levels.{{ column }} <> city.{{ column }} {% endfor %}
    )
{% endtest %}
