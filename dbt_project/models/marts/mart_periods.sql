-- The series of periods in the marts: one row per period built, with the build that computed it,
-- the definitions and the fingerprint of the records it was computed from, and why it was built.
-- int_periods reads this table from the previous build to decide what is still to build, so a
-- monthly build adds the new periods and computes again only those whose definitions or records
-- changed. Incremental, like the marts it describes.
{{ config(
    materialized='incremental',
    on_schema_change='fail',
    **period_increments()
) }}
select
    period_type,
    period_label,
    period_start,
    period_end,
    activity_complete,
    data_start,
    cast('{{ var("definitions_digest") }}' as {{ dbt.type_string() }}) as definitions_digest,
    input_records,
    input_fingerprint,
    build_reason,
    {{ build_stamp() }}
from {{ ref('int_periods') }}
where to_build
