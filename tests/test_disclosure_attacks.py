"""Attack `ldm export` as an intruder would, on a fresh sample (not the committed one); the bar is zero.

- Back-calculation: the true numerator and denominator within the rounding interval that reproduce
  every published rate and interval of a row.
- Differencing: a suppressed cell from its published parent less its published siblings, each
  known only to its rounding interval.
- Successive exports: month 1, then month 2 after one person opts out; a cell suppressed in month 1
  and published as 0 in month 2 shows that the person was in it.

A cell is a mart row of one period (period_type and period_end are part of every key): the marts
hold a series of periods.

Each attack is also run where it must succeed, so each test fails for the right reason if the rules
regress: back-calculation and successive exports on the previous export format (rates to 4 places
from the exact counts; zero published as 0), differencing on an export without secondary suppression
or rounding (the previous format had both, and the attack recovers nothing there either).
"""

from __future__ import annotations

import datetime
import itertools
import math
from pathlib import Path

import duckdb
import pytest
import yaml

from ldm import stats
from ldm.config import load_settings
from ldm.export.export import export
from ldm.export.rules import DEFAULT_RULES, load_rules
from ldm.pipeline import run_pipeline
from ldm.pseudonymise.keys import init_key
from ldm.synthetic.config import SampleConfig
from ldm.synthetic.generate import generate

pytestmark = pytest.mark.slow
TODAY = datetime.date(2025, 4, 1)
RULES = load_rules()
HALF = RULES.round_to // 2  # a published count c stands for a true count in c - HALF .. c + HALF


@pytest.fixture(scope="module")
def months(tmp_path_factory) -> dict[str, Path]:
    """A fresh 3,000-person city's store (month 1) and a copy after one person opts out (month 2)."""
    root = tmp_path_factory.mktemp("disclosure")
    generate(SampleConfig(persons=3000, seed=11), root / "sample")
    init_key(root / "k.key")
    month1 = root / "month1.duckdb"
    run_pipeline(
        root / "sample" / "extracts", load_settings(None, store=month1, key_file=root / "k.key", today=TODAY)
    )
    truth_dir = root / "sample" / "ground_truth"
    # The leaver: someone with many GP events (so with conditions), settled and registered.
    leaver = duckdb.sql(
        f"""with people as (select * from read_parquet('{truth_dir / "persons.parquet"}')
                            where not opted_out and not out_of_area and died_on is null
                              and deregistered_on is null and moved_on is null),
                 events as (select person_key, count(*) as events from read_parquet('{truth_dir / "records.parquet"}')
                            where feed = 'gp_events' group by person_key)
            select nhs_number from people join events using (person_key)
            order by events desc, person_key limit 1"""
    ).fetchall()[0][0]
    month2 = root / "month2.duckdb"
    month2.write_bytes(month1.read_bytes())
    anchor = month1.with_name(month1.name + ".audit-head")
    if anchor.exists():
        month2.with_name(month2.name + ".audit-head").write_bytes(anchor.read_bytes())
    extracts2 = root / "extracts2"
    extracts2.mkdir()
    (extracts2 / "national_data_opt_out_202505.csv").write_text(f"NHS_NUMBER\n{leaver}\n")
    # The next month's run: the opt-out takes the leaver's records away, so every period they were
    # under is computed again without them (the run keeps only periods whose records are unchanged).
    run_pipeline(extracts2, load_settings(None, store=month2, key_file=root / "k.key", today=TODAY))
    with duckdb.connect(str(month2), read_only=True) as con:
        reasons = con.sql("select distinct build_reason from marts.mart_periods").fetchall()
    assert reasons == [("records changed",)]
    previous_rules = root / "previous_rules.yaml"
    document = yaml.safe_load(DEFAULT_RULES.read_text())
    document["counts"]["suppress_min"] = 1  # the previous format published a true zero as 0
    previous_rules.write_text(yaml.safe_dump(document))
    # Without secondary suppression or rounding: the differencing attack must find cells there, or it
    # tests nothing (rounding alone leaves each cell +-2, which defeats it on this city).
    ungrouped_rules = root / "ungrouped_rules.yaml"
    document["counts"]["round_to"] = 1
    for mart in document["marts"].values():
        mart.pop("groups", None)
    ungrouped_rules.write_text(yaml.safe_dump(document))
    out = {"store1": month1, "store2": month2}
    for name, store, rules in (
        ("export1", month1, None),
        ("export2", month2, None),
        ("previous1", month1, previous_rules),
        ("previous2", month2, previous_rules),
        ("ungrouped1", month1, ungrouped_rules),
    ):
        export(store, root / name, rules)
        out[name] = root / name
    return out


