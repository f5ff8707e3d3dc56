"""Tests for ldm.stats against PHEindicatormethods' published examples.

Sources (ukhsa-collaboration/PHEindicatormethods):

* inst/doc/PHEindicatormethodsIntroVignette.html: printed output of
  ``phe_proportion`` (Wilson) and ``phe_rate`` (Byar's method for counts >= 10)
  on the vignette's 8-row data frame, at 95% and 99.8%.
* inst/doc/DSR-vignette.html: printed output of ``phe_dsr(df3, dths, pop)``
  (ESP2013, zero deaths in three age bands).
* R/SII_function.R: the ``@examples`` data of ``phe_sii`` (inputs only: its
  output is random, so SII expectations below are independent calculations).
"""

import math

import duckdb
import numpy as np
import pytest
from duckdb.sqltypes import DOUBLE
from scipy.stats import norm

from ldm.stats import (
    byar_ci,
    byar_lower,
    byar_upper,
    dsr,
    sii,
    wilson_ci,
    wilson_lower,
    wilson_upper,
)

REL = 1e-6

# ------------------------------------------------------------------ published data

# expected values from PHEindicatormethods inst/doc/PHEindicatormethodsIntroVignette.html,
# `phe_proportion(df, obs, pop)` and `phe_proportion(df, obs, pop, confidence=99.8)`:
# (obs, pop, lower95, upper95, lower99.8, upper99.8)
WILSON_PUBLISHED = [
    (87, 131, 0.579592491, 0.73930053, 0.5293576135, 0.77658434),
    (1, 164, 0.001077181, 0.03372625, 0.0005322047, 0.06601672),
    (44, 134, 0.254598570, 0.41168471, 0.2181147658, 0.46143836),
    (13, 109, 0.071039739, 0.19341500, 0.0529712429, 0.24689949),
    (83, 131, 0.548367919, 0.71119617, 0.4985908973, 0.75043163),
    (7, 139, 0.024605552, 0.10029837, 0.0167360401, 0.14179381),
    (43, 137, 0.242136529, 0.39575419, 0.2069168113, 0.44507799),
    (5, 163, 0.013172190, 0.06978956, 0.0084801369, 0.10481797),
]

# expected values from PHEindicatormethods inst/doc/PHEindicatormethodsIntroVignette.html,
# `phe_rate(df, obs, pop)` (per 100,000, 95%) and
# `phe_rate(df, obs, pop, confidence=99.8, multiplier=100)`; only the rows with
# method "Byars" (obs >= 10; smaller counts use the exact method there).
# (obs, pop, lower95 per 1e5, upper95 per 1e5, lower99.8 per 100, upper99.8 per 100)
BYAR_PUBLISHED = [
    (87, 131, 53191.89721, 81920.133, 4.654873e01, 91.51034),
    (44, 134, 23856.24577, 44081.622, 1.961417e01, 51.21896),
    (13, 109, 6344.25775, 20396.080, 4.192660e00, 26.14598),
    (83, 131, 50463.30549, 78543.665, 4.400613e01, 87.94878),
    (43, 137, 22712.53344, 42278.943, 1.862510e01, 49.19876),
]

# European Standard Population 2013, 19 five-year bands 0-4 .. 90+ (the package's esp2013).
# fmt: off
ESP2013 = [5000, 5500, 5500, 5500, 6000, 6000, 6500, 7000, 7000, 7000,
           7000, 6500, 6000, 5500, 5000, 4000, 2500, 1500, 1000]
# fmt: on

# phe_sii @examples in R/SII_function.R, "Area1" (deciles, most deprived first).
SII_POPULATION = [7291, 7997, 6105, 7666, 5790, 6934, 5918, 5974, 7147, 7534]
SII_VALUE = [75.9, 78.3, 83.8, 83.6, 80.5, 81.1, 81.7, 84.2, 80.6, 86.3]
SII_SE = [1.64, 1.58, 1.51, 1.78, 1.7, 1.56, 1.37, 1.4, 2.43, 1.57]


# ------------------------------------------------------------------ Wilson


@pytest.mark.parametrize(("x", "n", "lo95", "hi95", "lo998", "hi998"), WILSON_PUBLISHED)
def test_wilson_matches_published_phe_proportion(x, n, lo95, hi95, lo998, hi998):
    assert wilson_ci(x, n) == pytest.approx((lo95, hi95), rel=REL)
    assert wilson_ci(x, n, confidence=0.998) == pytest.approx((lo998, hi998), rel=REL)


def test_wilson_hand_calculation_at_zero():
    # x = 0: lower = (z^2 - z*sqrt(z^2)) / (2(n + z^2)) = 0, upper = z^2 / (n + z^2).
    z = norm.ppf(0.975)
    assert wilson_ci(0, 50) == pytest.approx((0.0, z * z / (50 + z * z)), abs=1e-15)


