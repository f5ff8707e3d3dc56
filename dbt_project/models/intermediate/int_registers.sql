-- QOF-style registers at each period end: one row per period end, person and condition on the
-- register. Rules: a diagnosis code on or before the date; aged at least the register's minimum age
-- then; and, where the register has a resolved code, not resolved (latest resolved code by the date
-- later than the latest diagnosis code by the date). Only the registered population at that date
-- is eligible.
with rules as (
    {{ register_rules() }}
),

period_ends as (
    {{ period_ends(period_starts=false) }}
),

person_conditions as (
    select
        period_ends.period_end,
        events.person_id,
        events.condition,
        min(case when events.code_type = 'diagnosis' then events.event_date end) as first_diagnosis_date,
        max(case when events.code_type = 'diagnosis' then events.event_date end) as latest_diagnosis_date,
        max(case when events.code_type = 'resolved' then events.event_date end) as latest_resolved_date
    from {{ ref('int_condition_events') }} as events
    inner join period_ends
        on events.event_date <= period_ends.period_end
    group by period_ends.period_end, events.person_id, events.condition
)

select
    pc.period_end,
    pc.person_id,
    pc.condition,
    pc.first_diagnosis_date,
    pc.latest_diagnosis_date
from person_conditions as pc
inner join rules
    on pc.condition = rules.condition
inner join {{ ref('int_registered_population') }} as pop
    on pc.period_end = pop.period_end and pc.person_id = pop.person_id
where
    pc.latest_diagnosis_date is not null
    and (rules.min_age = 0 or pop.age >= rules.min_age)
    and (pc.latest_resolved_date is null or pc.latest_resolved_date <= pc.latest_diagnosis_date)
