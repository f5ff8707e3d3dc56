-- Where each person lived, as periods (governance/residence.md): one row per area (2021 LSOA) that
-- their records place them in, from the date a record first placed them there until the next area
-- was first seen. An old address that reappears later (a hospital record with the address before a
-- move) is not a move back: only a first sighting moves a person.
{{ config(materialized='table') }}

with first_seen as (
    -- The first date each area was seen for each person: only records of that date can be its
    -- first sighting, so only they are sorted below (sorting every record took most of this
    -- model's time at Leeds scale).
    select
        person_id,
        lsoa21_code,
        min(seen_on) as first_seen_on
    from {{ ref('stg_store__recorded_addresses') }}
    group by person_id, lsoa21_code
),

first_sightings as (
    select
        evidence.person_id,
        evidence.feed,
        evidence.seen_on,
        evidence.batch_id,
        evidence.source_row_number,
        evidence.lsoa21_code,
        evidence.lsoa11_code,
        evidence.msoa11_code,
        evidence.ward_code,
        evidence.imd_decile,
        evidence.imd_quintile,
        row_number() over (
            partition by evidence.person_id, evidence.lsoa21_code
            order by evidence.seen_on, evidence.feed, evidence.batch_id, evidence.source_row_number
        ) as sighting
    from {{ ref('stg_store__recorded_addresses') }} as evidence
    inner join first_seen
        on
            evidence.person_id = first_seen.person_id
            and evidence.lsoa21_code = first_seen.lsoa21_code
            and evidence.seen_on = first_seen.first_seen_on
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
