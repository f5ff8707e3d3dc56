-- Each person's area at each period end (period_ends(); governance/residence.md): the area of their
-- address most recently first seen on or before that date (int_person_areas). A person with no
-- address evidence by then keeps the area of their latest registration (stg_store__persons), and
-- area_source says which rule placed them. A view: int_registered_population and
-- mart_person_analysis each read the dates they need.
{{ config(materialized='view') }}
{% set area_columns = ['lsoa21_code', 'lsoa11_code', 'msoa11_code', 'ward_code', 'imd_decile', 'imd_quintile'] %}

with period_ends as (
    {{ period_ends() }}
),

at_period_end as (
    select
        areas.*,
        period_ends.period_end
    from {{ ref('int_person_areas') }} as areas
    inner join period_ends
        on
            areas.lived_from <= period_ends.period_end
            and (areas.lived_until is null or areas.lived_until > period_ends.period_end)
)

select
    period_ends.period_end,
    persons.person_id,
    {% for column in area_columns %}
        case when areas.person_id is null then persons.{{ column }} else areas.{{ column }} end
            as {{ column }},
    {% endfor %}
    areas.lived_from as area_seen_from,
    coalesce(areas.first_seen_in, 'latest_registration') as area_source
from {{ ref('stg_store__persons') }} as persons
cross join period_ends
left join at_period_end as areas
    on persons.person_id = areas.person_id and period_ends.period_end = areas.period_end
