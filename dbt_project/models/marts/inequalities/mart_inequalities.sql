-- Every headline indicator by IMD quintile and decile, with the gap between the most and least
-- deprived and the slope and relative indices of inequality of its scale on every row.
with quantiles as (
    select * from {{ ref('int_inequality_quantiles') }}
),

extremes as (
    select
        indicator_domain,
        indicator,
        value_type,
        imd_scale,
        max(case when imd_group = 1 then rate end) as most_deprived_rate,
        max(case when imd_group = quantile_count then rate end) as least_deprived_rate
    from quantiles
    group by indicator_domain, indicator, value_type, imd_scale
),

gaps as (
    select
        *,
        most_deprived_rate - least_deprived_rate as absolute_gap,
        case when least_deprived_rate <> 0 then most_deprived_rate / least_deprived_rate end as relative_gap
    from extremes
)

select
    quantiles.indicator_domain,
    quantiles.indicator,
    quantiles.value_type,
    quantiles.rate_unit,
    quantiles.imd_scale,
    quantiles.imd_group,
    quantiles.quantile_count,
    quantiles.numerator,
    quantiles.denominator,
    quantiles.rate,
    quantiles.rate_lower,
    quantiles.rate_upper,
    quantiles.standard_error,
    gaps.most_deprived_rate,
    gaps.least_deprived_rate,
    gaps.absolute_gap,
    gaps.relative_gap,
    indices.sii,
    indices.sii_lower,
    indices.sii_upper,
    indices.rii,
    indices.rii_lower,
    indices.rii_upper,
    indices.sii_repetitions,
    indices.sii_seed,
    quantiles.reporting_period_end
from quantiles
inner join gaps
    on
        quantiles.indicator_domain = gaps.indicator_domain
        and quantiles.indicator = gaps.indicator
        and quantiles.value_type = gaps.value_type
        and quantiles.imd_scale = gaps.imd_scale
inner join {{ ref('int_inequality_indices') }} as indices
    on
        quantiles.indicator_domain = indices.indicator_domain
        and quantiles.indicator = indices.indicator
        and quantiles.value_type = indices.value_type
        and quantiles.imd_scale = indices.imd_scale
