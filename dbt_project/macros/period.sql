{#- The point in time of the registers, from the reporting_period_end variable (ISO date). -#}
{% macro reporting_period_end() -%}
    cast('{{ var("reporting_period_end") }}' as date)
{%- endmacro %}

{#- Start of the 12-month utilisation window ending at reporting_period_end (exclusive). -#}
{% macro reporting_year_start() -%}
    {{ dbt.dateadd('year', -1, reporting_period_end()) }}
{%- endmacro %}

{#- Whether a date falls in the 12 months to reporting_period_end (after their start, up to and
    including their end). -#}
{% macro in_reporting_year(date_column) -%}
    ({{ date_column }} > {{ reporting_year_start() }} and {{ date_column }} <= {{ reporting_period_end() }})
{%- endmacro %}

{#- Age in completed years at a date, from year and month of birth. Exact when the date is the
    last day of a month (as a reporting period end is); otherwise a birthday in the date's own
    month is counted as passed. -#}
{% macro age_at(year_of_birth, month_of_birth, at_date) -%}
    (extract(year from {{ at_date }}) - {{ year_of_birth }}
        - case when {{ month_of_birth }} > extract(month from {{ at_date }}) then 1 else 0 end)
{%- endmacro %}
