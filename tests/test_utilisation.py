"""mart_utilisation by condition and by number of long-term conditions, built by dbt on the sample.

Every utilisation indicator is broken down by `condition` (the people on each register at the
period end) and by `condition_count` (0, 1, 2, 3, 4+ registers), per 1,000 persons with the mart's
intervals (Byar; Wilson for the DNA and readmission rates, which are proportions; none for bed
days). The mart holds one set of rows per period whose 12 months the activity data cover; the tests
read the latest (the rolling 12 months to reporting_period_end) and the one a year before it.
"""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
import yaml
from conftest import PERIOD_END, YEAR_BEFORE, query, rolling_period

from ldm.sql import literal

REPO = Path(__file__).resolve().parent.parent
PROJECT_VARS = yaml.safe_load((REPO / "dbt_project" / "dbt_project.yml").read_text())["vars"]
CONDITIONS = {register["condition"] for register in PROJECT_VARS["registers"]}
INDICATORS = {indicator["measure"]: indicator for indicator in PROJECT_VARS["admission_indicators"]}
# Another measure's events among the registered persons aged at least min_age (A&E aged 65+).
RESTRICTED = {
    restricted["measure"]: restricted for restricted in PROJECT_VARS.get("age_restricted_measures", [])
}
# Measures counted from a minimum age (an indicator's at admission, a restricted measure's at the
# period end): per 1,000 registered persons of that age.
MIN_AGES = {
    **{measure: i["min_age"] for measure, i in INDICATORS.items() if i.get("min_age") is not None},
    **{measure: restricted["min_age"] for measure, restricted in RESTRICTED.items()},
}
# The rates that are proportions of something other than persons: (rate_unit, denominator_unit).
PROPORTIONS = {"outpatient_dna_rate": "appointments", "emergency_readmission_rate": "discharges"}
MEASURES = {
    "emergency_admissions", "elective_admissions", "bed_days", "outpatient_attendances",
    "ae_attendances", "community_contacts", *PROPORTIONS, *INDICATORS, *RESTRICTED,
}  # fmt: skip
PER_PERSON = MEASURES - set(PROPORTIONS)
COUNT_GROUPS = {"0", "1", "2", "3", "4+"}
EMERGENCY = "('21', '22', '23', '24', '25', '2A', '2B', '2C', '2D', '28')"  # admission methods 21-28
ENDS = pytest.mark.parametrize("end", [PERIOD_END, YEAR_BEFORE], ids=str)


@pytest.fixture(scope="module")
def store(sample_marts_store) -> Path:
    return sample_marts_store


def units(measure: str) -> tuple[str, str]:
    """(rate_unit, denominator_unit) of a measure."""
    if measure in PROPORTIONS:
        return "proportion", PROPORTIONS[measure]
    if measure in MIN_AGES:
        return f"per 1,000 persons aged {MIN_AGES[measure]}+", f"persons aged {MIN_AGES[measure]}+"
    return "per 1,000 persons", "persons"


def twelve_months(end: datetime.date) -> tuple[datetime.date, datetime.date]:
    following = end + datetime.timedelta(days=1)
    return following.replace(year=following.year - 1), end


def test_every_measure_is_broken_down_by_condition_and_number_of_conditions(store):
    rows = query(
        store,
        "select period_type, period_end, measure, geography_level, area_code from marts.mart_utilisation"
        " where geography_level in ('condition', 'condition_count')",
    )
    periods = {(kind, end) for kind, end, *_ in rows}
    assert len(periods) == len(query(store, "select * from marts.mart_periods where activity_complete"))
    for period in periods:
        by_condition = {(m, a) for *p, m, level, a in rows if tuple(p) == period and level == "condition"}
        by_count = {(m, a) for *p, m, level, a in rows if tuple(p) == period and level == "condition_count"}
        assert by_condition == {(m, c) for m in MEASURES for c in CONDITIONS}, period
        assert by_count == {(m, g) for m in MEASURES for g in COUNT_GROUPS}, period