@pytest.mark.parametrize(("x", "n"), [(0, 10), (1, 164), (44, 134), (10, 10), (0.445, 1)])
def test_wilson_contains_estimate_and_widens(x, n):
    lo95, hi95 = wilson_ci(x, n, 0.95)
    lo998, hi998 = wilson_ci(x, n, 0.998)
    assert 0.0 <= lo998 <= lo95 <= x / n <= hi95 <= hi998 <= 1.0
    assert hi998 - lo998 > hi95 - lo95


@pytest.mark.parametrize(("x", "n"), [(-1, 10), (1, 0), (1, -5), (11, 10)])
def test_wilson_rejects_invalid_counts(x, n):
    with pytest.raises(ValueError):
        wilson_ci(x, n)


@pytest.mark.parametrize("confidence", [0.0, 1.0, 95, -0.5])
def test_confidence_must_be_a_proportion(confidence):
    with pytest.raises(ValueError):
        wilson_ci(1, 10, confidence)
    with pytest.raises(ValueError):
        byar_ci(10, confidence)


# ------------------------------------------------------------------ Byar


@pytest.mark.parametrize(("x", "n", "lo95", "hi95", "lo998", "hi998"), BYAR_PUBLISHED)
def test_byar_matches_published_phe_rate(x, n, lo95, hi95, lo998, hi998):
    # phe_rate divides the count limits by n and multiplies by the multiplier.
    assert byar_ci(x) == pytest.approx((lo95 * n / 1e5, hi95 * n / 1e5), rel=REL)
    assert byar_ci(x, 0.998) == pytest.approx((lo998 * n / 100, hi998 * n / 100), rel=REL)


def test_byar_hand_calculation():
    # x = 8, z = 1.959964: lower = 8 (1 - 1/72 - z/(3 sqrt 8))^3,
    # upper = 9 (1 - 1/81 + z/9)^3.
    z = 1.959963984540054
    lower = 8 * (1 - 1 / 72 - z / (3 * math.sqrt(8))) ** 3
    upper = 9 * (1 - 1 / 81 + z / 9) ** 3
    assert byar_ci(8) == pytest.approx((lower, upper), rel=1e-12)


def test_byar_zero_count_has_zero_lower_limit():
    # Upper for x = 0 is the formula at x + 1 = 1: (1 - 1/9 + z/3)^3.
    z = norm.ppf(0.975)
    assert byar_ci(0) == pytest.approx((0.0, (8 / 9 + z / 3) ** 3), rel=1e-12)


def test_byar_negative_lower_limit_is_undefined():
    # x = 1 at 99.8%: 1 - 1/9 - 3.09/3 < 0, where the package returns NA.
    lower, upper = byar_ci(1, 0.998)
    assert math.isnan(lower)
    assert upper > 1
    assert byar_lower(1, 0.998) is None


@pytest.mark.parametrize("x", [0, 1, 5, 10, 87, 1045, 250000])
def test_byar_contains_count_and_widens(x):
    lo95, hi95 = byar_ci(x, 0.95)
    lo99, hi99 = byar_ci(x, 0.99)
    assert lo99 <= lo95 <= x < hi95 < hi99


def test_byar_rejects_negative_count():
    with pytest.raises(ValueError):
        byar_ci(-1)


# ------------------------------------------------------------------ scalar helpers


def test_scalar_helpers_agree_with_interval_functions():
    assert wilson_lower(87, 131) == wilson_ci(87, 131)[0]
    assert wilson_upper(87, 131, 0.998) == wilson_ci(87, 131, 0.998)[1]
    assert byar_lower(87) == byar_ci(87)[0]
    assert byar_upper(87, 0.998) == byar_ci(87, 0.998)[1]
    for value in (wilson_lower(3, 7), wilson_upper(3, 7), byar_lower(3), byar_upper(3)):
        assert type(value) is float


def test_scalar_helpers_are_none_safe():
    assert wilson_lower(None, 10) is None
    assert wilson_lower(1, None) is None
    assert wilson_upper(None, None) is None
    assert byar_lower(None) is None
    assert byar_upper(None) is None


def test_scalar_helpers_work_as_duckdb_udfs():
    con = duckdb.connect()
    for name, func, arity in [
        ("wilson_lower", wilson_lower, 3),
        ("wilson_upper", wilson_upper, 3),
        ("byar_lower", byar_lower, 2),
        ("byar_upper", byar_upper, 2),
    ]:
        con.create_function(name, func, [DOUBLE] * arity, DOUBLE, null_handling="special")
    row = con.execute(
        "select wilson_lower(87, 131, 0.95), wilson_upper(null, 131, 0.95),"
        " byar_lower(87, 0.95), byar_upper(null, 0.95)"
    ).fetchone()
    assert row[0] == pytest.approx(0.579592491, rel=REL)
    assert row[1] is None
    assert row[2] == pytest.approx(53191.89721 * 131 / 1e5, rel=REL)
    assert row[3] is None


