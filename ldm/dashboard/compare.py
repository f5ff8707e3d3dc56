"""The statistics the pages state, all from published figures: change between two periods, the
comparison of an area with the city, and the SII and RII of an IMD gradient.

Each takes published (rounded) counts or published values with their intervals, so a statement on
the site says nothing that the published numbers do not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy.stats import binomtest, norm

from ldm import stats

Z95 = float(norm.ppf(0.975))
SII_REPETITIONS = 10_000  # phe_sii's default is 100,000; 10,000 keeps the limits to about 2 digits
SII_SEED = 1
ALPHA = 0.05


def _se(lower: float, upper: float) -> float:
    """The standard error a published 95% interval implies (normal approximation)."""
    return (upper - lower) / (2 * Z95)


@dataclass(frozen=True)
class Change:
    """The change from an earlier period to the latest, and whether it is significant at 5%."""

    test: str
    p_value: float | None
    direction: str  # higher | lower | similar | not tested

    @property
    def significant(self) -> bool:
        return self.p_value is not None and self.p_value < ALPHA


def change(kind: str, earlier: dict, latest: dict, value: str, lower: str, upper: str) -> Change:
    """Test the change from `earlier` to `latest` (rows of published figures).

    Proportions: the two-proportion z-test with a pooled proportion. Rates per 1,000: the exact
    conditional test of two Poisson rates (the later count given the total is binomial with the
    share of person-time in the later period). Life expectancy: a z-test on the difference with
    standard errors from the published 95% intervals. The tests treat the two periods as
    independent samples; they are a year apart and do not overlap, but many of the same people are
    in both, which makes the tests conservative for prevalence.
    """
    if kind in ("proportion", "rate"):
        x1, n1, x2, n2 = (
            earlier.get("numerator"),
            earlier.get("denominator"),
            latest.get("numerator"),
            latest.get("denominator"),
        )
        if None in (x1, n1, x2, n2) or not n1 or not n2:
            return Change("not tested: a count is suppressed", None, "not tested")
        if kind == "proportion":
            pooled = (x1 + x2) / (n1 + n2)
            se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
            p = 1.0 if se == 0 else float(2 * norm.sf(abs(x2 / n2 - x1 / n1) / se))
            test = "two-proportion z-test"
        else:
            p = 1.0 if x1 + x2 == 0 else float(binomtest(int(x2), int(x1 + x2), n2 / (n1 + n2)).pvalue)
            test = "exact test of two Poisson rates"
        difference = x2 / n2 - x1 / n1
    else:
        values = [earlier.get(value), latest.get(value)]
        limits = [earlier.get(lower), earlier.get(upper), latest.get(lower), latest.get(upper)]
        if None in values or None in limits:
            return Change("not tested: a value is not published", None, "not tested")
        difference = values[1] - values[0]
        se = math.hypot(_se(limits[0], limits[1]), _se(limits[2], limits[3]))
        p = 1.0 if se == 0 else float(2 * norm.sf(abs(difference) / se))
        test = "z-test on the difference (standard errors from the 95% intervals)"
    direction = "similar" if p >= ALPHA else ("higher" if difference > 0 else "lower")
    return Change(test, p, direction)


def against(value: float | None, lower: float | None, upper: float | None, city: float | None) -> str:
    """Fingertips' comparison of an area with the city: its 95% interval above, around or below it."""
    if value is None or lower is None or upper is None or city is None:
        return "not compared"
    if lower > city:
        return "higher than Leeds"
    if upper < city:
        return "lower than Leeds"
    return "similar to Leeds"


def gap_interval(most: dict, least: dict, value: str, lower: str, upper: str) -> tuple[float, float] | None:
    """95% interval of least minus most deprived, from their published intervals (independent)."""
    limits = [most.get(lower), most.get(upper), least.get(lower), least.get(upper)]
    if None in limits or most.get(value) is None or least.get(value) is None:
        return None
    se = math.hypot(_se(limits[0], limits[1]), _se(limits[2], limits[3]))
    gap = least[value] - most[value]
    return gap - Z95 * se, gap + Z95 * se


@dataclass(frozen=True)
class Gradient:
    """The SII and RII of the published groups, and the fitted line's ends (most to least deprived)."""

    sii: float
    sii_lower: float
    sii_upper: float
    rii: float
    rii_lower: float
    rii_upper: float
    fitted_most: float  # the fitted value at relative rank 0 (most deprived)
    fitted_least: float  # ... and at 1 (least deprived)
    ranks: tuple[float, ...]  # each group's midpoint rank, as the fit places it


def gradient(
    values: list[float | None], weights: list[float | None], lowers: list, uppers: list
) -> Gradient | None:
    """phe_sii (ldm.stats.sii) over published groups ordered most to least deprived; None when any
    group's value, weight or interval is not published (a gap would otherwise be drawn as none)."""
    if (
        len(values) < stats.SII_MIN_QUANTILES
        or any(v is None for v in (*values, *weights, *lowers, *uppers))
        or any(w <= 0 for w in weights)
    ):  # type: ignore[operator]
        return None
    se = [_se(lo, u) for lo, u in zip(lowers, uppers, strict=True)]
    result = stats.sii(values, weights, se, repetitions=SII_REPETITIONS, seed=SII_SEED)  # type: ignore[arg-type]
    share = [w / sum(weights) for w in weights]  # type: ignore[misc]
    ranks = tuple(sum(share[:i]) + share[i] / 2 for i in range(len(share)))
    slope, rii = result["sii"], result["rii"]
    weighted_mean = sum(s * v for s, v in zip(share, values, strict=True))  # type: ignore[misc]
    intercept = slope / (rii - 1) if abs(rii - 1) > 1e-12 else weighted_mean  # no gradient: the mean
    return Gradient(
        slope,
        result["sii_lower"],
        result["sii_upper"],
        rii,
        result["rii_lower"],
        result["rii_upper"],
        intercept,
        intercept + slope,
        ranks,
    )
