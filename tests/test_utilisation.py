"""mart_utilisation by condition and by number of long-term conditions, built by dbt on the sample.

Every utilisation indicator is broken down by `condition` (the people on each register at the
reporting period end) and by `condition_count` (0, 1, 2, 3, 4+ registers), per 1,000 persons with
the mart's intervals (Byar; Wilson for the DNA rate; none for bed days).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from conftest import query

from ldm.sql import literal

REPO = Path(__file__).resolve().parent.parent
PROJECT_VARS = yaml.safe_load((REPO / "dbt_project" / "dbt_project.yml").read_text())["vars"]
CONDITIONS = {register["condition"] for register in PROJECT_VARS["registers"]}
INDICATORS = {
    indicator["measure"]: indicator["codelist"] for indicator in PROJECT_VARS["admission_indicators"]
}
MEASURES = {
    "emergency_admissions", "elective_admissions", "bed_days", "outpatient_attendances",
    "outpatient_dna_rate", "ae_attendances", "community_contacts", *INDICATORS,
}  # fmt: skip
COUNT_GROUPS = {"0", "1", "2", "3", "4+"}


@pytest.fixture(scope="module")
def store(sample_marts_store) -> Path:
    return sample_marts_store


def test_every_measure_is_broken_down_by_condition_and_number_of_conditions(store):
    rows = query(
        store,
        "select measure, geography_level, area_code from marts.mart_utilisation"
        " where geography_level in ('condition', 'condition_count')",
    )
    by_condition = {(m, a) for m, level, a in rows if level == "condition"}
    by_count = {(m, a) for m, level, a in rows if level == "condition_count"}
    assert by_condition == {(m, c) for m in MEASURES for c in CONDITIONS}
    assert by_count == {(m, g) for m in MEASURES for g in COUNT_GROUPS}


def test_new_breakdowns_carry_rates_and_the_marts_intervals(store):
    rows = query(
        store,
        "select measure, numerator, denominator, rate, rate_lower, rate_upper, rate_unit, denominator_unit"
        " from marts.mart_utilisation where geography_level in ('condition', 'condition_count')",
    )
    assert rows
    for measure, numerator, denominator, rate, lower, upper, rate_unit, denominator_unit in rows:
        assert denominator > 0, measure
        if measure == "outpatient_dna_rate":
            assert (rate_unit, denominator_unit) == ("proportion", "appointments")
            assert rate == pytest.approx(numerator / denominator)
        else:
            assert (rate_unit, denominator_unit) == ("per 1,000 persons", "persons")
            assert rate == pytest.approx(1000 * numerator / denominator)
        if measure == "bed_days":
            assert lower is None and upper is None
        else:
            assert lower <= rate <= upper, measure


def test_people_with_four_or_more_conditions_have_more_emergency_admissions_than_people_with_none(store):
    rates = dict(
        query(
            store,
            "select area_code, rate from marts.mart_utilisation"
            " where measure = 'emergency_admissions' and geography_level = 'condition_count'",
        )
    )
    assert rates["4+"] > rates["0"], rates


def test_condition_denominators_are_the_register_sizes_at_city_level(store):
    registers = dict(
        query(
            store,
            "select condition, numerator from marts.mart_prevalence where geography_level = 'city'",
        )
    )
    assert set(registers) == CONDITIONS
    for measure in MEASURES - {"outpatient_dna_rate"}:
        denominators = dict(
            query(
                store,
                "select area_code, denominator from marts.mart_utilisation"
                " where geography_level = 'condition' and measure = ?",
                measure,
            )
        )
        assert denominators == registers, measure


def test_number_of_conditions_partitions_the_city(store):
    rows = query(
        store,
        """select c.measure, c.numerator, c.denominator, sum(n.numerator), sum(n.denominator)
           from marts.mart_utilisation as c
           join marts.mart_utilisation as n
             on n.measure = c.measure and n.geography_level = 'condition_count'
           where c.geography_level = 'city'
           group by all""",
    )
    assert len(rows) == len(MEASURES)
    for measure, numerator, denominator, parts_numerator, parts_denominator in rows:
        assert (numerator, denominator) == (parts_numerator, parts_denominator), measure
    # and the groups agree with the person-level table's condition counts
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
            " where geography_level = 'condition_count' and measure = 'emergency_admissions'",
        )
    )
    assert denominators == people


# Directly age-standardised rates (ESP2013, Dobson with Byar's limits) per 1,000 persons.
DSR_MEASURES = MEASURES - {"bed_days", "outpatient_dna_rate"}


def test_city_emergency_admission_dsr_is_ldm_stats_dsr_of_the_marts_age_band_counts(store):
    from ldm.stats import dsr

    bands = query(
        store,
        """select c.event_count, c.person_count, esp.standard_population
           from intermediate.int_utilisation_by_age_band as c
           join staging.stg_reference__esp2013 as esp on esp.age_band = c.age_band
           where c.measure = 'emergency_admissions' and c.geography_level = 'city'
           order by esp.age_lower""",
    )
    assert len(bands) == 19  # every ESP2013 band has people in the city, so the standard is all 19
    counts, populations, standard = (list(column) for column in zip(*bands, strict=True))
    expected = dsr(
        counts, populations, standard, confidence=PROJECT_VARS["confidence_level"], multiplier=1000
    )
    [(value, lower, upper)] = query(
        store,
        "select dsr, dsr_lower, dsr_upper from marts.mart_utilisation"
        " where measure = 'emergency_admissions' and geography_level = 'city'",
    )
    assert (value, lower, upper) == pytest.approx(expected, rel=1e-9)
    assert lower < value < upper


def test_dsr_is_null_below_ten_events_and_where_it_does_not_apply(store):
    rows = query(
        store,
        """select m.measure, m.geography_level, m.area_code, m.numerator, m.dsr, m.dsr_lower, m.dsr_upper,
                  coalesce(sum(c.event_count) filter (where c.age_band is not null), 0) as banded_count
           from marts.mart_utilisation as m
           left join intermediate.int_utilisation_by_age_band as c
             on c.measure = m.measure and c.geography_level = m.geography_level and c.area_code = m.area_code
           group by all""",
    )
    minimum = PROJECT_VARS["dsr_min_total_count"]
    assert minimum == 10
    shown = small = 0
    for measure, level, area, numerator, value, lower, upper, banded_count in rows:
        key = (measure, level, area)
        if measure not in DSR_MEASURES or level == "age_band" or banded_count < minimum:
            assert (value, lower, upper) == (None, None, None), key
            small += numerator < minimum and measure in DSR_MEASURES and level != "age_band"
        else:
            assert value is not None and lower <= value <= upper, key
            shown += 1
    assert shown and small  # the sample has both kinds of cell
    levels = {level for _, level, *_ in rows}
    assert levels >= {"city", "sex", "imd_quintile", "imd_decile", "condition", "condition_count"}


@pytest.mark.parametrize("measure", sorted(INDICATORS))
def test_emergency_admissions_for_a_condition_agree_with_an_independent_count(store, measure):
    """Recomputed from the store's own tables and the codelist file: emergency admissions (21-28)
    in the 12 months to the period end whose primary diagnosis is in the codelist, of people in
    the registered population, by IMD quintile and for the city."""
    codelist = REPO / "ldm" / "reference" / "codelists" / "icd10" / f"{INDICATORS[measure]}.csv"
    expected = dict(
        query(
            store,
            f"""with period as (select max(reporting_period_end) as last_day from marts.mart_utilisation)
                select coalesce(cast(pop.imd_quintile as varchar), 'unknown'), count(*)
                from main.apc_spells s
                join main.spell_diagnoses d using (batch_id, row_number)
                join intermediate.int_registered_population pop using (person_id), period
                where d.position = 0
                  and d.icd10_code in (select code from read_csv({literal(codelist)}, all_varchar = true))
                  and s.admission_method in ('21', '22', '23', '24', '25', '2A', '2B', '2C', '2D', '28')
                  and s.admission_date > period.last_day - interval 1 year and s.admission_date <= period.last_day
                group by all""",
        )
    )
    assert sum(expected.values()) > 0
    published = dict(
        query(
            store,
            "select area_code, numerator from marts.mart_utilisation "
            "where measure = ? and geography_level = 'imd_quintile' and numerator > 0",
            measure,
        )
    )
    assert published == expected
    city = query(
        store,
        "select numerator from marts.mart_utilisation where measure = ? and geography_level = 'city'",
        measure,
    )
    assert city == [(sum(expected.values()),)]
