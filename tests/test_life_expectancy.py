"""Tests for ldm.stats.life_expectancy against PHEindicatormethods' phe_life_expectancy.

The data frames and expected results are those of the package's own tests
(tests/testthat/testLifeExpectancy.R), copied into tests/data/phe_life_expectancy/
(see PROVENANCE.md there). The package checks them to 4 decimal places, so the
tolerance here is 1e-4 years.
"""

from __future__ import annotations

import csv
import math
import warnings
from collections import defaultdict
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy.stats import norm

from ldm.stats import LE_AGE_STARTS, LifeExpectancy, life_expectancy

DATA = Path(__file__).resolve().parent / "data" / "phe_life_expectancy"
TOLERANCE = 1e-4  # years
WIDE_CI = "95% confidence interval wider than 20 years"


def _read_inputs() -> dict[str, tuple[list[float], list[float], list[int]]]:
    """Each test data frame as (deaths, populations, age_starts) in its original row order."""
    rows = defaultdict(list)
    with open(DATA / "inputs.csv", newline="") as f:
        for row in csv.DictReader(f):
            rows[row["case"]].append(row)
    cases = {}
    for case, band_rows in rows.items():
        band_rows.sort(key=lambda r: int(r["row"]))
        cases[case] = (
            [float(r["deaths"]) for r in band_rows],
            [float(r["population"]) for r in band_rows],
            [int(r["start_age"]) for r in band_rows],
        )
    return cases


def _read_expected() -> dict[str, dict[int, tuple[float, float, float]]]:
    """Published (value, lower, upper) by case and start age; a blank value is the package's NA."""
    expected: dict[str, dict[int, tuple[float, float, float]]] = defaultdict(dict)
    with open(DATA / "expected.csv", newline="") as f:
        for row in csv.DictReader(f):
            value = float(row["value"]) if row["value"] else math.nan
            expected[row["case"]][int(row["start_age"])] = (value, float(row["lower"]), float(row["upper"]))
    return expected


INPUTS = _read_inputs()
EXPECTED = _read_expected()
DF1_DEATHS, DF1_POPS, DF1_AGES = INPUTS["df1"]


def _quiet(*args, **kwargs) -> dict[int, LifeExpectancy]:
    """life_expectancy with its suppression warnings silenced (for the property tests)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return life_expectancy(*args, **kwargs)


def _with(values: list[float], age: int, new: float) -> list[float]:
    """A copy of df1's column with the band starting at `age` replaced."""
    changed = list(values)
    changed[DF1_AGES.index(age)] = new
    return changed


# ------------------------------------------------------------------ published cases


@pytest.mark.parametrize(
    ("case", "answer", "wide"),
    [
        ("df1", "df1", False),  # the @examples data; answer1
        ("df2", "df1", False),  # same bands in another order; answer1
        ("df_widecis_plus_area_2", "df_widecis_plus_area_2", True),  # answer_widecis, 95% columns
    ],
)
def test_matches_published_phe_life_expectancy(case, answer, wide):
    deaths, pops, ages = INPUTS[case]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = life_expectancy(deaths, pops, ages)
    assert list(result) == list(LE_AGE_STARTS)
    assert any(WIDE_CI in str(w.message) for w in caught) is wide
    for age, (value, lower, upper) in EXPECTED[answer].items():
        got = result[age]
        assert got.start_age == age
        if math.isnan(value):  # suppressed: 95% interval wider than 20 years
            assert math.isnan(got.value), age
        else:
            assert got.value == pytest.approx(value, abs=TOLERANCE), age
        assert got.lower == pytest.approx(lower, abs=TOLERANCE), age
        assert got.upper == pytest.approx(upper, abs=TOLERANCE), age


def test_total_population_of_5000_or_less_is_suppressed():
    # df_low_pops (total 2,883): the package warns and returns NA at every age.
    with pytest.warns(UserWarning, match="5,000"):
        result = life_expectancy(*INPUTS["df_low_pops"])
    assert all(math.isnan(v) for r in result.values() for v in (r.value, r.lower, r.upper))
    # The rule is total <= 5,000, not < 5,000.
    deaths = [10.0] * 20
    with pytest.warns(UserWarning, match="5,000"):
        at_limit = life_expectancy(deaths, [250.0] * 20, LE_AGE_STARTS)
    assert math.isnan(at_limit[0].lower)
    above = _quiet(deaths, [250.0] * 19 + [251.0], LE_AGE_STARTS)
    assert math.isfinite(above[0].lower)
    assert math.isfinite(above[0].upper)


