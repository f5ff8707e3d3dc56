-- No practice's register is larger than its list: every person on a register is registered at
-- the practice whose list counts them.
select
    reg.condition,
    pop.practice_code,
    count(*) as register_size,
    max(lists.list_size) as list_size
from {{ ref('int_registers') }} as reg
inner join {{ ref('int_registered_population') }} as pop
    on reg.person_id = pop.person_id
inner join (
    select
        practice_code,
        count(*) as list_size
    from {{ ref('int_registered_population') }}
    group by practice_code
) as lists
    on pop.practice_code = lists.practice_code
group by reg.condition, pop.practice_code
having count(*) > max(lists.list_size)
