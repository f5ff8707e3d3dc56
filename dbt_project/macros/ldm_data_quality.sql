{#- Helpers of the generic tests in tests/generic/ldm_generic_tests.sql (see there for the two
    kinds of test). -#}

{#- The config of a data-quality test (see above); nothing for a test of ldm's own logic. The
    thresholds are also kept in the test's meta, for ldm.marts.build to say them. -#}
{% macro ldm_data_quality_config(max_share, min_rows) -%}
    {%- if max_share is not none -%}
        {{ config(
            tags=['data_quality'],
            meta={'max_share': max_share | float, 'min_rows': min_rows | int},
            warn_if='> 0',
            error_if='> ' ~ (min_rows | int) ~ ' and max(ldm_failing_share) > ' ~ (max_share | float),
        ) }}
    {%- endif -%}
{%- endmacro %}

{#- The rows of `model` where `condition` holds, with the failing share when it is a data-quality test. -#}
{% macro ldm_failing_rows(model, columns, condition, max_share) -%}
select
    {{ columns }}
    {%- if max_share is not none %},
    count(*) over () / (select count(*) from {{ model }}) as ldm_failing_share
    {%- endif %}
from {{ model }}
where {{ condition }}
{%- endmacro %}
