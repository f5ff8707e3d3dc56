-- The registered population at each period end (one row per period_end and person): the registered
-- list less anyone whose age at that date is outside 0 to max_plausible_age. Such an age comes from
-- a date of birth that cannot be right (validation quarantines most: a birth after registration, a
-- death before birth; it keeps and
-- counts a living person over 115). The person is left out of every mart rather than stopping the
-- run, and the data-quality test on int_registered_list.age counts them. A view of that table.
{{ config(materialized='view') }}
select
    period_end,
    person_id,
    age,
    age_band,
    age_band_lower,
    sex,
    ethnic_category,
    ethnic_group,
    practice_code,
    pcn_code,
    lsoa21_code,
    lsoa11_code,
    msoa11_code,
    ward_code,
    {% for tier in ldm_place_tiers() %}
        {{ tier.level }}_code,
    {% endfor %}
    imd_decile,
    imd_quintile
from {{ ref('int_registered_list') }}
where age between 0 and {{ var('max_plausible_age') }}