# ------------------------------------------------------------------ DSR

# DSR-vignette: pops2/deaths2 joined by age band, missing deaths replaced by 0.
DSR_POP = [30, 35, 35, 35, 40, 40, 45, 50, 50, 50, 60, 60, 70, 75, 70, 60, 20, 20, 15]
DSR_DEATHS = [1, 1, 0, 0, 0, 1, 1, 3, 3, 3, 3, 10, 10, 10, 10, 8, 8, 8, 8]


def test_dsr_matches_published_vignette_example():
    # expected values from PHEindicatormethods inst/doc/DSR-vignette.html:
    # phe_dsr(df3, dths, pop) -> value 8283.016, lowercl 6570.819, uppercl 10289.65
    value, lower, upper = dsr(DSR_DEATHS, DSR_POP, ESP2013)
    assert (value, lower, upper) == pytest.approx((8283.016, 6570.819, 10289.65), rel=REL)


def test_dsr_treats_missing_counts_as_zero():
    with_missing = [None if d == 0 else d for d in DSR_DEATHS]
    assert dsr(with_missing, DSR_POP, ESP2013) == dsr(DSR_DEATHS, DSR_POP, ESP2013)


def test_dsr_hand_calculation_single_band():
    # One band: DSR = crude rate x/n, var = x/n^2, scale = sqrt(var/x) = 1/n,
    # so Dobson reduces to the Byar limits of x divided by n.
    value, lower, upper = dsr([50], [1000], [1], multiplier=1000)
    byar_low, byar_high = byar_ci(50)
    assert (value, lower, upper) == pytest.approx((50.0, byar_low, byar_high), rel=1e-12)


def test_dsr_is_nan_below_total_count_ten():
    nine = [0] * 18 + [9]
    ten = [0] * 18 + [10]
    assert all(math.isnan(v) for v in dsr(nine, DSR_POP, ESP2013))
    assert all(math.isnan(v) for v in dsr([0] * 19, DSR_POP, ESP2013))
    assert not any(math.isnan(v) for v in dsr(ten, DSR_POP, ESP2013))


def test_dsr_contains_estimate_and_widens():
    value, lo95, hi95 = dsr(DSR_DEATHS, DSR_POP, ESP2013, confidence=0.95)
    value998, lo998, hi998 = dsr(DSR_DEATHS, DSR_POP, ESP2013, confidence=0.998)
    assert value == value998
    assert lo998 < lo95 < value < hi95 < hi998


def test_dsr_multiplier_scales_everything():
    per_100k = dsr(DSR_DEATHS, DSR_POP, ESP2013)
    per_1k = dsr(DSR_DEATHS, DSR_POP, ESP2013, multiplier=1000)
    assert per_1k == pytest.approx(tuple(v / 100 for v in per_100k), rel=1e-12)


@pytest.mark.parametrize(
    ("counts", "pops", "std"),
    [
        ([1, -1], [10, 10], [1, 1]),  # negative count
        ([1, 1], [10, 0], [1, 1]),  # zero population
        ([1, 1], [10, 10], [1]),  # length mismatch
        ([], [], []),  # empty
        ([1, 1], [10, 10], [0, 0]),  # no standard population
    ],
)
def test_dsr_rejects_invalid_input(counts, pops, std):
    with pytest.raises(ValueError):
        dsr(counts, pops, std)


# ------------------------------------------------------------------ SII


def _weighted_fit(values, populations):
    """Independent closed form of the population-weighted regression on rank.

    With shares a_i and midpoint ranks b_i, the weighted mean rank is sum(a b) = 1/2;
    slope = sum a (b - 1/2)(y - ybar) / sum a (b - 1/2)^2 with ybar = sum a y,
    intercept = ybar - slope / 2. Also returns the weights c_i with slope = sum c_i y_i.
    """
    a = np.asarray(populations, float) / np.sum(populations)
    b = np.cumsum(a) - a / 2
    y = np.asarray(values, float)
    centred = b - np.sum(a * b)
    c = a * centred / np.sum(a * centred**2)
    slope = float(np.sum(c * y))
    intercept = float(np.sum(a * y) - slope * np.sum(a * b))
    return intercept, slope, c


