"""Public-health statistics shared by the whole project.

Every formula follows the R package PHEindicatormethods (the methods behind
Fingertips), so that our rates and intervals can be compared with published
indicators:

* ``wilson_ci``: Wilson score interval for a proportion (``phe_proportion``).
* ``byar_ci``: Byar's approximation to the Poisson interval for a count
  (``byars_lower`` / ``byars_upper``).
* ``dsr``: directly standardised rate with Dobson's adjustment of Byar's limits
  on the total count (``phe_dsr`` / ``calculate_dsr``).
* ``sii``: slope and relative index of inequality, with confidence limits by
  simulation (``phe_sii``).
* ``life_expectancy``: Chiang II abridged life table with Silcocks' confidence
  limits, at every start age (``phe_life_expectancy``).

The scalar helpers ``wilson_lower``/``wilson_upper``/``byar_lower``/``byar_upper``
return plain floats (or ``None``) so they can be registered as DuckDB scalar UDFs
and the dbt marts compute the same numbers with the same code.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# scipy.special's ndtri is the inverse normal that scipy.stats.norm.ppf calls (the same bits); it
# imports in well under half the time of scipy.stats, which the marts' UDFs would import on first use.
from scipy.special import ndtri

__all__ = [
    "LifeExpectancy",
    "byar_ci",
    "byar_lower",
    "byar_upper",
    "dsr",
    "life_expectancy",
    "sii",
    "wilson_ci",
    "wilson_lower",
    "wilson_upper",
]

# Fingertips does not publish a DSR when the total count is this small.
DSR_MIN_TOTAL_COUNT = 10
# phe_sii accepts between 5 and 100 quantiles and at least 1,000 repetitions.
SII_MIN_QUANTILES = 5
SII_MAX_QUANTILES = 100
SII_MIN_REPETITIONS = 1000
# phe_life_expectancy: the start ages of its 20 bands (0, 1-4, 5-9, ..., 85-89, 90+), the total
# population at or below which it publishes nothing, the lowest confidence it accepts, and the width
# of the 95% interval above which it suppresses the value (but still shows the limits).
LE_AGE_STARTS = (0, 1, *range(5, 95, 5))
LE_MIN_TOTAL_POPULATION = 5000
LE_MIN_CONFIDENCE = 0.9
LE_MAX_CI_WIDTH = 20.0


@functools.cache
def _z(confidence: float) -> float:
    """Two-sided normal critical value, e.g. 1.959964 for 95% (remembered: called once per row)."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be between 0 and 1 (exclusive), got {confidence!r}")
    return float(ndtri(confidence + (1.0 - confidence) / 2.0))


def _none_if_nan(value: float) -> float | None:
    """SQL wants NULL, not NaN, where a limit is undefined."""
    return None if math.isnan(value) else value


# --------------------------------------------------------------------------- Wilson


