"""The Great Expectations suite of the marts (expectations/marts.json) on the built sample store."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from conftest import rolling_period, store_copy
from great_expectations.expectations.registry import get_expectation_impl

from ldm.marts.expectations import SUITE_PATH, load_suite, validate_marts


@pytest.fixture(scope="module")
def store(sample_marts_store) -> Path:
    return sample_marts_store


def test_suite_names_real_expectations_and_columns(store):
    con = duckdb.connect(str(store), read_only=True)
    try:
        columns = {
            (table, column)
            for table, column in con.execute(
                "select table_name, column_name from information_schema.columns where table_schema = 'marts'"
            ).fetchall()
        }
    finally:
        con.close()
    suite = load_suite()
    assert {"mart_prevalence", "mart_utilisation", "mart_inequalities", "mart_person_analysis"} <= set(suite)
    for mart, rules in suite.items():
        assert rules and any(rule["type"] == "expect_table_row_count_to_be_between" for rule in rules)
        for rule in rules:
            get_expectation_impl(rule["type"])  # raises for an unknown expectation
            assert rule["meta"]["rule"]
            for key in ("column", "column_A", "column_B"):
                if key in rule["kwargs"]:
                    assert (mart, rule["kwargs"][key]) in columns, (mart, rule)
    assert json.loads(SUITE_PATH.read_text())["name"] == "marts"


def test_the_built_marts_pass(store):
    assert validate_marts(store) == []


def test_a_rate_out_of_bounds_fails_and_names_the_expectation(store, tmp_path):
    bad = store_copy(
        store,
        tmp_path,
        "update marts.mart_utilisation set rate = 2.0"
        f" where measure = 'outpatient_dna_rate' and geography_level = 'city' and {rolling_period()}",
        "update marts.mart_prevalence set numerator = denominator + 1"
        f" where condition = 'asthma' and geography_level = 'imd_quintile' and {rolling_period()}",
    )
    failures = validate_marts(bad)
    found = {(f.mart, f.expectation, f.rule): f for f in failures}
    dna = found[("mart_utilisation", "expect_column_values_to_be_between",
                 "outpatient DNA rate is not a proportion in 0..1")]  # fmt: skip
    assert dna.unexpected_count == 1 and dna.examples == ["2.0"] and dna.columns == ["rate"]
    assert ("mart_utilisation", "expect_column_pair_values_a_to_be_greater_than_b",
            "rate is above its upper limit rate_upper") in found  # fmt: skip
    register = found[("mart_prevalence", "expect_column_pair_values_a_to_be_greater_than_b",
                      "numerator (register) exceeds denominator (list)")]  # fmt: skip
    assert register.unexpected_count == 5  # the five quintiles
    assert "expect_column_pair_values_a_to_be_greater_than_b" in str(register)
    assert {f.mart for f in failures} == {"mart_utilisation", "mart_prevalence"}
    # Batches are validated one at a time: the verdict and the counts do not depend on their size.
    small = validate_marts(bad, batch_rows=20_000)  # several batches of the larger marts
    assert [(f.mart, f.rule, f.unexpected_count) for f in small] == [
        (f.mart, f.rule, f.unexpected_count) for f in failures
    ]


def test_an_empty_or_missing_mart_fails(store, tmp_path):
    bad = store_copy(
        store, tmp_path, "delete from marts.mart_inequalities", "drop table marts.mart_person_analysis"
    )
    failures = {(f.mart, f.expectation) for f in validate_marts(bad)}
    assert failures == {
        ("mart_inequalities", "expect_table_row_count_to_be_between"),
        ("mart_person_analysis", "expect_table_row_count_to_be_between"),
    }


@pytest.mark.parametrize(("people", "tolerated"), [(1, True), (10, True), (60, False)])
def test_a_person_rule_tolerates_a_few_rows_and_fails_above_its_share(store, tmp_path, people, tolerated):
    """One person aged 125 (born 1900, died 2000, aged at the period end) is a warning, not a stop."""
    bad = store_copy(
        store,
        tmp_path,
        f"update marts.mart_person_analysis set age = 125 where person_id in "
        f"(select person_id from marts.mart_person_analysis order by person_id limit {people})",
    )
    ages = [f for f in validate_marts(bad) if f.rule.startswith("age is outside")]
    assert [(f.unexpected_count, f.tolerated) for f in ages] == [(people, tolerated)]
