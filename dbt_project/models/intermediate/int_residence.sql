-- Each person's area at reporting_period_end (governance/residence.md): the area of their address
-- most recently first seen on or before that date (int_person_areas). A person with no address
-- evidence by then keeps the area of their latest registration (stg_store__persons), and
-- area_source says which rule placed them.
{% set area_columns = ['lsoa21_code', 'lsoa11_code', 'msoa11_code', 'ward_code', 'imd_decile', 'imd_quintile'] %}

with at_period_end as (
    select *
    from {{ ref('int_person_areas') }}
    where
        lived_from <= {{ reporting_period_end() }}
        and (lived_until is null or lived_until > {{ reporting_period_end() }})
)

select
    persons.person_id,
    {% for column in area_columns %}
        case when areas.person_id is null then persons.{{ column }} else areas.{{ column }} end
            as {{ column }},
    {% endfor %}
    areas.lived_from as area_seen_from,
    coalesce(areas.first_seen_in, 'latest_registration') as area_source
from {{ ref('stg_store__persons') }} as persons
left join at_period_end as areas
    on persons.person_id = areas.person_id
