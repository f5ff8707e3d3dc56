-- The interval limits the marts compute (macros/stats.sql: ldm.stats as UDFs, or the same formulas in
-- SQL under stats_functions 'sql') are PHEindicatormethods' published example at 95%: the Wilson
-- interval of 87/131 is 0.579592491 to 0.73930053; Byar's lower limit of 87 is 53191.89721 per
-- 100,000 of 131. The example is at 95%, so another confidence_level checks NULL in, NULL out only.
{% set published = var('confidence_level') | string == '0.95' %}
select 'wilson' as check_name
where
    {% if published %}
        abs({{ wilson('lower', '87', '131') }} - 0.579592491) > 1e-8
        or abs({{ wilson('upper', '87', '131') }} - 0.73930053) > 1e-8
    {% else %}
        false
    {% endif %}
union all
select 'byar' as check_name
where
    {% if published %}abs({{ byar('lower', '87') }} - 53191.89721 * 131 / 100000) > 1e-6 or{% endif %}
    {{ byar('upper', 'null') }} is not null
