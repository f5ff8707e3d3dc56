{#- The delete+insert step of the incremental marts on DuckDB, with the rows to replace found by a
    semi-join on the unique key. dbt-duckdb's own version joins target and new rows on a unique key
    of several columns (`delete ... using new_rows where new.k1 = target.k1 and ...`); the marts'
    key (period_type, period_end) matches thousands of rows on each side, so that join pairs every
    old row of a period with every new one (78,000 rows of mart_prevalence: 3.0 s, where this
    semi-join takes 0.03 s). Rows deleted and inserted are the same. -#}
{% macro duckdb__get_delete_insert_merge_sql(target, source, unique_key, dest_columns, incremental_predicates) -%}
    {%- set dest_cols_csv = get_quoted_csv(dest_columns | map(attribute="name")) -%}
    {%- set keys = [unique_key] if unique_key is string else unique_key -%}
    {% if keys %}
        delete from {{ target }}
        where ({{ keys | join(', ') }}) in (
            select {{ keys | join(', ') }}
            from {{ source }}
        )
        {%- for predicate in incremental_predicates or [] %}
            and {{ predicate }}
        {%- endfor %};
    {% endif %}

    insert into {{ target }} ({{ dest_cols_csv }})
    (
        select {{ dest_cols_csv }}
        from {{ source }}
    )
{%- endmacro %}
