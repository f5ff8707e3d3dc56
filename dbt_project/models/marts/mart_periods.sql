-- The series of periods in the marts: one row per period built, with the build that computed it
-- and the definitions it was computed under. int_periods reads this table from the previous build
-- to decide what is still to build, so a monthly build adds only new periods (and those whose
-- definitions changed). Incremental, like the marts it describes.
{{ config(
    materialized='incremental',
    unique_key=['period_type', 'period_end'],
    incremental_strategy='delete+insert',
    on_schema_change='fail',
) }}
select
    period_type,
    period_label,
    period_start,
    period_end,
    activity_complete,
    data_start,
    cast('{{ var("definitions_digest") }}' as {{ dbt.type_string() }}) as definitions_digest,
    {{ build_stamp() }}
from {{ ref('int_periods') }}
where to_build
