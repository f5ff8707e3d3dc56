"""Properties of the suppression rules on small generated tables (Hypothesis, real DuckDB).

For any city split into areas: no published count is 0-7, no group is left with exactly one
suppressed cell, and no suppressed cell is pinned to one value by the city's published count less
its siblings' published counts (each known to the intruder only within its rounding interval).
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ldm.export.rules import _parse
from ldm.export.suppress import published_sql, suppress

DOCUMENT = {
    "version": 1,
    "counts": {"suppress_min": 0, "suppress_max": 7, "round_to": 5},
    "flag_suffix": "_suppressed",
    "schema": "marts",
    "person_level": [],
    "marts": {
        "mart_areas": {
            "order_by": ["level", "area"],
            "dimensions": ["level", "area"],
            "counts": ["persons"],
            "derived": {"share": {"from": ["persons"], "decimals": 4, "recompute": "persons / 100.0"}},
            "groups": [
                {"name": "areas add up to the city", "columns": ["persons"], "where": "t.level <> 'city'",
                 "by": ["t.level"]},
            ],
        }
    },
}  # fmt: skip
RULES = _parse(Path("rules.yaml"), "0" * 64, DOCUMENT)
MART = RULES.marts["mart_areas"]
HALF = RULES.round_to // 2


def published(areas: list[int]) -> tuple[int | None, list[int | None]]:
    """The city's and each area's published count, after the rules, from a real DuckDB table."""
    con = duckdb.connect()
    con.execute("create schema marts")
    con.execute("create table marts.mart_areas (level varchar, area varchar, persons bigint, share double)")
    con.execute("insert into marts.mart_areas values ('city', 'all', ?, null)", [sum(areas)])
    con.executemany(
        "insert into marts.mart_areas values ('lsoa', ?, ?, null)",
        [[f"a{i:02d}", n] for i, n in enumerate(areas)],
    )
    suppress(con, RULES, MART)
    rows = con.execute(published_sql(RULES, MART, ["level", "area", "persons", "share"])).fetchall()
    con.close()
    city = next(row[3] for row in rows if row[1] == "city")
    return city, [row[3] for row in rows if row[1] != "city"]


def pinned(city: int | None, shown: list[int | None], true: list[int]) -> int:
    """Suppressed cells an intruder pins to their true value, taking each for a small count (0-7),
    from the city less the published areas (a cell suppressed to protect another may be larger)."""
    hidden = [t for value, t in zip(shown, true, strict=True) if value is None]
    if city is None or not hidden:
        return 0
    total_low = city - HALF - sum(v + HALF for v in shown if v is not None)
    total_high = city + HALF - sum(max(v - HALF, 0) for v in shown if v is not None)
    low = max(RULES.suppress_min, total_low - RULES.suppress_max * (len(hidden) - 1))
    high = min(RULES.suppress_max, total_high)
    return sum(low == high == t for t in hidden)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=40), min_size=2, max_size=8))
def test_no_small_count_and_no_lone_suppression(areas):
    city, shown = published(areas)
    for value in [city, *shown]:
        assert value is None or (value > RULES.suppress_max and value % RULES.round_to == 0)
    assert sum(value is None for value in shown) != 1
    for true, value in zip(areas, shown, strict=True):
        assert value is None or abs(value - true) <= HALF


@pytest.mark.xfail(
    strict=True,
    reason="known gap (governance/disclosure_control.md, Limits): when every area of a level is "
    "suppressed and their total is within rounding of 7 times their number, the published city total pins "
    "each at 7; the rules have no way yet to suppress a group's total",
)
@settings(max_examples=60, deadline=None)
@example([7, 7, 7, 7])
@given(st.lists(st.integers(min_value=0, max_value=40), min_size=2, max_size=8))
def test_no_suppressed_cell_is_pinned_by_the_total(areas):
    city, shown = published(areas)
    assert pinned(city, shown, areas) == 0


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=200), min_size=2, max_size=6))
def test_a_derived_value_is_computed_from_the_published_count(areas):
    """So it tells nothing finer than the rounded count: published share = published count / 100."""
    con = duckdb.connect()
    con.execute("create schema marts")
    con.execute("create table marts.mart_areas (level varchar, area varchar, persons bigint, share double)")
    con.execute("insert into marts.mart_areas values ('city', 'all', ?, ?)", [sum(areas), sum(areas) / 100])
    con.executemany(
        "insert into marts.mart_areas values ('lsoa', ?, ?, ?)",
        [[f"a{i:02d}", n, n / 100] for i, n in enumerate(areas)],
    )
    suppress(con, RULES, MART)
    for _, _, _, persons, _, share in con.execute(
        published_sql(RULES, MART, ["level", "area", "persons", "share"])
    ).fetchall():
        assert share == (None if persons is None else round(persons / 100.0, 4))
    con.close()


@pytest.mark.parametrize(
    ("person_years", "small"),
    [(0.0, True), (0.5, True), (7.0, True), (7.5, True), (7.99, True), (8.0, False), (8.5, False)],
)
def test_a_count_that_is_not_whole_is_small_below_eight(person_years: float, small: bool) -> None:
    """Person-years are a mean of two lists (halves): 7.5 is as small as 7, and is never rounded up
    out of the rule and published."""
    con = duckdb.connect()
    con.execute("create schema marts")
    con.execute("create table marts.mart_areas (level varchar, area varchar, persons double, share double)")
    con.execute("insert into marts.mart_areas values ('city', 'all', ?, null)", [person_years])
    suppress(con, RULES, MART)
    [row] = con.execute(published_sql(RULES, MART, ["level", "area", "persons", "share"])).fetchall()
    con.close()
    assert (row[3] is None) == small
