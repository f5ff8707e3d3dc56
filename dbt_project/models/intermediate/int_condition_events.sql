-- Linked GP events that carry a register's diagnosis or resolved code, up to reporting_period_end
-- (the latest period end; int_registers reads each period's events from them).
select
    events.person_id,
    codes.condition,
    codes.code_type,
    events.event_date
from {{ ref('stg_store__gp_events') }} as events
inner join {{ ref('int_register_codes') }} as codes
    on events.snomed_code = codes.snomed_code
where
    events.person_id is not null
    and events.event_date <= {{ reporting_period_end() }}
