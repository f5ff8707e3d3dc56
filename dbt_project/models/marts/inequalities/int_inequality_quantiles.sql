-- The headline indicators in each IMD quintile and decile, as inputs to the indices of inequality:
-- value, interval, population and the standard error implied by the interval, for each period the
-- build adds to the marts.
{% set utilisation_headlines = [
    'emergency_admissions', 'elective_admissions', 'outpatient_dna_rate',
    'ae_attendances', 'community_contacts'] %}
with prevalence as (
    select
        'prevalence' as indicator_domain,
        condition as indicator,
        'crude' as value_type,
        'proportion' as rate_unit,
        geography_level,
        area_code,
        numerator,
        denominator,
        crude_rate as rate,
        crude_rate_lower as rate_lower,
        crude_rate_upper as rate_upper,
        period_type,
        period_label,
        period_start,
        period_end
    from {{ ref('mart_prevalence') }}
    union all
    select
        'prevalence' as indicator_domain,
        condition as indicator,
        'age_standardised' as value_type,
        'proportion (ESP2013)' as rate_unit,
        geography_level,
        area_code,
        numerator,
        denominator,
        dsr as rate,
        dsr_lower as rate_lower,
        dsr_upper as rate_upper,
        period_type,
        period_label,
        period_start,
        period_end
    from {{ ref('mart_prevalence') }}
),

utilisation as (
    select
        'utilisation' as indicator_domain,
        measure as indicator,
        'crude' as value_type,
        rate_unit,
        geography_level,
        area_code,
        numerator,
        denominator,
        rate,
        rate_lower,
        rate_upper,
        period_type,
        period_label,
        period_start,
        period_end
    from {{ ref('mart_utilisation') }}
    where measure in (
        {%- for measure in utilisation_headlines %}
            '{{ measure }}'{{ ',' if not loop.last }}
        {%- endfor %}
    )
),

indicators as (
    select * from prevalence
    union all
    select * from utilisation
)

select
    indicator_domain,
    indicator,
    value_type,
    rate_unit,
    geography_level as imd_scale,
    cast(area_code as integer) as imd_group,
    cast(case geography_level when 'imd_quintile' then 5 else 10 end as integer) as quantile_count,
    cast(numerator as bigint) as numerator,
    cast(denominator as bigint) as denominator,
    rate,
    rate_lower,
    rate_upper,
    -- PHEindicatormethods' phe_sii: se = (upper - lower) / (2 z).
    (rate_upper - rate_lower)
    / (2 * {{ normal_quantile(var("confidence_level")) }}) as standard_error,
    period_type,
    period_label,
    period_start,
    period_end
from indicators
where
    geography_level in ('imd_quintile', 'imd_decile')
    and exists (
        select 1
        from {{ ref('int_periods') }} as periods
        where
            periods.to_build
            and indicators.period_type = periods.period_type
            and indicators.period_end = periods.period_end
    )
    and area_code <> 'unknown'