def test_new_breakdowns_carry_rates_and_the_marts_intervals(store):
    rows = query(
        store,
        "select measure, numerator, denominator, rate, rate_lower, rate_upper, rate_unit, denominator_unit"
        " from marts.mart_utilisation where geography_level in ('condition', 'condition_count')",
    )
    assert {row[0] for row in rows} == MEASURES
    for measure, numerator, denominator, rate, lower, upper, rate_unit, denominator_unit in rows:
        assert denominator > 0, measure
        assert (rate_unit, denominator_unit) == units(measure)
        if measure in PROPORTIONS:
            assert rate == pytest.approx(numerator / denominator)
        else:
            assert rate == pytest.approx(1000 * numerator / denominator)
        if measure == "bed_days":
            assert lower is None and upper is None
        else:
            assert lower <= rate <= upper, measure


@ENDS
def test_people_with_four_or_more_conditions_have_more_emergency_admissions_than_people_with_none(store, end):
    rates = dict(
        query(
            store,
            "select area_code, rate from marts.mart_utilisation where measure = 'emergency_admissions'"
            f" and geography_level = 'condition_count' and {rolling_period(end)}",
        )
    )
    assert rates["4+"] > rates["0"], rates


@ENDS
def test_condition_denominators_are_the_register_sizes_at_city_level(store, end):
    """Per person: the people on each register at the period end (mart_prevalence's numerators);
    for an indicator from a minimum age, those of them of that age (its age bands in mart_prevalence)."""
    registers = dict(
        query(
            store,
            "select condition, numerator from marts.mart_prevalence"
            f" where geography_level = 'city' and {rolling_period(end)}",
        )
    )
    assert set(registers) == CONDITIONS
    aged = {
        age: dict(
            query(
                store,
                f"""select m.condition, sum(m.numerator) from marts.mart_prevalence as m
                    join staging.stg_reference__esp2013 as esp on esp.age_band = m.area_code
                    where m.geography_level = 'age_band' and esp.age_lower >= ? and {rolling_period(end, "m")}
                    group by all""",
                age,
            )
        )
        for age in set(MIN_AGES.values())
    }
    for measure in PER_PERSON:
        denominators = dict(
            query(
                store,
                "select area_code, denominator from marts.mart_utilisation"
                f" where geography_level = 'condition' and measure = ? and {rolling_period(end)}",
                measure,
            )
        )
        expected = registers if measure not in MIN_AGES else aged[MIN_AGES[measure]]
        assert denominators == {c: expected.get(c, 0) for c in CONDITIONS}, measure
        if measure in MIN_AGES:
            assert all(0 < denominators[c] < registers[c] for c in ("hypertension", "diabetes")), measure


def test_number_of_conditions_partitions_the_city(store):
    rows = query(
        store,
        """select c.period_type, c.period_end, c.measure, c.numerator, c.denominator,
                  sum(n.numerator), sum(n.denominator)
           from marts.mart_utilisation as c
           join marts.mart_utilisation as n
             on n.period_type = c.period_type and n.period_end = c.period_end and n.measure = c.measure
            and n.geography_level = 'condition_count'
           where c.geography_level = 'city'
           group by all""",
    )
    periods = query(store, "select count(*) from marts.mart_periods where activity_complete")[0][0]
    assert len(rows) == len(MEASURES) * periods
    for kind, end, measure, numerator, denominator, parts_numerator, parts_denominator in rows:
        assert (numerator, denominator) == (parts_numerator, parts_denominator), (kind, end, measure)
    # and the groups agree with the person-level table's condition counts (at reporting_period_end)
    people = dict(
        query(
            store,
            "select case when condition_count >= 4 then '4+' else cast(condition_count as varchar) end, count(*)"
            " from marts.mart_person_analysis where in_registered_population group by all",
        )
    )
    denominators = dict(
        query(
            store,
            "select area_code, denominator from marts.mart_utilisation"
            f" where geography_level = 'condition_count' and measure = 'emergency_admissions' and {rolling_period()}",
        )
    )
    assert denominators == people


# Directly age-standardised rates (ESP2013, Dobson with Byar's limits) per 1,000 persons.
DSR_MEASURES = PER_PERSON - {"bed_days"}