def wilson_ci(x: float, n: float, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for the proportion x/n, as proportions in 0..1.

    Used for crude prevalences: unlike the normal approximation it stays inside
    0..1 and behaves for x = 0 or x = n (Wilson 1927; Newcombe & Altman 2000).
    """
    if x < 0:
        raise ValueError(f"numerator must be >= 0, got {x!r}")
    if n <= 0:
        raise ValueError(f"denominator must be > 0, got {n!r}")
    if x > n:
        raise ValueError(f"numerator {x!r} exceeds denominator {n!r}")
    z = _z(confidence)
    centre = 2.0 * x + z * z
    half_width = z * math.sqrt(z * z + 4.0 * x * (1.0 - x / n))
    denominator = 2.0 * (n + z * z)
    return (centre - half_width) / denominator, (centre + half_width) / denominator


def wilson_lower(x: float | None, n: float | None, confidence: float = 0.95) -> float | None:
    """Lower Wilson limit, or None when x or n is None (scalar, for SQL UDFs)."""
    if x is None or n is None:
        return None
    return float(wilson_ci(x, n, confidence)[0])


def wilson_upper(x: float | None, n: float | None, confidence: float = 0.95) -> float | None:
    """Upper Wilson limit, or None when x or n is None (scalar, for SQL UDFs)."""
    if x is None or n is None:
        return None
    return float(wilson_ci(x, n, confidence)[1])


# --------------------------------------------------------------------------- Byar


def byar_ci(x: float, confidence: float = 0.95) -> tuple[float, float]:
    """Byar's approximation to the Poisson confidence interval for a count x.

    Used for crude rates (divide both limits by the denominator) and, through
    ``dsr``, for standardised rates (Breslow & Day 1987):

        lower = x (1 - 1/(9x) - z/(3 sqrt x))^3
        upper = (x+1) (1 - 1/(9(x+1)) + z/(3 sqrt(x+1)))^3

    For x = 0 the lower limit is 0 (the formula is undefined there; the package's
    exact Poisson limit is 0). Where the formula goes negative (tiny counts at very
    high confidence) the lower limit is NaN, as the package returns NA.
    """
    if x < 0:
        raise ValueError(f"count must be >= 0, got {x!r}")
    z = _z(confidence)
    if x == 0:
        lower = 0.0
    else:
        lower = x * (1.0 - 1.0 / (9.0 * x) - z / (3.0 * math.sqrt(x))) ** 3
        if lower < 0:
            lower = math.nan
    x1 = x + 1.0
    upper = x1 * (1.0 - 1.0 / (9.0 * x1) + z / (3.0 * math.sqrt(x1))) ** 3
    return lower, upper


def byar_lower(x: float | None, confidence: float = 0.95) -> float | None:
    """Lower Byar limit for a count, or None when x is None or the limit is undefined."""
    if x is None:
        return None
    return _none_if_nan(float(byar_ci(x, confidence)[0]))


def byar_upper(x: float | None, confidence: float = 0.95) -> float | None:
    """Upper Byar limit for a count, or None when x is None (scalar, for SQL UDFs)."""
    if x is None:
        return None
    return float(byar_ci(x, confidence)[1])


# --------------------------------------------------------------------------- DSR


def dsr(
    counts: Sequence[float | None],
    populations: Sequence[float],
    standard_populations: Sequence[float],
    confidence: float = 0.95,
    multiplier: float = 100000,
) -> tuple[float, float, float]:
    """Directly standardised rate (value, lower, upper) per ``multiplier``.

    The three sequences are aligned by standardisation category (e.g. the 19
    ESP2013 age bands). Missing counts are taken as 0, as the package does. The
    interval is Dobson's method: Byar's limits on the total count O, rescaled by
    sqrt(var(DSR) / O) (Dobson et al. 1991). All three are NaN when O < 10,
    because Fingertips does not publish DSRs from so few events.
    """
    x = np.nan_to_num(np.asarray(counts, dtype=float), nan=0.0)
    n = np.asarray(populations, dtype=float)
    w = np.asarray(standard_populations, dtype=float)
    if not (x.ndim == n.ndim == w.ndim == 1) or not (x.size == n.size == w.size) or x.size == 0:
        raise ValueError("counts, populations and standard_populations must be equal-length 1-D")
    if np.any(x < 0):
        raise ValueError("counts must all be >= 0")
    if not np.all(n > 0):
        raise ValueError("populations must all be > 0")
    if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise ValueError("standard populations must be >= 0 with a positive total")
    _z(confidence)  # validate before the early return

    total = float(x.sum())
    if total < DSR_MIN_TOTAL_COUNT:
        return math.nan, math.nan, math.nan

    w_total = float(w.sum())
    value = float(np.sum(x * w / n) / w_total)
    variance = float(np.sum(x * (w / n) ** 2) / w_total**2)
    scale = math.sqrt(variance / total)
    byar_low, byar_high = byar_ci(total, confidence)
    lower = value + scale * (byar_low - total)
    upper = value + scale * (byar_high - total)
    return value * multiplier, lower * multiplier, upper * multiplier


# --------------------------------------------------------------------------- SII


def sii(
    values: Sequence[float],
    populations: Sequence[float],
    standard_errors: Sequence[float],
    confidence: float = 0.95,
    repetitions: int = 100000,
    seed: int | None = None,
) -> dict[str, float]:
    """Slope (SII) and relative (RII) index of inequality, with simulated limits.

    ``values`` are ordered from quantile 1 (most deprived) upwards to the least
    deprived, as phe_sii expects. Each quantile gets the midpoint of its share of
    the cumulative population as its relative rank x in 0..1, and the values are
    regressed on x by least squares weighted by population share a, fitted as
    phe_sii does: ``y*sqrt(a) ~ sqrt(a) + x*sqrt(a)`` without a further intercept.

    Direction (phe_sii's convention, with no multiplier applied):

    * ``sii`` = fitted(x=1, least deprived) - fitted(x=0, most deprived).
      Positive: the indicator is higher in less deprived quantiles (e.g. life
      expectancy). Negative: it is higher in more deprived quantiles (e.g.
      mortality, diabetes prevalence). Negate it to report a "high is bad"
      indicator as a positive gap.
    * ``rii`` = fitted(x=1) / fitted(x=0) = (intercept + sii) / intercept, as
      phe_sii computes it: below 1 when the indicator is higher in deprived areas.

    Confidence limits follow phe_sii's simulation: ``repetitions`` draws of every
    value from Normal(value, se), the regression refitted on each draw, and the
    limits read from the sorted results at positions round(R * alpha/2) and
    round(R * (1 - alpha/2)). ``seed`` seeds a numpy Generator for reproducibility.
    """
    y = np.asarray(values, dtype=float)
    pop = np.asarray(populations, dtype=float)
    se = np.asarray(standard_errors, dtype=float)
    if not (y.ndim == pop.ndim == se.ndim == 1) or not (y.size == pop.size == se.size):
        raise ValueError("values, populations and standard_errors must be equal-length 1-D")
    if not SII_MIN_QUANTILES <= y.size <= SII_MAX_QUANTILES:
        raise ValueError(
            f"SII needs between {SII_MIN_QUANTILES} and {SII_MAX_QUANTILES} quantiles, got {y.size}"
        )
    if not np.all(np.isfinite(y)):
        raise ValueError("values must all be finite")
    if not np.all(np.isfinite(pop)) or np.any(pop <= 0):
        raise ValueError("populations must all be > 0")
    if not np.all(np.isfinite(se)) or np.any(se < 0):
        raise ValueError("standard errors must all be >= 0")
    if repetitions < SII_MIN_REPETITIONS:
        raise ValueError(f"repetitions must be at least {SII_MIN_REPETITIONS}")
    _z(confidence)

    share = pop / pop.sum()
    rank = np.cumsum(share) - share / 2.0  # midpoint of each quantile's population band
    root = np.sqrt(share)
    design = np.column_stack([root, rank * root])
    # Least-squares projection: coefficients = solve(X'X) X' (sqrt(a) * y).
    projection = np.linalg.solve(design.T @ design, design.T)

    intercept, slope = projection @ (root * y)

    # Each draw of the values is y + se * z for standard normals z (numpy's normal(loc, scale) is
    # that), so its refitted (intercept, slope) is the fit of y plus z @ (se * sqrt(a) * projection'):
    # one (repetitions x quantiles) by (quantiles x 2) product, without the draws themselves (a fifth
    # of the time). With a seed, the z of one (seed, repetitions, quantiles) are drawn once and reused
    # (a build calls this hundreds of times with one seed).
    if seed is None:
        z = np.random.default_rng().standard_normal(size=(repetitions, y.size))
    else:
        z = _standard_normals(seed, repetitions, y.size)
    sim = z @ ((se * root)[:, None] * projection.T) + np.array([intercept, slope])  # a row per repetition

    upper_tail = confidence + (1.0 - confidence) / 2.0
    # 1-based positions as in the package, kept inside 1..repetitions.
    lower_pos = min(max(round(repetitions * (1.0 - upper_tail)), 1), repetitions)
    upper_pos = min(max(round(repetitions * upper_tail), 1), repetitions)
    positions = [lower_pos - 1, upper_pos - 1]
    # The two order statistics, as a full sort would give them (np.partition places them exactly).
    sim_sii = np.partition(sim[:, 1], positions)
    sim_rii = np.partition((sim[:, 0] + sim[:, 1]) / sim[:, 0], positions)

    return {
        "sii": float(slope),
        "rii": float((intercept + slope) / intercept),
        "sii_lower": float(sim_sii[lower_pos - 1]),
        "sii_upper": float(sim_sii[upper_pos - 1]),
        "rii_lower": float(sim_rii[lower_pos - 1]),
        "rii_upper": float(sim_rii[upper_pos - 1]),
    }


@functools.lru_cache(maxsize=8)
def _standard_normals(seed: int, repetitions: int, quantiles: int) -> np.ndarray:
    """The (repetitions, quantiles) standard normal draws of a Generator seeded with `seed`, read-only."""
    z = np.random.default_rng(seed).standard_normal(size=(repetitions, quantiles))
    z.flags.writeable = False
    return z


# --------------------------------------------------------------------------- life expectancy


@dataclass(frozen=True)
class LifeExpectancy:
    """Life expectancy (in years) at ``start_age`` with its confidence limits.

    ``value`` is NaN where phe_life_expectancy returns NA for it: the 95% interval
    is wider than 20 years, or the whole table is suppressed (total population
    <= 5,000, when the limits are NaN too). The limits are left as computed, so
    they may fall below 0 or be infinite, as the package's are.
    """

    start_age: int
    value: float
    lower: float
    upper: float


def life_expectancy(
    deaths: Sequence[float],
    populations: Sequence[float],
    age_starts: Sequence[int],
    confidence: float = 0.95,
) -> dict[int, LifeExpectancy]:
    """Life expectancy at every start age of one area's abridged life table.

    The method of ``phe_life_expectancy`` (PHEindicatormethods), of PHE's Life
    Expectancy Calculator and of ONS local life expectancy (Chiang 1984; Silcocks,
    Jenner & Reza 2001), so that our figures can be compared with Fingertips';
    checked against the package's published test expectations. The three sequences
    are aligned by age band; the bands are 0, 1-4, 5-9, ..., 85-89 and 90+,
    named by ``age_starts`` (0, 1, 5, 10, ..., 85, 90) in any order, each once.

    Returns ``{start_age: LifeExpectancy}`` for all 20 start ages, in ascending
    order. Life table (Chiang II): mortality M = deaths/population; fraction of
    the interval lived by those who die a = 0.1 at age 0 and 0.5 elsewhere;
    q = nM / (1 + nM(1 - a)), or 1 when deaths > population/(n a); 100,000
    survivors at birth; the 90+ band lives l/M person-years. The variance of
    q is q^2(1 - q)/deaths (0 where nobody dies in the band) and, for 90+,
    Silcocks et al's 4/(deaths M^2), the variance of its mean survival, which
    Chiang would take as zero (Silcocks, Jenner & Reza 2001).

    What the package does with awkward input, and so does this:

    * total population <= 5,000 (Toson & Baker's minimum for robust life
      expectancy): a warning, and value and limits NaN at every age;
    * 95% interval wider than 20 years at an age: a warning, and value NaN
      there, the limits still given. Always judged at 95%, whatever
      ``confidence`` is;
    * zero deaths in a band below 90 is fine. Zero deaths in 90+ makes its
      mortality 0 and every expectancy infinite; the package's documentation
      says at least one death is needed there but its code does not refuse it:
      it returns value NA with NaN or Inf limits, and so does this (value NaN,
      limits NaN or inf, with the wide-interval warning). Ages beyond a band
      where q = 1 have expectancy 0 and NaN limits, as in the package.

    Where the package warns and returns NAs for malformed input, this raises
    ValueError, since a caller passing one area wants to be told: negative
    deaths, a population <= 0, deaths greater than population, and anything
    other than exactly the 20 bands. Also refused: unequal lengths, missing
    (None/NaN) or infinite counts, which the package would carry through as NA,
    and confidence outside 0.9 <= confidence < 1. The package also accepts 1
    (infinite limits) and percentages 90-100; here confidence is a proportion,
    as for the other functions in this module. One confidence level per call.
    """
    n_bands = len(LE_AGE_STARTS)
    if not (len(deaths) == len(populations) == len(age_starts)):
        raise ValueError(
            "deaths, populations and age_starts must have the same length, got "
            f"{len(deaths)}, {len(populations)} and {len(age_starts)}"
        )
    if len(age_starts) != n_bands:
        raise ValueError(
            f"life expectancy needs exactly {n_bands} age bands starting at "
            f"{', '.join(map(str, LE_AGE_STARTS))} (the last is 90+), got {len(age_starts)}"
        )
    ages = list(age_starts)
    missing = [a for a in LE_AGE_STARTS if a not in ages]
    unexpected = [a for a in ages if a not in LE_AGE_STARTS]
    repeated = sorted({a for a in ages if a in LE_AGE_STARTS and ages.count(a) > 1})
    if missing or unexpected or repeated:
        raise ValueError(
            f"age_starts must be {', '.join(map(str, LE_AGE_STARTS))}, each once; "
            f"missing {missing}, unexpected {unexpected}, repeated {repeated}"
        )
    if not LE_MIN_CONFIDENCE <= confidence < 1.0:
        raise ValueError(
            f"confidence must be a proportion from {LE_MIN_CONFIDENCE} up to (not including) 1, "
            f"e.g. 0.95; got {confidence!r}"
        )
    z = _z(confidence)

    try:
        d = np.asarray(deaths, dtype=float)
        pop = np.asarray(populations, dtype=float)
    except (TypeError, ValueError) as error:
        raise ValueError(f"deaths and populations must be numbers: {error}") from None
    if not (np.all(np.isfinite(d)) and np.all(np.isfinite(pop))):
        raise ValueError("deaths and populations must all be finite numbers (none missing)")
    if np.any(d < 0):
        raise ValueError("deaths must all be >= 0")
    if np.any(pop <= 0):
        raise ValueError("populations must all be > 0")
    if np.any(d > pop):
        raise ValueError("deaths must not exceed the population in any age band")

    order = np.argsort([float(a) for a in ages], kind="stable")
    d, pop = d[order], pop[order]
    start = np.asarray(LE_AGE_STARTS, dtype=float)

    if pop.sum() <= LE_MIN_TOTAL_POPULATION:
        warnings.warn(
            f"total population {pop.sum():g} is not more than {LE_MIN_TOTAL_POPULATION:,}; "
            "life expectancy suppressed to NaN",
            stacklevel=2,
        )
        return {a: LifeExpectancy(a, math.nan, math.nan, math.nan) for a in LE_AGE_STARTS}

    # IEEE arithmetic, as in R: zero deaths at 90+ must give inf/NaN, not an exception.
    # Each line is the package's column of the same meaning, in the same order of operations.
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        m = d / pop
        width = np.append(np.diff(start), 2.0 / m[-1])  # 90+ width is unused but for q
        a = np.where(start == 0, 0.1, 0.5)
        q = np.where(d <= pop / width / a, m * width / (1.0 + m * width * (1.0 - a)), 1.0)
        p = 1.0 - q
        alive = np.cumprod(np.append(1e5, np.ones(n_bands - 1)) * np.append(1.0, p[:-1]))
        died = alive - np.append(alive[1:], 0.0)
        lived = np.append(width[:-1] * (alive[1:] + a[:-1] * died[:-1]), alive[-1] / m[-1])
        remaining = np.cumsum(lived[::-1])[::-1]
        expectancy = np.where(alive == 0, 0.0, remaining / alive)
        var_q = np.where(died == 0, 0.0, q**2 * (1.0 - q) / d)
        var_q[-1] = 4.0 / (d[-1] * m[-1] ** 2)
        weighted = np.append(
            var_q[:-1] * alive[:-1] ** 2 * ((1.0 - a[:-1]) * width[:-1] + expectancy[1:]) ** 2,
            (alive[-1] / 2.0) ** 2 * var_q[-1],
        )
        se = np.sqrt(np.cumsum(weighted[::-1])[::-1] / alive**2)
        lower = expectancy - z * se
        upper = expectancy + z * se
        too_wide = _z(0.95) * se > LE_MAX_CI_WIDTH / 2.0

    value = np.where(np.isinf(expectancy) | too_wide, math.nan, expectancy)
    if too_wide.any():
        warnings.warn(
            f"life expectancy at some ages has a 95% confidence interval wider than "
            f"{LE_MAX_CI_WIDTH:g} years; those values are suppressed to NaN",
            stacklevel=2,
        )
    return {
        age: LifeExpectancy(age, float(value[i]), float(lower[i]), float(upper[i]))
        for i, age in enumerate(LE_AGE_STARTS)
    }