def published(folder: Path, mart: str) -> list[dict]:
    result = duckdb.sql(f"select * from read_parquet('{folder / (mart + '.parquet')}')")
    return [dict(zip(result.columns, row, strict=True)) for row in result.fetchall()]


def truth(store: Path, mart: str, keys: tuple[str, ...]) -> dict[tuple, dict]:
    con = duckdb.connect(str(store), read_only=True)
    try:
        result = con.execute(f"select * from marts.{mart}")
        rows = [dict(zip([d[0] for d in result.description], row, strict=True)) for row in result.fetchall()]
    finally:
        con.close()
    return {tuple(row[k] for k in keys): row for row in rows}


PERIOD_KEYS = ("period_type", "period_end")
PREVALENCE_KEYS = (*PERIOD_KEYS, "condition", "geography_level", "area_code")


def sql_round(value: float, places: int = 4) -> float:
    """SQL's round(value, places), as the export rounds (half away from zero; Python's round() takes
    a tie such as 10 / 320 = 0.03125 to the even digit instead)."""
    scale = 10.0**places
    return math.copysign(math.floor(abs(value) * scale + 0.5), value) / scale


def prevalence_values(n: int, d: int) -> tuple:
    """What the mart computes for a prevalence row from exact counts (the intruder knows the method)."""
    return (sql_round(n / d), sql_round(stats.wilson_lower(n, d)), sql_round(stats.wilson_upper(n, d)))


def back_calculated(rows: list[dict], exact: dict[tuple, dict], values: dict[tuple, tuple]) -> int:
    """Rows whose true counts are the only candidates in the rounding interval giving the published values.

    `values` maps a row key to the published (rate, lower, upper). A recovery counts only when it
    tells more than the published counts (the candidate is not the published pair itself).
    """
    recovered = 0
    for row in rows:
        key = tuple(row[k] for k in PREVALENCE_KEYS)
        shown = values.get(key)
        if shown is None or None in shown or row["numerator"] is None or row["denominator"] is None:
            continue
        candidates = [
            (n, d)
            for n, d in itertools.product(
                range(row["numerator"] - HALF, row["numerator"] + HALF + 1),
                range(row["denominator"] - HALF, row["denominator"] + HALF + 1),
            )
            if RULES.suppress_max < n <= d and prevalence_values(n, d) == shown
        ]
        true = (exact[key]["numerator"], exact[key]["denominator"])
        if len(candidates) == 1 and candidates[0] == true and true != (row["numerator"], row["denominator"]):
            recovered += 1
    return recovered


def test_rates_and_intervals_give_back_no_count(months):
    rows = published(months["export1"], "mart_prevalence")
    exact = truth(months["store1"], "mart_prevalence", PREVALENCE_KEYS)
    now = {
        tuple(r[k] for k in PREVALENCE_KEYS): (r["crude_rate"], r["crude_rate_lower"], r["crude_rate_upper"])
        for r in rows
    }
    # The previous format: the same rows, with the mart's rates from exact counts to 4 places.
    before = {
        key: (sql_round(r["crude_rate"]), sql_round(r["crude_rate_lower"]), sql_round(r["crude_rate_upper"]))
        for key, r in exact.items()
        if r["crude_rate"] is not None
    }
    assert sum(v is not None and None not in v for v in now.values()) > 200  # rates are still published
    assert back_calculated(rows, exact, before) > 100
    assert back_calculated(rows, exact, now) == 0


def test_standardised_rates_and_indices_from_exact_counts_are_not_published(months):
    for mart, columns in (
        ("mart_prevalence", ("dsr", "dsr_lower", "dsr_upper")),
        ("mart_utilisation", ("dsr", "dsr_lower", "dsr_upper")),
        ("mart_inequalities", ("sii", "sii_lower", "sii_upper", "rii", "rii_lower", "rii_upper")),
    ):
        rows = published(months["export1"], mart)
        assert rows and all(row[column] is None for row in rows for column in columns), mart


def test_the_published_rates_are_those_of_the_published_counts(months):
    """Anyone can recompute every published rate from the published counts: they tell nothing more."""
    for row in published(months["export1"], "mart_prevalence"):
        if row["crude_rate"] is not None:
            assert (row["crude_rate"], row["crude_rate_lower"], row["crude_rate_upper"]) == prevalence_values(
                row["numerator"], row["denominator"]
            )