@ENDS
@pytest.mark.parametrize(
    "measure", ["emergency_admissions", "emergency_admissions_65_plus", *sorted(RESTRICTED)]
)
def test_city_emergency_admission_dsr_is_ldm_stats_dsr_of_the_marts_age_band_counts(store, measure, end):
    """From the age bands of the city: all 19 ESP2013 bands, or those from a measure's minimum age
    (65-69 to 90+ for the admissions and attendances of people aged 65 and over)."""
    from ldm.stats import dsr

    bands = query(
        store,
        """select c.event_count, c.person_count, esp.standard_population
           from intermediate.int_utilisation_by_age_band as c
           join staging.stg_reference__esp2013 as esp on esp.age_band = c.age_band
           where c.measure = ? and c.geography_level = 'city'
             and c.period_start = ? and c.period_end = ?
           order by esp.age_lower""",
        measure,
        *twelve_months(end),
    )
    assert len(bands) == (19 if measure not in MIN_AGES else 6)  # every band of the standard has people
    counts, populations, standard = (list(column) for column in zip(*bands, strict=True))
    expected = dsr(
        counts, populations, standard, confidence=PROJECT_VARS["confidence_level"], multiplier=1000
    )
    [(value, lower, upper)] = query(
        store,
        "select dsr, dsr_lower, dsr_upper from marts.mart_utilisation"
        f" where measure = ? and geography_level = 'city' and {rolling_period(end)}",
        measure,
    )
    assert (value, lower, upper) == pytest.approx(expected, rel=1e-9)
    assert lower < value < upper


def test_dsr_is_null_below_ten_events_and_where_it_does_not_apply(store):
    rows = query(
        store,
        """select m.period_type, m.period_end, m.measure, m.geography_level, m.area_code, m.numerator,
                  m.dsr, m.dsr_lower, m.dsr_upper,
                  coalesce(sum(c.event_count) filter (where c.age_band is not null), 0) as banded_count
           from marts.mart_utilisation as m
           left join intermediate.int_utilisation_by_age_band as c
             on c.period_start = m.period_start and c.period_end = m.period_end
            and c.measure = m.measure and c.geography_level = m.geography_level and c.area_code = m.area_code
           group by all""",
    )
    minimum = PROJECT_VARS["dsr_min_total_count"]
    assert minimum == 10
    shown = small = 0
    for *key, numerator, value, lower, upper, banded_count in rows:
        _, _, measure, level, _ = key
        if measure not in DSR_MEASURES or level == "age_band" or banded_count < minimum:
            assert (value, lower, upper) == (None, None, None), key
            small += numerator < minimum and measure in DSR_MEASURES and level != "age_band"
        else:
            assert value is not None and lower <= value <= upper, key
            shown += 1
    assert shown and small  # the sample has both kinds of cell
    levels = {key[3] for *key, _, _, _, _, _ in rows}
    assert levels >= {"city", "sex", "imd_quintile", "imd_decile", "condition", "condition_count"}
    aged = {key[2] for *key, value, _, _, _ in rows if value is not None and key[2] in MIN_AGES}
    assert aged  # an indicator from a minimum age is standardised too (over the bands from that age)


def codelist(name: str) -> str:
    path = REPO / "ldm" / "reference" / "codelists" / "icd10" / f"{name}.csv"
    return f"(select code from read_csv({literal(path)}, all_varchar = true))"


def indicator_spells(measure: str) -> str:
    """The emergency spells (21-28) of linked persons an indicator counts, by its own definition:
    primary diagnosis in its codelist, a secondary diagnosis in its secondary codelist, aged at least
    its minimum age at admission (each where the indicator has one)."""
    indicator = INDICATORS[measure]
    rules = [f"s.person_id is not null and s.admission_method in {EMERGENCY}"]
    if indicator["codelist"]:
        rules.append(
            f"""exists (select 1 from main.spell_diagnoses d
                        where d.batch_id = s.batch_id and d.row_number = s.row_number and d.position = 0
                          and d.icd10_code in {codelist(indicator["codelist"])})"""
        )
    if indicator.get("secondary_codelist"):
        rules.append(
            f"""exists (select 1 from main.spell_diagnoses d
                        where d.batch_id = s.batch_id and d.row_number = s.row_number and d.position > 0
                          and d.icd10_code in {codelist(indicator["secondary_codelist"])})"""
        )
    if indicator.get("min_age") is not None:
        rules.append(f"s.age_at_event >= {int(indicator['min_age'])}")
    return f"select * from main.apc_spells as s where {' and '.join(rules)}"


