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
    """One person born after the reporting date and one spell with an unknown admission method."""
    store = store_copy(
        sample_marts_store,
        tmp_path,
        """update persons set year_of_birth = 2026
           where person_id = (select min(person_id) from intermediate.int_registered_population)""",
        "update apc_spells set admission_method = 'XX' where rowid = (select min(rowid) from apc_spells)",
    )
    summary = build_marts(store, tmp_path / "dbt", VARIABLES)
    assert "PASS=" in summary and "ERROR=0" in summary
    warned = "warned: 1 row broke it (it fails above 0.1% of rows and 10 rows)"
    assert f"{AGE_TEST} {warned}" in summary and f"{METHOD_TEST} {warned}" in summary, summary
    listed, population, city = query(
        store,
        """select (select count(*) from intermediate.int_registered_list),
                  (select count(*) from intermediate.int_registered_population),
                  (select denominator from marts.mart_prevalence
                   where condition = 'hypertension' and geography_level = 'city')""",
    )[0]
    assert population == listed - 1 and city == population  # left out of the marts, and counted


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
