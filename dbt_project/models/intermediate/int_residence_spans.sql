-- Where each person lived over time, as spans of dates (governance/residence.md): one row per area
-- of int_person_areas, from the date it was first seen (valid_from) until the next area was
-- (valid_until), and one row for the time before any address evidence, when the person is placed
-- by their latest registration (valid_from NULL; valid_until the first sighting, NULL when there
-- is none). The spans of a person do not overlap and cover every date, so the area at a date is
-- the one span that contains it: int_residence and int_registered_list pick it by person and date
-- after joining people to their spans (a person has few), not by joining millions of person-dates.
{{ config(materialized='view') }}
{% set area_columns = residence_area_columns() %}

with first_sighting as (
    select
        person_id,
        min(lived_from) as first_seen_on
    from {{ ref('int_person_areas') }}
    group by person_id
)

select
    persons.person_id,
    cast(null as date) as valid_from,
    first_sighting.first_seen_on as valid_until,
    {% for column in area_columns %}
        persons.{{ column }},
    {% endfor %}
    cast(null as date) as area_seen_from,
    'latest_registration' as area_source
from {{ ref('stg_store__persons') }} as persons
left join first_sighting
    on persons.person_id = first_sighting.person_id

union all

select
    areas.person_id,
    areas.lived_from as valid_from,
    areas.lived_until as valid_until,
    {% for column in area_columns %}
        areas.{{ column }},
    {% endfor %}
    areas.lived_from as area_seen_from,
    areas.first_seen_in as area_source
from {{ ref('int_person_areas') }} as areas
inner join {{ ref('stg_store__persons') }} as persons
    on areas.person_id = persons.person_id
