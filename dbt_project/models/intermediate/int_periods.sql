-- The series of reporting periods over the data loaded: a rolling 12 months at every quarter end,
-- and every financial year (April to March), up to reporting_period_end. A trend is then a `where`
-- on period_type. Registers and lists are counted at each period's end; activity over the period,
-- only where the activity data cover all of it (activity_complete).
--
-- The data cover months from data_start: for each activity feed, the first month with at least half
-- the feed's median monthly records (a stray old record does not start the series), and the latest
-- of those over the feeds, unless the series_start var sets it. Periods ending before data_start are
-- left out.
--
-- to_build: a build computes only the periods that marts.mart_periods does not already hold as they
-- would be computed now: under the same definitions (definitions_digest var: a digest of the
-- project's files and reference data, set by `ldm run`), from the same records (int_period_inputs:
-- a late record, a re-sent file or an opt-out changes the fingerprint of every period it is under),
-- and with the same activity coverage. build_reason says why a period is built; a full refresh
-- (`dbt build --full-refresh`) computes every period.
{% set activity_dates = [
    {'model': 'stg_store__apc_spells', 'date': 'admission_date'},
    {'model': 'stg_store__op_appointments', 'date': 'appointment_date'},
    {'model': 'stg_store__ae_attendances', 'date': 'arrival_date'},
    {'model': 'stg_store__community_contacts', 'date': 'contact_date'},
] %}
{% set built = none %}
{% set unbuilt_reason = 'new period' %}
{% if execute %}
    {% if flags.FULL_REFRESH %}
        {% set unbuilt_reason = 'full refresh' %}
    {% else %}
        {% set built = adapter.get_relation(
            database=target.database, schema=generate_schema_name('marts', none), identifier='mart_periods') %}
    {% endif %}
{% endif %}

with activity_months as (
    {% for source in activity_dates %}
        select
            '{{ source.model }}' as feed,
            {{ dbt.date_trunc('month', source.date) }} as activity_month,
            count(*) as records
        from {{ ref(source.model) }}
        where {{ source.date }} is not null and {{ source.date }} <= {{ reporting_period_end() }}
        group by {{ dbt.date_trunc('month', source.date) }}
        {% if not loop.last %}union all{% endif %}
    {% endfor %}
),

feed_medians as (
    select
        feed,
        median(records) as median_records
    from activity_months
    group by feed
),

feed_starts as (
    select
        months.feed,
        min(months.activity_month) as feed_start
    from activity_months as months
    inner join feed_medians as medians
        on months.feed = medians.feed
    where months.records >= medians.median_records / 2
    group by months.feed
),

coverage as (
    select
        cast(coalesce(
            {% if var('series_start', none) %}cast('{{ var("series_start") }}' as date),{% endif %}
            max(feed_start),
            {{ dbt.dateadd('day', 1, dbt.dateadd('year', -1, reporting_period_end())) }}
        ) as date) as data_start
    from feed_starts
),

quarter_ends as (
    {% for quarter_end in quarter_ends() %}
        select cast('{{ quarter_end }}' as date) as period_end
        {% if not loop.last %}union all{% endif %}
    {% endfor %}
),

periods as (
    select
        'rolling_12_months' as period_type,
        {{ dbt.dateadd('day', 1, dbt.dateadd('year', -1, 'period_end')) }} as period_start,
        period_end
    from quarter_ends
    union all
    select
        'financial_year' as period_type,
        {{ dbt.dateadd('day', 1, dbt.dateadd('year', -1, 'period_end')) }} as period_start,
        period_end
    from quarter_ends
    where extract(month from period_end) = 3
),

labelled as (
    select
        periods.period_type,
        case periods.period_type
            when 'financial_year'
                then
                    cast(extract(year from periods.period_start) as {{ dbt.type_string() }}) || '/'
                    || right(cast(extract(year from periods.period_end) as {{ dbt.type_string() }}), 2)
            else '12 months to ' || cast(periods.period_end as {{ dbt.type_string() }})
        end as period_label,
        cast(periods.period_start as date) as period_start,
        cast(periods.period_end as date) as period_end,
        periods.period_start >= coverage.data_start as activity_complete,
        coverage.data_start
    from periods
    cross join coverage
    where periods.period_end >= coverage.data_start
),

inputs as (
    -- The fingerprint of each period's records: the months up to its end (int_period_inputs).
    select
        labelled.period_type,
        labelled.period_end,
        cast(coalesce(sum(months.input_records), 0) as bigint) as input_records,
        cast(coalesce(sum(months.input_fingerprint), 0) as {{ dbt.type_string() }}) as input_fingerprint
    from labelled
    left join {{ ref('int_period_inputs') }} as months
        on labelled.period_end >= months.input_month
    group by labelled.period_type, labelled.period_end
),

built as (
    -- The periods the previous build left in marts.mart_periods (none in a full refresh or a new store).
    {% if built is not none %}
        select
            period_type,
            period_end,
            definitions_digest,
            input_records,
            input_fingerprint,
            activity_complete
        from {{ built }}
    {% else %}
        select
            cast(null as {{ dbt.type_string() }}) as period_type,
            cast(null as date) as period_end,
            cast(null as {{ dbt.type_string() }}) as definitions_digest,
            cast(null as bigint) as input_records,
            cast(null as {{ dbt.type_string() }}) as input_fingerprint,
            cast(null as boolean) as activity_complete
        where 1 = 0
    {% endif %}
),

reasons as (
    select
        labelled.*,
        inputs.input_records,
        inputs.input_fingerprint,
        case
            when built.period_end is null then '{{ unbuilt_reason }}'
            when built.definitions_digest <> '{{ var("definitions_digest") }}' then 'definitions changed'
            when built.input_records <> inputs.input_records or built.input_fingerprint <> inputs.input_fingerprint
                then 'records changed'
            when built.activity_complete <> labelled.activity_complete then 'activity coverage changed'
        end as build_reason
    from labelled
    inner join inputs
        on labelled.period_type = inputs.period_type and labelled.period_end = inputs.period_end
    left join built
        on labelled.period_type = built.period_type and labelled.period_end = built.period_end
)

select
    reasons.*,
    reasons.build_reason is not null as to_build
from reasons
