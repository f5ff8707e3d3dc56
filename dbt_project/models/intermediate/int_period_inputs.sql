-- A fingerprint of the store's records under the marts, by month: for each month, the number of
-- records that change the periods ending in or after it, and the sum of a hash of each record's key,
-- person and that person's details (the period_inputs and period_person_details vars). A period's
-- inputs are the months up to its end: int_periods compares their fingerprint with the one the
-- period was built from (marts.mart_periods), so a late record, a re-sent file, an opt-out or a
-- changed date of birth computes the periods it changes again, and a month of new records leaves
-- the built periods before it as they are.
--
-- A record is placed at its date less the days after a period's end it can still change it
-- (days_after_end); a record without that date changes every period.
with persons as (
    select
        person_id,
        {{ row_hash(var('period_person_details')) }} as person_hash
    from {{ ref('stg_store__persons') }}
),

records as (
    {% for input in var('period_inputs') %}
        select
            batch_id,
            source_row_number,
            person_id,
            {% set placed_on = dbt.dateadd('day', -(input.days_after_end or 0), input.date) %}
            coalesce(
                cast({{ dbt.date_trunc('month', placed_on) }} as date),
                cast('1900-01-01' as date)
            ) as input_month
        from {{ ref(input.model) }}
        {% if not loop.last %}union all{% endif %}
    {% endfor %}
)

select
    records.input_month,
    count(*) as input_records,
    {% set record_key = ['records.batch_id', 'records.source_row_number', 'records.person_id', 'persons.person_hash'] %}
    sum(
        cast({{ row_hash(record_key) }} as decimal(38, 0))
    ) as input_fingerprint
from records
left join persons
    on records.person_id = persons.person_id
group by records.input_month
