-- The UDFs the marts call are ldm.stats (PHEindicatormethods' published example: Wilson interval
-- of 87/131 is 0.579592491 to 0.73930053; Byar's limits of 87 at 95%).
select 'wilson' as check_name
where abs(wilson_lower(87, 131, 0.95) - 0.579592491) > 1e-8
    or abs(wilson_upper(87, 131, 0.95) - 0.73930053) > 1e-8
union all
select 'byar' as check_name
where abs(byar_lower(87, 0.95) - 53191.89721 * 131 / 100000) > 1e-6
    or byar_upper(null, 0.95) is not null
