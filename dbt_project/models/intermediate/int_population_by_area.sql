-- The registered population at each period end with its area at every geography level: one row per
-- period end and person, and for each level (the city's own, geography_levels(), and the place
-- tiers of the place_tiers var) a <level>_code column ('unknown' when not known). The marts
-- aggregate every level at once with level_cells() and name the cells from
-- int_area_names. A view: its columns are cheap expressions over int_registered_population.
{{ config(materialized='view') }}
select
    pop.period_end,
    pop.person_id,
    pop.age,
    pop.age_band,
    pop.age_band_lower,
    {% for g in all_geography_levels() %}
        coalesce({{ g.code }}, 'unknown') as {{ g.level }}_code{% if not loop.last %},{% endif %}
    {% endfor %}
from {{ ref('int_registered_population') }} as pop
