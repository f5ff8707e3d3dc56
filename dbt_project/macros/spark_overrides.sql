{#- Spark versions of three of dbt's own macros, used in place of dbt-spark's (the `dispatch` setting
    of dbt_project.yml searches this project before dbt for macros of dbt's namespace). Only spark__
    versions are defined here, so that on DuckDB nothing of dbt's or dbt-duckdb's is replaced. -#}

{#- cast(): the contracts of the marts give their text columns as varchar, DuckDB's name. dbt checks a
    contract by casting NULL to each declared type, and Spark refuses a VARCHAR without a length (a
    parse error); Spark's string is the type DuckDB calls VARCHAR, so it stands for it here. -#}
{% macro spark__cast(field, type) -%}
    cast({{ field }} as {{ 'string' if type | trim | lower in ('varchar', 'text') else type }})
{%- endmacro %}

{#- dateadd() for days, months and years: Spark's date_add and add_months (a date in, a date out; at
    a month's end add_months keeps to the last day of a shorter month, as DuckDB's date + interval
    does). dbt-spark's own version goes through unix timestamps in the session's time zone and wraps
    its argument in assert_not_null, which stops the query at a NULL date: the store has records
    without a date (int_period_inputs places them), where DuckDB's date + interval gives NULL. -#}
{% macro spark__dateadd(datepart, interval, from_date_or_timestamp) -%}
    {%- if datepart == 'day' -%}
        date_add(cast({{ from_date_or_timestamp }} as date), cast({{ interval }} as int))
    {%- elif datepart in ('month', 'year') -%}
        add_months(
            cast({{ from_date_or_timestamp }} as date),
            cast({{ interval }} as int) * {{ 12 if datepart == 'year' else 1 }}
        )
    {%- else -%}
        {{ return(dbt_spark.spark__dateadd(datepart, interval, from_date_or_timestamp)) }}
    {%- endif -%}
{%- endmacro %}

{#- A seed's rows on Spark. dbt-spark's loader binds each value into the SQL text as '<value>'
    without escaping it (the session method has no parameters), so a name with an apostrophe in the
    reference data breaks the statement and an empty cell arrives as the text 'None'. Here every
    value is an escaped literal cast to its column's type: NULL for an empty cell (as DuckDB's CSV
    reader reads it), and in text a backslash or a quote escaped with a backslash, as Spark SQL's
    string literals take them. -#}
{% macro spark__load_csv_rows(model, agate_table) %}
    {%- set column_override = model['config'].get('column_types', {}) -%}
    {%- set types = [] -%}
    {%- for column_name in agate_table.column_names -%}
        {%- do types.append(column_override.get(column_name, adapter.convert_type(agate_table, loop.index0))) -%}
    {%- endfor -%}
    {%- set statements = [] -%}
    {%- for chunk in agate_table.rows | batch(get_batch_size()) -%}
        {%- set sql -%}
            insert into {{ this.render() }} values
            {% for row in chunk -%}
                (
                {%- for value in row -%}
                    {%- if value is none -%}
                        cast(null as {{ types[loop.index0] }})
                    {%- else -%}
                        cast('{{ value | string | replace("\\", "\\\\") | replace("'", "\\'") }}' as {{ types[loop.index0] }})
                    {%- endif -%}
                    {{ ', ' if not loop.last }}
                {%- endfor -%}
                ){{ ',' if not loop.last }}
            {% endfor %}
        {%- endset -%}
        {%- do adapter.add_query(sql, abridge_sql_log=True) -%}
        {%- if loop.first -%}{%- do statements.append(sql) -%}{%- endif -%}
    {%- endfor -%}
    {{ return(statements[0]) }}
{% endmacro %}
