{#- SQL around the ldm.stats UDFs (registered by the ldm.marts.stats_udfs dbt-duckdb plugin, and by
    ldm.spark.udfs on a Spark session that ldm starts). Only the arithmetic that combines interval
    limits lives here; the interval formulas are Python (ldm.stats), called as UDFs, except where
    the stats_functions var is 'sql': then wilson() and byar() write the same formulas in SQL, for
    a SQL endpoint (a Databricks SQL warehouse, a Thrift server) where no Python UDF can be
    registered. tests/test_stats_sql.py holds the two copies to each other and to ldm.stats. -#}

{#- confidence_level's two-sided critical value as a DOUBLE literal (for the 'sql' spelling). -#}
{% macro critical_value() -%}
    {{ return('cast(' ~ normal_quantile(var('confidence_level')) ~ ' as double)') }}
{%- endmacro %}

{#- Wilson score limit (part 'lower' or 'upper') of the proportion x/n at confidence_level:
    ldm.stats.wilson_lower / wilson_upper. NULL when x or n is NULL. -#}
{% macro wilson(part, x, n) -%}
    {%- if var('stats_functions') == 'sql' -%}
        {#- In DOUBLE throughout, as ldm.stats computes (a literal such as 1.0 is a DECIMAL in SQL). -#}
        {%- set z = critical_value() -%}
        {%- set x = 'cast(' ~ x ~ ' as double)' -%}
        {%- set n = 'cast(' ~ n ~ ' as double)' -%}
        ((2.0 * {{ x }} + {{ z }} * {{ z }} {{ '-' if part == 'lower' else '+' }} {{ z }} * sqrt({{ z }} * {{ z }}
            + 4.0 * {{ x }} * (1.0 - {{ x }} / {{ n }}))) / (2.0 * ({{ n }} + {{ z }} * {{ z }})))
    {%- else -%}
        wilson_{{ part }}({{ x }}, {{ n }}, {{ var('confidence_level') }})
    {%- endif -%}
{%- endmacro %}

{#- Byar's limit (part 'lower' or 'upper') of a count x at confidence_level: ldm.stats.byar_lower /
    byar_upper (0 for the lower limit of 0; NULL where the lower formula goes negative, and for a
    NULL count). -#}
{% macro byar(part, x) -%}
    {%- if var('stats_functions') == 'sql' -%}
        {%- set z = critical_value() -%}
        {%- set x = 'cast(' ~ x ~ ' as double)' -%}
        {%- if part == 'lower' -%}
            {%- set base = '(1.0 - 1.0 / (9.0 * ' ~ x ~ ') - ' ~ z ~ ' / (3.0 * sqrt(' ~ x ~ ')))' -%}
            (case when {{ x }} = 0 then 0.0 when {{ base }} >= 0 then {{ x }} * power({{ base }}, 3) end)
        {%- else -%}
            {%- set x1 = '(' ~ x ~ ' + 1.0)' -%}
            ({{ x1 }} * power(1.0 - 1.0 / (9.0 * {{ x1 }}) + {{ z }} / (3.0 * sqrt({{ x1 }})), 3))
        {%- endif -%}
    {%- else -%}
        byar_{{ part }}({{ x }}, {{ var('confidence_level') }})
    {%- endif -%}
{%- endmacro %}

{#- Directly standardised rate per person with Dobson's interval, from the sums over age bands of
    x*w/n (sum_xw_n), x*(w/n)^2 (sum_xw2_n2), the total count x (total_count) and the standard
    population total W (standard_total), as PHEindicatormethods' phe_dsr. NULL when the total
    count is below dsr_min_total_count. part is 'value', 'lower' or 'upper'. -#}
{% macro dsr(part, sum_xw_n, sum_xw2_n2, total_count, standard_total) -%}
    {%- set value = '(' ~ sum_xw_n ~ ' / ' ~ standard_total ~ ')' -%}
    {%- set scale = 'sqrt(' ~ sum_xw2_n2 ~ ' / (' ~ standard_total ~ ' * ' ~ standard_total ~ ') / ' ~ total_count ~ ')' -%}
    case
        when {{ total_count }} >= {{ var('dsr_min_total_count') }} then
        {%- if part == 'value' %}
            {{ value }}
        {%- elif part == 'lower' %}
            {{ value }} + {{ scale }} * ({{ byar('lower', total_count) }} - {{ total_count }})
        {%- else %}
            {{ value }} + {{ scale }} * ({{ byar('upper', total_count) }} - {{ total_count }})
        {%- endif %}
    end
{%- endmacro %}

{#- The three sums over age bands that dsr() needs, as select-list items named sum_xw_n, sum_xw2_n2
    and total_count: count x, local band population n and standard band population w per band.
    The floating-point sums add the bands in the order of order_by (the age band), so that every
    build gives the same bits: in the order rows happen to arrive, the last digit can vary between
    builds (and with it the SII and RII computed from the DSRs). -#}
{% macro dsr_band_sums(count, population, standard, order_by) -%}
    {{ ordered_sum(count ~ ' * ' ~ standard ~ ' / ' ~ population, order_by) }} as sum_xw_n,
    {{ ordered_sum(count ~ ' * (' ~ standard ~ ' / ' ~ population ~ ') * (' ~ standard ~ ' / ' ~ population ~ ')', order_by) }}
        as sum_xw2_n2,
    sum({{ count }}) as total_count
{%- endmacro %}
