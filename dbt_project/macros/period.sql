{#- The latest point in time of the marts, from the reporting_period_end variable (ISO date, the
    last day of a month): the registers and list of mart_person_analysis, and the end of the
    series of periods (int_periods). -#}
{% macro reporting_period_end() -%}
    cast('{{ var("reporting_period_end") }}' as date)
{%- endmacro %}

{#- Quarter ends (last days of March, June, September and December) from the latest one on or
    before reporting_period_end backwards, as ISO dates: the ends of the rolling 12-month periods
    and, in March, of the financial years. Worked out at compile time, so every engine reads the
    same literal dates. -#}
{% macro quarter_ends(count=80) -%}
    {%- set end = modules.datetime.date.fromisoformat(var('reporting_period_end')) -%}
    {%- set ns = namespace(year=end.year, month=end.month - end.month % 3, ends=[]) -%}
    {%- if ns.month == 0 -%}{%- set ns.year = ns.year - 1 -%}{%- set ns.month = 12 -%}{%- endif -%}
    {%- for _ in range(count) -%}
        {%- set next_first = modules.datetime.date(ns.year + (1 if ns.month == 12 else 0), 1 if ns.month == 12 else ns.month + 1, 1) -%}
        {%- do ns.ends.append((next_first - modules.datetime.timedelta(days=1)).isoformat()) -%}
        {%- set ns.month = ns.month - 3 -%}
        {%- if ns.month <= 0 -%}{%- set ns.year = ns.year - 1 -%}{%- set ns.month = ns.month + 12 -%}{%- endif -%}
    {%- endfor -%}
    {{ return(ns.ends) }}
{%- endmacro %}

{#- The points in time this build computes: the end of every period of int_periods still to
    build; and reporting_period_end (for mart_person_analysis). With period_starts (the registered
    list), also the day before each such period whose activity the data cover starts: the list at
    its start, for the person-years of the life tables. Registers and prevalence are counted at
    period ends only, so they leave those days out (period_starts=false). One row per date
    (period_end). -#}
{% macro period_ends(period_starts=true) -%}
    select distinct period_end from {{ ref('int_periods') }} where to_build
    {%- if period_starts %}
    union
    select distinct cast({{ dbt.dateadd('day', -1, 'period_start') }} as date) as period_end
    from {{ ref('int_periods') }}
    where to_build and activity_complete
    {%- endif %}
    union
    select {{ reporting_period_end() }} as period_end
{%- endmacro %}

{#- Whether a date falls in a period (on or after its first day, up to and including its last). -#}
{% macro in_period(date_column, periods='periods') -%}
    ({{ date_column }} >= {{ periods }}.period_start and {{ date_column }} <= {{ periods }}.period_end)
{%- endmacro %}

{#- Age in completed years at a date, from year and month of birth. Exact when the date is the
    last day of a month (as a period end is); otherwise a birthday in the date's own month is
    counted as passed. -#}
{% macro age_at(year_of_birth, month_of_birth, at_date) -%}
    (extract(year from {{ at_date }}) - {{ year_of_birth }}
        - case when {{ month_of_birth }} > extract(month from {{ at_date }}) then 1 else 0 end)
{%- endmacro %}

{#- The ESP2013 band (age_band, age_lower) of each age from 0 to max_plausible_age, one row per age:
    persons join their band on equality, where a range join over millions of rows is slower. An
    older age takes the band of max_plausible_age (the open band): join on least(age, that). -#}
{% macro esp2013_band_of_each_age() -%}
    select
        ages.age,
        esp.age_band,
        esp.age_lower
    from (
        select generated_number - 1 as age
        from ({{ dbt.generate_series(var('max_plausible_age') + 1) }}) as series
    ) as ages
    inner join {{ ref('stg_reference__esp2013') }} as esp
        on ages.age >= esp.age_lower and (esp.age_upper is null or ages.age <= esp.age_upper)
{%- endmacro %}

{#- The build stamp every mart row carries: the dbt invocation that wrote it, when, and the head of
    the store's audit chain it was built from ("seq:entry_hash", as `ldm audit verify
    --expect-head` takes it). -#}
{% macro build_stamp() -%}
    cast('{{ invocation_id }}' as {{ dbt.type_string() }}) as dbt_invocation_id,
    cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S") }}' as timestamp) as built_at,
    (
        select cast(head.seq as {{ dbt.type_string() }}) || ':' || head.entry_hash
        from {{ source('governance', 'audit_head') }} as head
        where head.head_id = 1
    ) as audit_head
{%- endmacro %}

{#- The 12-month windows this build counts activity over: those of the periods still to build whose
    window the data cover, and the 12 months to reporting_period_end (for mart_person_analysis).
    One row per (period_start, period_end). -#}
{% macro period_windows() -%}
    select distinct period_start, period_end from {{ ref('int_periods') }} where to_build and activity_complete
    union
    select
        cast({{ dbt.dateadd('day', 1, dbt.dateadd('year', -1, reporting_period_end())) }} as date) as period_start,
        {{ reporting_period_end() }} as period_end
{%- endmacro %}

{#- `left.key = right.key and ...` for every key: the join condition of two relations keyed alike
    (period, level, area, ...), written once. -#}
{% macro keys_match(left, right, keys) -%}
    {% for key in keys %}{{ left }}.{{ key }} = {{ right }}.{{ key }}{{ ' and ' if not loop.last }}{% endfor %}
{%- endmacro %}

{#- How an incremental mart replaces the periods a build computes again (the config of every
    incremental mart). DuckDB deletes those periods' rows and inserts the new ones (delete+insert
    on period_type and period_end). Spark's Parquet tables cannot delete rows, so there each period
    is a partition, and the build overwrites the partitions it writes (insert_overwrite with dynamic
    partitions): the same outcome. -#}
{% macro period_increments() -%}
    {{ return(adapter.dispatch('period_increments')()) }}
{%- endmacro %}

{% macro default__period_increments() -%}
    {{ return({'incremental_strategy': 'delete+insert', 'unique_key': ['period_type', 'period_end']}) }}
{%- endmacro %}

{% macro spark__period_increments() -%}
    {{ return({'incremental_strategy': 'insert_overwrite', 'partition_by': ['period_type', 'period_end']}) }}
{%- endmacro %}

{#- The columns that place a person (governance/residence.md): the areas of an address, as every
    record, registration and residence span carries them. -#}
{% macro residence_area_columns() -%}
    {{ return(['lsoa21_code', 'lsoa11_code', 'msoa11_code', 'ward_code', 'imd_decile', 'imd_quintile']) }}
{%- endmacro %}

{#- Whether a residence span (int_residence_spans) contains a date: on or after its first day (none
    for the time before any address evidence) and before the next area was first seen. In
    coalesce(), so that a null test is false, and a filter rather than a join condition: DuckDB then
    keeps its join estimates sound (see int_registered_list). -#}
{% macro residence_span_contains(spans, at_date) -%}
    coalesce(
        ({{ spans }}.valid_from is null or {{ spans }}.valid_from <= {{ at_date }})
        and ({{ spans }}.valid_until is null or {{ at_date }} < {{ spans }}.valid_until),
        false
    )
{%- endmacro %}