def differenced(rows: list[dict], exact: dict[tuple, dict], keys: tuple[str, ...], half: int = HALF) -> int:
    """Suppressed cells pinned to one value by their level's city total less the published cells.

    A level is a geography (LSOA, ward, PCN, practice ...) or a breakdown of the city (sex, age band,
    IMD quintile or decile, number of conditions): its cells add up to the city of the same period,
    each published one known to +-half. Utilisation by condition is left out: a person can have
    several conditions, so those cells do not add up.
    """
    recovered = 0
    totals = keys[:-2]  # the period and the condition or measure: what a level's cells add up within
    cities = {tuple(r[k] for k in totals): r for r in rows if r["geography_level"] == "city"}
    for column in ("numerator", "denominator"):
        groups: dict[tuple, list[dict]] = {}
        for row in rows:
            if row["geography_level"] not in ("city", "condition"):
                groups.setdefault((*(row[k] for k in totals), row["geography_level"]), []).append(row)
        for (*total, _), children in groups.items():
            city = cities[tuple(total)]
            hidden = [c for c in children if c[column] is None]
            if city[column] is None or not hidden:
                continue
            shown = [c[column] for c in children if c[column] is not None]
            low = city[column] - half - sum(v + half for v in shown)
            high = city[column] + half - sum(max(v - half, 0) for v in shown)
            for cell in hidden:
                cell_low = max(RULES.suppress_min, low - RULES.suppress_max * (len(hidden) - 1))
                cell_high = min(RULES.suppress_max, high)
                true = exact[tuple(cell[k] for k in keys)][column]
                recovered += cell_low == cell_high == true
    return recovered


UTILISATION_KEYS = (*PERIOD_KEYS, "measure", "geography_level", "area_code")


def test_no_suppressed_cell_follows_from_its_parent_and_siblings(months):
    """Across geography levels (prevalence) and across the city's breakdowns by sex, age band, IMD
    and number of conditions (utilisation)."""
    for mart, keys in (("mart_prevalence", PREVALENCE_KEYS), ("mart_utilisation", UTILISATION_KEYS)):
        rows = published(months["export1"], mart)
        exact = truth(months["store1"], mart, keys)
        assert sum(r["numerator"] is None for r in rows) > 20, mart  # suppressed cells to attack
        assert differenced(rows, exact, keys) == 0, mart
        # The same attack on the same store exported without secondary suppression or rounding finds cells.
        assert differenced(published(months["ungrouped1"], mart), exact, keys, half=0) > 0, mart


def persons_from_age(unit: str) -> int | None:
    """The minimum age of a utilisation denominator of registered persons ("persons": 0, "persons
    aged 65+": 65), or None for one of other things (appointments, discharges)."""
    if unit == "persons":
        return 0
    if unit.startswith("persons aged ") and unit.endswith("+"):
        return int(unit.removeprefix("persons aged ").removesuffix("+"))
    return None


def shared_counts_split(folder: Path, store: Path) -> tuple[int, int]:
    """Cells holding the same people, in one mart or across two, published in one place and suppressed
    in another: the registered population of an area at a period end is the denominator of every
    all-ages register in mart_prevalence and of every per-person measure in mart_utilisation; a
    register's list is shared by every register with its minimum age, the population aged 65 and
    over by every measure of that age. Returns (cells compared, cells split)."""
    cells: dict[tuple, list] = {}
    for mart, keys, shares in (
        ("mart_prevalence", PREVALENCE_KEYS, lambda r: r["min_age"]),
        ("mart_utilisation", UTILISATION_KEYS, lambda r: persons_from_age(r["denominator_unit"])),
    ):
        exact = truth(store, mart, keys)
        for row in published(folder, mart):
            age = shares(row)
            if age is not None:
                true = exact[tuple(row[k] for k in keys)]["denominator"]
                cell = (row["period_end"], row["geography_level"], row["area_code"], age, true)
                cells.setdefault(cell, []).append(row["denominator"])
    shared = [values for values in cells.values() if len(values) > 1]
    return sum(map(len, shared)), sum(len({v is None for v in values}) > 1 for values in shared)


def test_a_shared_denominator_is_published_or_suppressed_everywhere_alike(months):
    compared, split = shared_counts_split(months["export1"], months["store1"])
    assert compared > 1000
    assert split == 0


def zero_after_suppressed(first: Path, second: Path, mart: str, keys: tuple[str, ...]) -> int:
    """Cells suppressed in the first export and published as 0 in the second."""
    before = {tuple(r[k] for k in keys): r for r in published(first, mart)}
    found = 0
    for row in published(second, mart):
        earlier = before.get(tuple(row[k] for k in keys))
        if earlier is None:
            continue
        for column in RULES.marts[mart].counts:
            found += earlier[column] is None and row[column] == 0
    return found


def test_an_opt_out_between_two_exports_is_not_read_off_their_difference(months):
    keys = {"mart_prevalence": PREVALENCE_KEYS, "mart_utilisation": UTILISATION_KEYS}
    previous = sum(
        zero_after_suppressed(months["previous1"], months["previous2"], m, k) for m, k in keys.items()
    )
    now = sum(zero_after_suppressed(months["export1"], months["export2"], m, k) for m, k in keys.items())
    assert previous > 0  # the previous format gives the leaver away
    assert now == 0