def test_open_band_hand_calculation():
    # At 90+ the expectancy is 1/M = population/deaths and its variance is Silcocks'
    # 4/(D M^2) times (l/2)^2 over l^2, i.e. 1/(D M^2): limits (1/M)(1 -/+ z/sqrt(D)).
    result = life_expectancy(DF1_DEATHS, DF1_POPS, DF1_AGES, confidence=0.99)
    d, n = DF1_DEATHS[-1], DF1_POPS[-1]
    z = norm.ppf(0.995)
    assert result[90].value == pytest.approx(n / d, rel=1e-12)
    assert result[90].lower == pytest.approx(n / d * (1 - z / math.sqrt(d)), rel=1e-12)
    assert result[90].upper == pytest.approx(n / d * (1 + z / math.sqrt(d)), rel=1e-12)


def test_limits_scale_with_the_normal_quantile():
    # The package's test7/test8: 99.8% limits are the 95% standard error times z(99.8%).
    r95 = life_expectancy(DF1_DEATHS, DF1_POPS, DF1_AGES, confidence=0.95)
    r998 = life_expectancy(DF1_DEATHS, DF1_POPS, DF1_AGES, confidence=0.998)
    ratio = norm.ppf(0.999) / norm.ppf(0.975)
    for age in LE_AGE_STARTS:
        assert r998[age].value == r95[age].value
        half_width = (r95[age].upper - r95[age].lower) / 2
        assert r998[age].upper - r998[age].value == pytest.approx(half_width * ratio, rel=1e-9)


def test_zero_deaths_below_90_are_allowed():
    result = life_expectancy(_with(DF1_DEATHS, 5, 0.0), DF1_POPS, DF1_AGES)
    baseline = life_expectancy(DF1_DEATHS, DF1_POPS, DF1_AGES)
    assert all(math.isfinite(v) for r in result.values() for v in (r.value, r.lower, r.upper))
    assert result[0].value > baseline[0].value
    # Ages above the changed band only see every l scaled, which cancels (to rounding).
    for field in ("value", "lower", "upper"):
        assert getattr(result[10], field) == pytest.approx(getattr(baseline[10], field), rel=1e-12)


def test_zero_deaths_at_90_plus_gives_no_value():
    # The package's code carries M = 0 through: every expectancy is Inf -> NA, limits NaN/Inf.
    with pytest.warns(UserWarning, match=WIDE_CI):
        result = life_expectancy(_with(DF1_DEATHS, 90, 0.0), DF1_POPS, DF1_AGES)
    for r in result.values():
        assert math.isnan(r.value)
        assert math.isnan(r.lower)
        assert r.upper == math.inf


def test_certain_death_in_a_band_ends_the_table():
    # M n a > 1 at 85-89 (M = 1, n = 5, a = 0.5) makes q = 1: nobody reaches 90, whose
    # expectancy is then 0 with undefined limits, and at 85 everyone lives half the band.
    result = life_expectancy(_with(DF1_DEATHS, 85, DF1_POPS[DF1_AGES.index(85)]), DF1_POPS, DF1_AGES)
    assert result[90].value == 0.0
    assert math.isnan(result[90].lower)
    assert math.isnan(result[90].upper)
    assert result[85].value == pytest.approx(2.5, rel=1e-12)


# ------------------------------------------------------------------ refused input

_DEATHS_21 = [*DF1_DEATHS, 5.0]
_POPS_21 = [*DF1_POPS, 500.0]


