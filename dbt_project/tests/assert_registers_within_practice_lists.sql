-- No practice's register is larger than its list at any period end: every person on a register is
-- registered at the practice whose list counts them.
{{ config(tags=['mart_prevalence', 'severity_error']) }}
select
    reg.period_end,
    reg.condition,
    pop.practice_code,
    count(*) as register_size,
    max(lists.list_size) as list_size
from {{ ref('int_registers') }} as reg
inner join {{ ref('int_registered_population') }} as pop
    on reg.period_end = pop.period_end and reg.person_id = pop.person_id
inner join (
    select
        period_end,
        practice_code,
        count(*) as list_size
    from {{ ref('int_registered_population') }}
    group by period_end, practice_code
) as lists
    on pop.period_end = lists.period_end and pop.practice_code = lists.practice_code
group by reg.period_end, reg.condition, pop.practice_code
having count(*) > max(lists.list_size)
