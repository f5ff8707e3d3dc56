-- Every headline indicator by IMD quintile and decile, with the gap between the most and least
-- deprived and the slope and relative indices of inequality of its scale on every row, for every
-- period. Incremental: a build adds the periods int_periods marks to_build and replaces any it
-- computes again.
{{ config(
    materialized='incremental',
    on_schema_change='fail',
    **period_increments()
) }}
{% set keys = ['period_type', 'period_end', 'indicator_domain', 'indicator', 'value_type', 'imd_scale'] %}
with quantiles as (
    select * from {{ ref('int_inequality_quantiles') }}
),

extremes as (
    select
        {% for key in keys %}{{ key }},{% endfor %}
        max(case when imd_group = 1 then rate end) as most_deprived_rate,
        max(case when imd_group = quantile_count then rate end) as least_deprived_rate
    from quantiles
    group by {{ keys | join(', ') }}
),

gaps as (
    select
        *,
        most_deprived_rate - least_deprived_rate as absolute_gap,
        case when least_deprived_rate <> 0 then most_deprived_rate / least_deprived_rate end as relative_gap
    from extremes
)

select
    quantiles.period_type,
    quantiles.period_label,
    quantiles.period_start,
    quantiles.period_end,
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
    {{ build_stamp() }}
from quantiles
inner join gaps
    on
        {% for key in keys %}
            quantiles.{{ key }} = gaps.{{ key }}{% if not loop.last %} and{% endif %}
        {% endfor %}
inner join {{ ref('int_inequality_indices') }} as indices
    on
        {% for key in keys %}
            quantiles.{{ key }} = indices.{{ key }}{% if not loop.last %} and{% endif %}
        {% endfor %}
