-- Each person's area at each period end (period_ends(); governance/residence.md): the area of their
-- address most recently first seen on or before that date (int_person_areas). A person with no
-- address evidence by then keeps the area of their latest registration (stg_store__persons), and
-- area_source says which rule placed them. Both rules are the spans of int_residence_spans: the
-- one that contains the date. A view: mart_person_analysis reads the date it needs.
{{ config(materialized='view') }}

with period_ends as (
    {{ period_ends() }}
)

select
    period_ends.period_end,
    spans.person_id,
    {% for column in residence_area_columns() %}
        spans.{{ column }},
    {% endfor %}
    spans.area_seen_from,
    spans.area_source
from {{ ref('int_residence_spans') }} as spans
cross join period_ends
where {{ residence_span_contains('spans', 'period_ends.period_end') }}
