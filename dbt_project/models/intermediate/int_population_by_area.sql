-- The registered population at each period end with its area at every geography level: one row per
-- period end and person, and for each level (the city's own, geography_levels(), and the tiers above
-- them from reference lookups, the place_tiers var) a <level>_code column ('unknown' when not known)
-- and a <level>_name column. The marts aggregate every level in one pass with level_grouping_sets().
-- A view: its columns are cheap expressions over int_registered_population.
{{ config(materialized='view') }}
{% set tiers = ldm_place_tiers() %}
{% if tiers %}
    with
    {% for tier in tiers %}
        tier_{{ tier.level }} as (
            select distinct
                {{ tier.key }} as area_key,
                {{ tier.code }} as area_code,
                {{ tier.name }} as area_name
            from {{ ref(tier.seed) }}
        ){{ "," if not loop.last }}
    {% endfor %}
{% endif %}

select
    pop.period_end,
    pop.person_id,
    pop.age,
    pop.age_band,
    pop.age_band_lower,
    {% for g in all_geography_levels() %}
        coalesce({{ g.code }}, 'unknown') as {{ g.level }}_code,
        {{ g.name }} as {{ g.level }}_name{% if not loop.last %},{% endif %}
    {% endfor %}
from {{ ref('int_registered_population') }} as pop
{% for tier in tiers %}
    left join tier_{{ tier.level }}
        on pop.{{ tier.key }} = tier_{{ tier.level }}.area_key
{% endfor %}
