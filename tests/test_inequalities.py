"""mart_inequalities on the committed sample: built by dbt, its indices are ldm.stats.sii's.

Sign convention (ldm.stats.sii, as PHEindicatormethods' phe_sii): quantiles run from 1 (most
deprived) to the least deprived; SII = fitted value at the least deprived end (x = 1) minus the
fitted value at the most deprived end (x = 0), and RII = fitted(1) / fitted(0). An indicator
higher in deprived areas, such as diabetes prevalence, therefore has a negative SII and an RII
below 1.

The mart holds every period of the series; a test reads one (the latest rolling 12 months unless it
says otherwise) or checks every period alike.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import PERIOD_END, YEAR_BEFORE, query, rolling_period
from scipy.stats import norm

from ldm import stats

REPO = Path(__file__).resolve().parent.parent
PROJECT_VARS = yaml.safe_load((REPO / "dbt_project" / "dbt_project.yml").read_text())["vars"]
UTILISATION_HEADLINES = [
    "emergency_admissions", "elective_admissions", "outpatient_dna_rate", "ae_attendances", "community_contacts",
]  # fmt: skip
INDEX_KEYS = ("sii", "rii", "sii_lower", "sii_upper", "rii_lower", "rii_upper")


@pytest.fixture(scope="module")
def store(sample_marts_store) -> Path:
    return sample_marts_store


def quantile_rows(
    store: Path, indicator: str, value_type: str, scale: str = "imd_quintile", period: str = rolling_period()
) -> list[tuple]:
    """The rows of one indicator and scale in one period (`period`: an SQL condition)."""
    return query(
        store,
        "select imd_group, rate, denominator, standard_error, rate_lower, rate_upper, "
        "sii, rii, sii_lower, sii_upper, rii_lower, rii_upper, sii_repetitions, sii_seed "
        f"from marts.mart_inequalities where indicator = ? and value_type = ? and imd_scale = ? and {period} "
        "order by imd_group",
        indicator,
        value_type,
        scale,
    )


def test_mart_holds_every_headline_indicator_by_quintile_and_decile(store):
    """In every period: prevalence in each one, utilisation in those whose 12 months the data cover."""
    conditions = [register["condition"] for register in PROJECT_VARS["registers"]]
    prevalence = {(c, t) for c in conditions for t in ("crude", "age_standardised")}
    utilisation = {(m, "crude") for m in UTILISATION_HEADLINES}
    periods = query(store, "select period_type, period_end, activity_complete from marts.mart_periods")
    assert len(periods) > sum(complete for *_, complete in periods) > 1
    rows = query(
        store,
        "select period_type, period_end, indicator, value_type, imd_scale,"
        " count(*), count(distinct imd_group), min(imd_group), max(imd_group)"
        " from marts.mart_inequalities group by all",
    )
    for kind, end, complete in periods:
        held = [row[2:] for row in rows if row[:2] == (kind, end)]
        assert {(r[0], r[1]) for r in held} == prevalence | (utilisation if complete else set()), (kind, end)
        assert {r[2] for r in held} == {"imd_quintile", "imd_decile"}
    assert len({row[:2] for row in rows}) == len(periods)
    for *key, n, distinct, low, high in rows:
        groups = 5 if key[4] == "imd_quintile" else 10
        assert (n, distinct, low, high) == (groups, groups, 1, groups), key


@pytest.mark.parametrize("end", [PERIOD_END, YEAR_BEFORE], ids=str)
def test_diabetes_sii_is_negative_for_prevalence_that_falls_as_deprivation_falls(store, end):
    rows = quantile_rows(store, "diabetes", "crude", period=rolling_period(end))
    rates = [r[1] for r in rows]
    assert rates[0] > rates[-1], "the sample plants more diabetes in the most deprived quintile"
    sii, rii = rows[0][6], rows[0][7]
    assert sii < 0 and rii < 1
    [gap] = query(
        store,
        "select absolute_gap, relative_gap from marts.mart_inequalities where indicator = 'diabetes'"
        f" and value_type = 'crude' and imd_scale = 'imd_quintile' and imd_group = 1 and {rolling_period(end)}",
    )
    assert gap == pytest.approx((rates[0] - rates[-1], rates[0] / rates[-1]), rel=1e-12)
    # The convention itself, on a clean gradient that falls with deprivation.
    falling = stats.sii([0.10, 0.09, 0.08, 0.07, 0.06], [1000] * 5, [0.001] * 5, repetitions=1000, seed=1)
    assert falling["sii"] == pytest.approx(-0.05) and falling["rii"] < 1


def test_standard_errors_come_from_the_intervals_as_phe_sii_derives_them(store):
    z = norm.ppf(0.5 + PROJECT_VARS["confidence_level"] / 2)
    rows = query(
        store,
        "select rate_lower, rate_upper, standard_error from marts.mart_inequalities where rate_lower is not null",
    )
    assert rows
    for lower, upper, se in rows:
        assert se == pytest.approx((upper - lower) / (2 * z), rel=1e-12)


@pytest.mark.parametrize("end", [PERIOD_END, YEAR_BEFORE], ids=str)
def test_mart_indices_are_ldm_stats_sii_on_the_mart_rows(store, end):
    groups = query(
        store,
        "select distinct indicator, value_type, imd_scale from marts.mart_inequalities"
        f" where sii is not null and {rolling_period(end)}",
    )
    assert len(groups) >= 2 * len(UTILISATION_HEADLINES)
    for indicator, value_type, scale in groups:
        rows = quantile_rows(store, indicator, value_type, scale, rolling_period(end))
        repetitions, seed = rows[0][12], rows[0][13]
        assert (repetitions, seed) == (PROJECT_VARS["sii_repetitions"], PROJECT_VARS["sii_seed"])
        direct = stats.sii(
            [r[1] for r in rows],
            [r[2] for r in rows],
            [r[3] for r in rows],
            confidence=PROJECT_VARS["confidence_level"],
            repetitions=repetitions,
            seed=seed,
        )
        for row in rows:  # the same indices on every row of the indicator and scale
            assert dict(zip(INDEX_KEYS, row[6:12], strict=True)) == pytest.approx(direct, rel=1e-12)


def test_indices_are_null_when_a_quantile_has_no_value_or_interval(store):
    rows = query(
        store,
        "select period_type, period_end, indicator, value_type, imd_scale,"
        " count(rate + standard_error), max(quantile_count), count(sii)"
        " from marts.mart_inequalities group by all",
    )
    assert any(with_sii == 0 for *_, with_sii in rows), "some decile DSRs are withheld in the sample"
    for *key, complete, groups, with_sii in rows:
        assert with_sii in (0, groups)
        assert (with_sii > 0) == (complete == groups), key


@pytest.mark.parametrize("end", [PERIOD_END, YEAR_BEFORE], ids=str)
@pytest.mark.parametrize("indicator", ["diabetes", "hypertension"])
def test_rii_is_consistent_with_sii(store, indicator, end):
    for value_type in ("crude", "age_standardised"):
        rows = quantile_rows(store, indicator, value_type, period=rolling_period(end))
        rates = np.array([r[1] for r in rows])
        population = np.array([r[2] for r in rows], dtype=float)
        share = population / population.sum()
        rank = np.cumsum(share) - share / 2
        # Weighted least squares of rate on rank, weights the population shares (as phe_sii).
        slope, intercept = np.polyfit(rank, rates, 1, w=np.sqrt(share))
        sii, rii = rows[0][6], rows[0][7]
        assert sii == pytest.approx(slope, rel=1e-9)
        assert rii == pytest.approx((intercept + slope) / intercept, rel=1e-9)
        assert (sii < 0) == (rii < 1)
        assert rows[0][8] <= sii <= rows[0][9]
