-- Each person's area at each period end (period_ends(); governance/residence.md): the area of their
-- address most recently first seen on or before that date (int_person_areas). A person with no
-- address evidence by then keeps the area of their latest registration (stg_store__persons), and
-- area_source says which rule placed them. A view: int_registered_list and mart_person_analysis
-- each read the dates they need. The areas join each person on person_id and are checked against
-- the date (a person has few), rather than every area being paired with every date first.
{{ config(materialized='view') }}
{% set area_columns = ['lsoa21_code', 'lsoa11_code', 'msoa11_code', 'ward_code', 'imd_decile', 'imd_quintile'] %}

with period_ends as (
    {{ period_ends() }}
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
left join {{ ref('int_person_areas') }} as areas
    on
        persons.person_id = areas.person_id
        and period_ends.period_end >= areas.lived_from
        and (areas.lived_until is null or period_ends.period_end < areas.lived_until)