@pytest.mark.parametrize(
    ("deaths", "pops", "ages", "confidence", "message"),
    [
        pytest.param(*INPUTS["df_neg_deaths"], 0.95, "deaths must all be >= 0", id="negative deaths"),
        pytest.param(*INPUTS["df_zero_pop"], 0.95, "populations must all be > 0", id="zero population"),
        pytest.param(
            DF1_DEATHS, _with(DF1_POPS, 10, -10.0), DF1_AGES, 0.95, "populations", id="negative population"
        ),
        pytest.param(*INPUTS["df_deaths_greater_pops"], 0.95, "exceed", id="deaths more than population"),
        pytest.param(
            *INPUTS["df_widecis_plus_area_1"], 0.95, "exceed", id="deaths more than population at 90"
        ),
        pytest.param(*INPUTS["df_missing_age"], 0.95, "exactly 20 age bands", id="missing band (19 rows)"),
        pytest.param(_DEATHS_21, _POPS_21, [*DF1_AGES, 90], 0.95, "exactly 20", id="21 bands"),
        pytest.param(
            DF1_DEATHS,
            DF1_POPS,
            _with(DF1_AGES, 90, 95),
            0.95,
            r"missing \[90\], unexpected \[95\]",
            id="band 95 for 90",
        ),
        pytest.param(
            DF1_DEATHS, DF1_POPS, _with(DF1_AGES, 90, 85), 0.95, r"repeated \[85\]", id="repeated band"
        ),
        pytest.param(
            DF1_DEATHS,
            DF1_POPS,
            _with(DF1_AGES, 1, 2),
            0.95,
            r"missing \[1\], unexpected \[2\]",
            id="1-4 as 2",
        ),
        pytest.param(DF1_DEATHS[:-1], DF1_POPS, DF1_AGES, 0.95, "same length", id="length mismatch"),
        pytest.param(
            _with(DF1_DEATHS, 0, math.nan), DF1_POPS, DF1_AGES, 0.95, "finite", id="missing (NaN) deaths"
        ),
        pytest.param(DF1_DEATHS, _with(DF1_POPS, 0, None), DF1_AGES, 0.95, "finite", id="missing population"),
        pytest.param(DF1_DEATHS, DF1_POPS, DF1_AGES, 0.8, "confidence", id="confidence 0.8"),
        pytest.param(DF1_DEATHS, DF1_POPS, DF1_AGES, 0.89, "confidence", id="confidence 0.89"),
        pytest.param(DF1_DEATHS, DF1_POPS, DF1_AGES, 1.0, "confidence", id="confidence 1"),
        pytest.param(DF1_DEATHS, DF1_POPS, DF1_AGES, 95, "confidence", id="confidence as percent"),
    ],
)
def test_refuses_what_phe_life_expectancy_refuses(deaths, pops, ages, confidence, message):
    with pytest.raises(ValueError, match=message):
        life_expectancy(deaths, pops, ages, confidence)


def test_confidence_range_includes_its_lower_end():
    result = life_expectancy(DF1_DEATHS, DF1_POPS, DF1_AGES, confidence=0.9)
    assert result[0].lower < result[0].value < result[0].upper


# ------------------------------------------------------------------ properties

_band = st.tuples(
    st.integers(min_value=300, max_value=60_000),  # population
    st.floats(min_value=0.0, max_value=0.6, allow_nan=False),  # death rate
)


@settings(max_examples=150, deadline=None)
@given(
    bands=st.lists(_band, min_size=20, max_size=20),
    band=st.integers(min_value=0, max_value=19),
    extra=st.floats(min_value=0.0, max_value=1.0, allow_nan=False),
    order=st.permutations(range(20)),
    confidence=st.floats(min_value=0.9, max_value=0.999),
)
def test_more_deaths_never_raise_life_expectancy(bands, band, extra, order, confidence):
    """More deaths in any band (same populations) never lengthen life, at birth or any age.

    Also: limits bracket the value, and the order the bands arrive in is irrelevant.
    """
    pops = [float(n) for n, _ in bands]
    deaths = [float(round(n * rate)) for n, rate in bands]
    deaths[-1] = max(deaths[-1], 1.0)  # 90+ needs a death for a finite table
    more = list(deaths)
    more[band] += round(extra * (pops[band] - deaths[band]))

    before = _quiet(deaths, pops, LE_AGE_STARTS, confidence)
    after = _quiet(more, pops, LE_AGE_STARTS, confidence)
    assume(not math.isnan(before[0].value) and not math.isnan(after[0].value))
    assert after[0].value <= before[0].value + 1e-9
    for age in LE_AGE_STARTS:
        for result in (before, after):
            r = result[age]
            if not any(math.isnan(v) for v in (r.value, r.lower, r.upper)):  # NaN after q = 1
                assert r.lower <= r.value <= r.upper
        if not (math.isnan(before[age].value) or math.isnan(after[age].value)):
            assert after[age].value <= before[age].value + 1e-9

    shuffled = _quiet(
        [more[i] for i in order], [pops[i] for i in order], [LE_AGE_STARTS[i] for i in order], confidence
    )
    assert repr(shuffled) == repr(after)  # repr, because a suppressed value is NaN and NaN != NaN
