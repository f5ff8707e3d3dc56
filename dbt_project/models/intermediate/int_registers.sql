-- QOF-style registers at reporting_period_end: one row per person and condition on the register.
-- Rules: a diagnosis code on or before the date; aged at least the register's minimum age; and,
-- where the register has a resolved code, not resolved (latest resolved code later than the latest
-- diagnosis code). Only the registered population at that date is eligible.
with rules as (
    {{ register_rules() }}
),

person_conditions as (
    select
        person_id,
        condition,
        min(case when code_type = 'diagnosis' then event_date end) as first_diagnosis_date,
        max(case when code_type = 'diagnosis' then event_date end) as latest_diagnosis_date,
        max(case when code_type = 'resolved' then event_date end) as latest_resolved_date
    from {{ ref('int_condition_events') }}
    group by person_id, condition
)

select
    pc.person_id,
    pc.condition,
    pc.first_diagnosis_date,
    pc.latest_diagnosis_date
from person_conditions as pc
inner join rules
    on pc.condition = rules.condition
inner join {{ ref('int_registered_population') }} as pop
    on pc.person_id = pop.person_id
where
    pc.latest_diagnosis_date is not null
    and (rules.min_age = 0 or pop.age >= rules.min_age)
    and (pc.latest_resolved_date is null or pc.latest_resolved_date <= pc.latest_diagnosis_date)
