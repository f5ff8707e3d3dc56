"""The `publish` rule that lets life expectancy out (governance/disclosure_control.md, "Life expectancy"),
which the dashboard needs, on a real store and the real export.

The committed sample is too small for any life expectancy (its city has under 5,000 person-years),
so a copy of its store has chosen deaths, person-years and values written into its
mart_life_expectancy rows, one case per period, and is exported once; each case then checks what
the export published.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
import yaml
from conftest import store_copy

from ldm.errors import LdmError
from ldm.export.export import export
from ldm.export.rules import DEFAULT_RULES, load_rules

RULES = load_rules()
# (deaths, person_years, life expectancy in the store) -> what the export publishes, at birth.
CASES = {
    "published, to one decimal": (40, 6000.0, 81.26, 81.3),
    "person-years at most 5,000": (40, 4990.0, 80.04, None),
    "person-years over 5,000 but published as 5,000": (40, 5002.0, 80.04, None),
    "9 deaths, published as 10": (9, 9000.0, 79.04, 79.0),
    "deaths suppressed": (6, 9000.0, 79.04, None),
}
MART = "marts.mart_life_expectancy"


@pytest.fixture(scope="module")
def periods(sample_marts_store) -> list[tuple[str, str]]:
    rows = duckdb.connect(str(sample_marts_store), read_only=True).execute(
        f"select distinct period_type, cast(period_end as varchar) from {MART} order by all"
    )
    found = rows.fetchall()
    assert len(found) >= len(CASES) + 2  # one period per case, one for the gap, one for a withdrawn level
    return found


@pytest.fixture(scope="module")
def published(sample_marts_store, periods, tmp_path_factory) -> duckdb.DuckDBPyRelation:
    """Export a copy of the store whose city rows hold one case per period (both sexes alike, so that
    neither sex is suppressed to protect the other) and whose IMD quintile rows make two gaps."""
    folder = tmp_path_factory.mktemp("le_rule")
    statements = [
        f"update {MART} set deaths = 0, person_years = 0, life_expectancy = null, life_expectancy_lower = null, "
        "life_expectancy_upper = null, deprivation_gap = null, not_computed = 'an age band has no population', "
        "sii = 5, sii_lower = 4, sii_upper = 6"
    ]
    for (period_type, end), (deaths, years, value, _) in zip(periods, CASES.values(), strict=False):
        statements.append(
            f"update {MART} set deaths = {deaths}, person_years = {years}, life_expectancy = {value}, "
            f"life_expectancy_lower = {value - 1}, life_expectancy_upper = {value + 1}, not_computed = null "
            f"where geography_level = 'city' and start_age = 0 "
            f"and period_type = '{period_type}' and period_end = '{end}'"
        )
    gap_type, gap_end = periods[-1]
    for group in range(1, 6):  # quintile 5 has 3 deaths in the 65+ table: that table's gap must go
        statements.append(
            f"update {MART} set deaths = case when start_age = 65 and area_code = '5' then 3 else 50 end, "
            f"person_years = 7000, life_expectancy = {75 + group}, life_expectancy_lower = {74 + group}, "
            f"life_expectancy_upper = {76 + group}, deprivation_gap = 4.04, not_computed = null "
            f"where geography_level = 'imd_quintile' and area_code = '{group}' "
            f"and period_type = '{gap_type}' and period_end = '{gap_end}'"
        )
    # A level whose quintile 3 passes on its counts but has no value in the store (not computed), with
    # limits (as when the interval is too wide): every quintile of that table goes without.
    withdrawn_type, withdrawn_end = periods[-2]
    for group in range(1, 6):
        value = f"case when start_age = 0 then null else {75 + group} end" if group == 3 else 75 + group
        statements.append(
            f"update {MART} set deaths = 50, person_years = 7000, life_expectancy = {value}, "
            f"life_expectancy_lower = {74 + group}, life_expectancy_upper = {76 + group}, deprivation_gap = 4.04, "
            f"not_computed = null where geography_level = 'imd_quintile' and area_code = '{group}' "
            f"and period_type = '{withdrawn_type}' and period_end = '{withdrawn_end}'"
        )
    copy = store_copy(sample_marts_store, folder, *statements)
    export(copy, folder / "out", marts=["mart_life_expectancy"])
    return duckdb.sql(f"select * from read_parquet('{folder / 'out' / 'mart_life_expectancy.parquet'}')")


@pytest.mark.parametrize("case", list(CASES))
def test_life_expectancy_is_published_only_where_its_published_counts_pass(case, periods, published) -> None:
    period_type, end = periods[list(CASES).index(case)]
    deaths, years, value, expected = CASES[case]
    rows = published.filter(
        f"geography_level = 'city' and start_age = 0 and period_type = '{period_type}' and period_end = '{end}'"
    ).fetchall()
    columns = published.columns
    assert len(rows) == 2  # both sexes
    for row in rows:
        got = dict(zip(columns, row, strict=True))
        assert got["life_expectancy"] == expected, case
        limits = (got["life_expectancy_lower"], got["life_expectancy_upper"])
        assert limits == ((None, None) if expected is None else (round(value - 1, 1), round(value + 1, 1)))
        # the counts themselves follow the count rules, whatever the rule decides for the value
        assert got["deaths"] == (None if deaths <= RULES.suppress_max else round(deaths / 5) * 5)
        assert got["person_years"] == round(years / 5) * 5


def test_the_gap_is_shown_only_where_both_ends_are(periods, published) -> None:
    period_type, end = periods[-1]
    gaps = dict(
        published.filter(
            f"geography_level = 'imd_quintile' and period_type = '{period_type}' and period_end = '{end}'"
        )
        .aggregate("start_age, list(distinct deprivation_gap) as gaps", "start_age")
        .fetchall()
    )
    assert gaps[0] == [4.0]  # every quintile published: the store's gap, to one decimal
    assert gaps[65] == [None]  # quintile 5's deaths are suppressed: no gap on any row


def test_a_value_missing_where_the_counts_pass_takes_its_whole_level_with_it(periods, published) -> None:
    """A lone missing value where the published counts pass would say the store could not compute it
    (no deaths at 90+, say): the whole table of that period, level, sex and start age goes without,
    limits and gap included; the other start age of the same level is published."""
    period_type, end = periods[-2]
    shown = published.filter(
        f"geography_level = 'imd_quintile' and period_type = '{period_type}' and period_end = '{end}'"
    ).aggregate(
        "start_age, count(life_expectancy), count(life_expectancy_lower), count(life_expectancy_upper), "
        "count(deprivation_gap), count(deaths)",
        "start_age",
    )
    assert sorted(shown.fetchall()) == [(0, 0, 0, 0, 0, 10), (65, 10, 10, 10, 10, 10)]


@pytest.mark.parametrize("column", ["not_computed", "sii", "sii_lower", "sii_upper"])
def test_reasons_and_the_sii_are_never_published(column, published) -> None:
    assert published.aggregate(f"count({column})").fetchall() == [(0,)]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"recompute": "1"}, "exactly one of"),
        ({"withhold": True}, "exactly one of"),
        ({"decimals": None}, "needs a condition and `decimals`"),
        ({"publish": "  "}, "needs a condition and `decimals`"),
    ],
)
def test_a_publish_rule_must_be_complete_and_alone(change, message, tmp_path: Path) -> None:
    document = yaml.safe_load(DEFAULT_RULES.read_text())
    document["marts"]["mart_life_expectancy"]["derived"]["life_expectancy"].update(change)
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(LdmError, match=message):
        load_rules(path)


def test_the_rules_publish_life_expectancy_under_the_documented_condition() -> None:
    """The rule the IG decision describes: a value over 5,000 published person-years and at least 10
    published deaths, to one decimal; the reasons and the SII withheld."""
    mart = RULES.marts["mart_life_expectancy"]
    derived = {d.column: d for d in mart.derived}
    for column in ("life_expectancy", "life_expectancy_lower", "life_expectancy_upper", "deprivation_gap"):
        assert derived[column].publish == "person_years > 5000 and deaths >= 10"
        assert derived[column].decimals == 1
    assert all(derived[c].withhold for c in ("not_computed", "sii", "sii_lower", "sii_upper"))
    assert set(mart.counts) == {"deaths", "person_years"}
    text = (DEFAULT_RULES.parent / "disclosure_control.md").read_text()
    assert "## Life expectancy (an IG decision, recorded as a rule)" in text