def test_sii_hand_calculation_equal_quintiles():
    # Equal quintiles: ranks 0.1, 0.3, 0.5, 0.7, 0.9. Values 10 + 20 * rank lie on a
    # line, so the fit is exact: intercept 10, SII 20, RII = (10 + 20) / 10 = 3.
    result = sii([12, 16, 20, 24, 28], [100] * 5, [0.0] * 5, repetitions=1000, seed=0)
    assert result["sii"] == pytest.approx(20.0, rel=1e-12)
    assert result["rii"] == pytest.approx(3.0, rel=1e-12)
    # With zero standard errors every simulated fit is the point estimate.
    assert result["sii_lower"] == pytest.approx(20.0, rel=1e-12)
    assert result["sii_upper"] == pytest.approx(20.0, rel=1e-12)
    assert result["rii_lower"] == pytest.approx(3.0, rel=1e-12)
    assert result["rii_upper"] == pytest.approx(3.0, rel=1e-12)


def test_sii_point_estimates_match_closed_form_on_package_example():
    intercept, slope, _ = _weighted_fit(SII_VALUE, SII_POPULATION)
    result = sii(SII_VALUE, SII_POPULATION, SII_SE, repetitions=1000, seed=1)
    assert result["sii"] == pytest.approx(slope, rel=1e-10)
    assert result["rii"] == pytest.approx((intercept + slope) / intercept, rel=1e-10)


def test_sii_simulated_limits_match_normal_theory():
    # SII is linear in the values (sum c_i y_i), so the simulated SII is exactly
    # Normal(sii, sqrt(sum c_i^2 se_i^2)); its 2.5% and 97.5% points are
    # sii -/+ 1.96 sd. Monte Carlo error of those quantiles at 100,000 draws is
    # about 0.0085 sd, so 0.05 sd is a safe tolerance.
    _, slope, c = _weighted_fit(SII_VALUE, SII_POPULATION)
    sd = float(np.sqrt(np.sum(c**2 * np.asarray(SII_SE) ** 2)))
    z = norm.ppf(0.975)
    result = sii(SII_VALUE, SII_POPULATION, SII_SE, seed=2024)
    assert result["sii_lower"] == pytest.approx(slope - z * sd, abs=0.05 * sd)
    assert result["sii_upper"] == pytest.approx(slope + z * sd, abs=0.05 * sd)


def test_sii_intervals_contain_estimates_and_widen():
    r95 = sii(SII_VALUE, SII_POPULATION, SII_SE, confidence=0.95, seed=7)
    r998 = sii(SII_VALUE, SII_POPULATION, SII_SE, confidence=0.998, seed=7)
    for key in ("sii", "rii"):
        assert r95[f"{key}_lower"] < r95[key] < r95[f"{key}_upper"]
        assert r998[f"{key}_lower"] < r95[f"{key}_lower"]
        assert r998[f"{key}_upper"] > r95[f"{key}_upper"]


def test_sii_is_reproducible_with_a_seed():
    first = sii(SII_VALUE, SII_POPULATION, SII_SE, repetitions=5000, seed=42)
    again = sii(SII_VALUE, SII_POPULATION, SII_SE, repetitions=5000, seed=42)
    other = sii(SII_VALUE, SII_POPULATION, SII_SE, repetitions=5000, seed=43)
    assert first == again
    assert first["sii"] == other["sii"]
    assert first["sii_lower"] != other["sii_lower"]


def test_sii_sign_follows_the_gradient():
    # Values rising towards the least deprived (e.g. life expectancy): SII > 0, RII > 1.
    rising = sii(SII_VALUE, SII_POPULATION, SII_SE, repetitions=1000, seed=3)
    assert rising["sii"] > 0
    assert rising["rii"] > 1
    # Reversing the order of quantiles reverses the gradient: with the populations
    # reversed too, every rank b becomes 1 - b, so the slope changes sign exactly.
    falling = sii(SII_VALUE[::-1], SII_POPULATION[::-1], SII_SE[::-1], repetitions=1000, seed=3)
    assert falling["sii"] == pytest.approx(-rising["sii"], rel=1e-10)
    assert falling["rii"] < 1
    assert falling["sii_upper"] < 0


@pytest.mark.parametrize(
    ("values", "pops", "ses", "repetitions"),
    [
        ([1, 2, 3, 4], [1] * 4, [0.1] * 4, 1000),  # fewer than 5 quantiles
        ([1, 2, 3, 4, 5], [1, 1, 0, 1, 1], [0.1] * 5, 1000),  # zero population
        ([1, 2, 3, 4, 5], [1] * 5, [0.1, 0.1, -0.1, 0.1, 0.1], 1000),  # negative se
        ([1, 2, 3, 4, 5], [1] * 5, [0.1] * 4, 1000),  # length mismatch
        ([1, 2, 3, 4, 5], [1] * 5, [0.1] * 5, 999),  # too few repetitions
    ],
)
def test_sii_rejects_invalid_input(values, pops, ses, repetitions):
    with pytest.raises(ValueError):
        sii(values, pops, ses, repetitions=repetitions)
