-- Where each person lived, as periods (governance/residence.md): one row per area (2021 LSOA) that
-- their records place them in, from the date a record first placed them there until the next area
-- was first seen. An old address that reappears later (a hospital record with the address before a
-- move) is not a move back: only a first sighting moves a person.
{{ config(materialized='table') }}

with first_sightings as (
    select
        person_id,
        feed,
        seen_on,
        batch_id,
        source_row_number,
        lsoa21_code,
        lsoa11_code,
        msoa11_code,
        ward_code,
        imd_decile,
        imd_quintile,
        row_number() over (
            partition by person_id, lsoa21_code
            order by seen_on, feed, batch_id, source_row_number
        ) as sighting
    from {{ ref('stg_store__recorded_addresses') }}
)

select
    person_id,
    lsoa21_code,
    lsoa11_code,
    msoa11_code,
    ward_code,
    imd_decile,
    imd_quintile,
    seen_on as lived_from,
    feed as first_seen_in,
    lead(seen_on) over (
        partition by person_id order by seen_on, feed, batch_id, source_row_number
    ) as lived_until
from first_sightings
where sighting = 1
