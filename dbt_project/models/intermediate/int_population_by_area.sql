-- The registered population at reporting_period_end once per geography level: one row per person
-- and level, with the person's area at that level ('unknown' when not known) and age band.
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
