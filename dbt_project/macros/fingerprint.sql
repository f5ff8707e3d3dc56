{#- A 64-bit hash of a row's values, for fingerprints that only need to differ when the values do
    (int_period_inputs). Engines hash differently, so a fingerprint is compared only with one the
    same engine computed. -#}
{% macro row_hash(columns) -%}
    {{ return(adapter.dispatch('row_hash')(columns)) }}
{%- endmacro %}

{% macro duckdb__row_hash(columns) -%}
    hash({{ columns | join(', ') }})
{%- endmacro %}

{% macro default__row_hash(columns) -%}
    xxhash64({{ columns | join(', ') }})
{%- endmacro %}
