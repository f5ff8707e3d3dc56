{#- SQL around the ldm.stats UDFs (registered by the ldm.marts.stats_udfs dbt-duckdb plugin).
    Only the arithmetic that combines UDF results lives here; the interval formulas are Python. -#}

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
            {{ value }} + {{ scale }} * (byar_lower({{ total_count }}, {{ var('confidence_level') }}) - {{ total_count }})
        {%- else %}
            {{ value }} + {{ scale }} * (byar_upper({{ total_count }}, {{ var('confidence_level') }}) - {{ total_count }})
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