@ENDS
@pytest.mark.parametrize("measure", sorted(INDICATORS))
def test_emergency_admissions_for_a_condition_agree_with_an_independent_count(store, measure, end):
    """Recomputed from the store's own tables and the codelist files: the indicator's emergency
    admissions in the 12 months to the period end, of people in the registered population at that
    date, by IMD quintile and for the city; and, for an indicator from a minimum age, its
    denominator: the registered population of that age."""
    start, end = twelve_months(end)
    quintile = "coalesce(cast(pop.imd_quintile as varchar), 'unknown')"
    expected = dict(
        query(
            store,
            f"""select {quintile}, count(*)
                from ({indicator_spells(measure)}) as s
                join intermediate.int_registered_population as pop
                  on pop.person_id = s.person_id and pop.period_end = ?
                where s.admission_date between ? and ?
                group by all""",
            end,
            start,
            end,
        )
    )
    assert sum(expected.values()) > 0
    published = dict(
        query(
            store,
            "select area_code, numerator from marts.mart_utilisation "
            f"where measure = ? and geography_level = 'imd_quintile' and numerator > 0 and {rolling_period(end)}",
            measure,
        )
    )
    assert published == expected
    city = query(
        store,
        "select numerator, denominator, denominator_unit from marts.mart_utilisation"
        f" where measure = ? and geography_level = 'city' and {rolling_period(end)}",
        measure,
    )
    age = MIN_AGES.get(measure, 0)
    population = query(
        store,
        "select count(*) from intermediate.int_registered_population where period_end = ? and age >= ?",
        end,
        age,
    )[0][0]
    assert city == [(sum(expected.values()), population, units(measure)[1])]
    if measure in MIN_AGES:
        by_quintile = dict(
            query(
                store,
                f"""select {quintile}, count(*) from intermediate.int_registered_population as pop
                    where pop.period_end = ? and pop.age >= ? group by all""",
                end,
                age,
            )
        )
        assert by_quintile == dict(
            query(
                store,
                "select area_code, denominator from marts.mart_utilisation"
                f" where measure = ? and geography_level = 'imd_quintile' and {rolling_period(end)}",
                measure,
            )
        )


@ENDS
def test_the_emergency_readmission_rate_agrees_with_an_independent_count(store, end):
    """Recomputed from main.apc_spells: spells discharged in the 12 months to the period end (not
    maternity: admission methods 31 and 32) of people in the registered population at that date, and
    those followed by another emergency admission (21-28) of the same person 0 to 29 days after the
    discharge; by IMD quintile and for the city."""
    start, end = twelve_months(end)
    counted = query(
        store,
        f"""with discharges as (
                select s.*, coalesce(cast(pop.imd_quintile as varchar), 'unknown') as quintile,
                       exists (select 1 from main.apc_spells as e
                               where e.person_id = s.person_id and e.admission_method in {EMERGENCY}
                                 and e.admission_date >= s.discharge_date
                                 and e.admission_date < s.discharge_date + interval 30 day
                                 and (e.batch_id, e.row_number) <> (s.batch_id, s.row_number)) as readmitted
                from main.apc_spells as s
                join intermediate.int_registered_population as pop
                  on pop.person_id = s.person_id and pop.period_end = ?
                where s.admission_method not in ('31', '32') and s.discharge_date between ? and ?)
            select quintile, count_if(readmitted), count(*) from discharges group by rollup (quintile)""",
        end,
        start,
        end,
    )
    expected = {quintile or "city": (readmitted, discharges) for quintile, readmitted, discharges in counted}
    assert 0 < expected["city"][0] < expected["city"][1]
    published = query(
        store,
        "select geography_level, area_code, numerator, denominator, rate, denominator_unit"
        " from marts.mart_utilisation where measure = 'emergency_readmission_rate'"
        f" and geography_level in ('city', 'imd_quintile') and {rolling_period(end)}",
    )
    found = {}
    for level, area, numerator, denominator, rate, unit in published:
        assert unit == "discharges"
        if denominator:
            assert rate == pytest.approx(numerator / denominator)
            found["city" if level == "city" else area] = (numerator, denominator)
    assert found == expected
