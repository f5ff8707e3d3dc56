-- The registered population at reporting_period_end once per geography level: one row per person
-- and level, with the person's area at that level ('unknown' when not known) and age band. The
-- levels are the city's own (geography_levels()) and the tiers above them from reference lookups
-- (the place_tiers var).
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
{% for g in geography_levels() %}
    select
        person_id,
        '{{ g.level }}' as geography_level,
        coalesce({{ g.code }}, 'unknown') as area_code,
        {{ g.name }} as area_name,
        age,
        age_band
    from {{ ref('int_registered_population') }}
    {% if not loop.last %}union all{% endif %}
{% endfor %}
{% for tier in tiers %}
    union all
    select
        pop.person_id,
        '{{ tier.level }}' as geography_level,
        coalesce(tier.area_code, 'unknown') as area_code,
        tier.area_name,
        pop.age,
        pop.age_band
    from {{ ref('int_registered_population') }} as pop
    left join tier_{{ tier.level }} as tier
        on pop.{{ tier.key }} = tier.area_key
{% endfor %}
