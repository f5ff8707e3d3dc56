"""dbt tests that guard data quality warn with counts and fail only above their share, and a failing
dbt build names the model, the rule and how many rows broke it (ldm.marts.build, run_results.json).

Each test plants records in a copy of the store `ldm demo` built from the committed sample (as if
they had got past validation) and runs the real `dbt build` on it.
"""

from __future__ import annotations

import pytest
from conftest import query, store_copy

from ldm.errors import LdmError
from ldm.marts.build import build_marts

pytestmark = pytest.mark.slow
VARIABLES = {"reporting_period_end": "2025-03-31"}
AGE_TEST = "int_registered_list.age: test int_registered_list_age_is_plausible"
METHOD_TEST = "stg_store__apc_spells.admission_method: test stg_store__apc_spells_admission_method_is_known"


def test_a_few_bad_records_warn_with_their_counts_and_are_left_out_of_the_marts(sample_marts_store, tmp_path):
    """One person born after the reporting date and one spell with an unknown admission method.

    The records are changed in place, so every period is computed again (`full_refresh`, as `ldm run
    --full-refresh` does): a build otherwise keeps the periods it has built. The person is listed at
    each period end they were registered at, and each of those rows breaks the age test.
    """
    list_rows = "select count(*) from intermediate.int_registered_list where person_id = ?"
    person = query(
        sample_marts_store,
        "select min(person_id) from intermediate.int_registered_population where period_end = ?",
        VARIABLES["reporting_period_end"],
    )[0][0]
    [(listed_at,)] = query(sample_marts_store, list_rows, person)
    store = store_copy(
        sample_marts_store,
        tmp_path,
        f"update persons set year_of_birth = 2026 where person_id = {person}",
        "update apc_spells set admission_method = 'XX' where rowid = (select min(rowid) from apc_spells)",
    )
    summary = build_marts(store, tmp_path / "dbt", VARIABLES, full_refresh=True)
    assert "PASS=" in summary and "ERROR=0" in summary
    assert query(store, list_rows, person) == [(listed_at,)] and listed_at >= 1  # still listed, and counted
    limits = "(it fails above 0.1% of rows and 10 rows)"
    rows = f"{listed_at} row{'s' if listed_at > 1 else ''}"
    assert f"{AGE_TEST} warned: {rows} broke it {limits}" in summary, summary
    assert f"{METHOD_TEST} warned: 1 row broke it {limits}" in summary, summary
    counts = query(
        store,
        """with listed as (
               select period_end, count(*) as listed, count(*) filter (where person_id = ?) as planted
               from intermediate.int_registered_list group by all),
           population as (
               select period_end, count(*) as persons from intermediate.int_registered_population group by all)
           select listed.period_end, listed.listed, listed.planted, population.persons, mart.denominator
           from listed
           join population using (period_end)
           join marts.mart_prevalence as mart
             on mart.period_end = listed.period_end and mart.period_type = 'rolling_12_months'
            and mart.condition = 'hypertension' and mart.geography_level = 'city'""",
        person,
    )
    [(periods,)] = query(
        store, "select count(*) from marts.mart_periods where period_type = 'rolling_12_months'"
    )
    assert len(counts) == periods
    for end, listed, planted, population, city in counts:  # left out of the marts, at every period end
        assert population == listed - planted and city == population, end


def test_a_failing_build_names_each_model_rule_and_how_many_rows_broke_it(sample_marts_store, tmp_path):
    """A data-quality test above its share, and a test of ldm's own logic (any row is an error)."""
    spells = query(sample_marts_store, "select count(*) from apc_spells")[0][0]
    store = store_copy(
        sample_marts_store,
        tmp_path,
        "update apc_spells set admission_method = 'XX' where rowid in (select rowid from apc_spells limit 20)",
        """update registrations set person_id = 999999999
           where rowid = (select min(rowid) from registrations where person_id is not null)""",
    )
    assert 20 / spells > 0.001
    with pytest.raises(LdmError) as raised:
        build_marts(store, tmp_path / "dbt", VARIABLES)
    lines = str(raised.value).splitlines()
    assert lines[0] == "dbt build failed:", lines
    assert f"  {METHOD_TEST} failed: 20 rows broke it (more than 0.1% of rows and 10 rows)" in lines
    assert any(
        line.startswith("  stg_store__registrations.person_id: test relationships_")
        and line.endswith(" failed: 1 row broke it")
        for line in lines
    ), lines
    assert len(lines) == 3, lines  # one line per failing test; what they stopped is skipped, not listed
