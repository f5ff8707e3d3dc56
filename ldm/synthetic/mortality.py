"""Planted mortality: a hazard by single year of age, sex and IMD decile, calibrated to life expectancy.

Each sex and IMD decile has a Gompertz-Makeham hazard, mu(x) = A + B exp(c (x + 0.5)), held constant
within each year of age x (so a complete single-year life table is exact for it), plus an infant term
in the first year. A (background, mostly external causes), c (the Gompertz slope) and the infant term
are set below; B is solved so that life expectancy at birth equals the published figure for the sex and
decile. The life expectancies written to the ground truth are computed from these hazards with the same
life table, so a mart that estimates life expectancy from the generated deaths should find them.

Source of the calibration: Office for National Statistics, "Health state life expectancies by national
deprivation deciles, England: 2018 to 2020" (released 25 April 2022; IMD 2019 deciles of the LSOA of
usual residence). Life expectancy at birth in the most and least deprived deciles: males 73.5 and 83.2
years (gap 9.7), females 78.3 and 86.3 years (gap 7.9 as published, from unrounded figures). The
bulletin's main points give the gaps; the decile figures were reported from it (The Times, 25 April
2022). The figures sometimes quoted as 74.1/83.5 (males) and 78.7/86.4 (females) are the 2017 to 2019
release. The eight deciles between are interpolated linearly: the bulletin publishes them in its
dataset, which was not at hand, and ONS's own figures rise nearly linearly across the deciles.
"""

from __future__ import annotations

from functools import cache

import numpy as np

SEXES = ("F", "M")
DECILES = tuple(range(1, 11))
MAX_AGE = 110  # the life table's last row is the open interval 110+, at the hazard of age 110
AGES = np.arange(MAX_AGE + 1)
# (decile 1, decile 10) life expectancy at birth, ONS 2018 to 2020 (see the module docstring).
PUBLISHED_LE_AT_BIRTH = {"M": (73.5, 83.2), "F": (78.3, 86.3)}
GOMPERTZ_SLOPE = {"M": 0.095, "F": 0.105}  # per year of age: mortality roughly doubles every 7 years
# Background (Makeham) hazard, most to least deprived: accidents, violence, drugs and alcohol.
MAKEHAM = {"M": (0.0007, 0.0002), "F": (0.00030, 0.00010)}
# Extra hazard in the first year of life, most to least deprived (infant mortality 2-6 per 1,000).
INFANT = {"M": (0.0045, 0.0022), "F": (0.0038, 0.0018)}


def _by_decile(ends: tuple[float, float], decile: int) -> float:
    """A value for the decile, linear between its decile 1 and decile 10 values."""
    first, last = ends
    return first + (last - first) * (decile - 1) / 9


def target_life_expectancy(sex: str, decile: int) -> float:
    """The life expectancy at birth the hazard of a sex and decile is calibrated to."""
    return _by_decile(PUBLISHED_LE_AT_BIRTH[sex], decile)


def life_expectancy(hazard: np.ndarray) -> np.ndarray:
    """Life expectancy at each single year of age of a hazard constant within each year (the last
    year open-ended): the complete life table, exact for such a hazard."""
    survive = np.exp(-hazard[:-1])
    alive = np.concatenate([[1.0], np.cumprod(survive)])  # l_x, x = 0..MAX_AGE
    lived = np.append(alive[:-1] * (1 - survive) / hazard[:-1], alive[-1] / hazard[-1])  # L_x
    with np.errstate(invalid="ignore", divide="ignore"):  # nobody left at the oldest ages: NaN there
        return np.cumsum(lived[::-1])[::-1] / alive


def _hazard(sex: str, decile: int, scale: float) -> np.ndarray:
    slope = GOMPERTZ_SLOPE[sex]
    infant = np.where(AGES == 0, _by_decile(INFANT[sex], decile), 0.0)
    return _by_decile(MAKEHAM[sex], decile) + scale * np.exp(slope * (AGES + 0.5)) + infant


@cache
def hazard(sex: str, decile: int) -> np.ndarray:
    """The planted yearly hazard of death at each age 0..MAX_AGE for a sex and IMD decile (1 = most
    deprived), its Gompertz level solved (by bisection on its logarithm) to the target life expectancy."""
    target = target_life_expectancy(sex, decile)
    low, high = np.log(1e-9), np.log(1e-2)  # life expectancy falls as the level rises
    for _ in range(100):
        middle = (low + high) / 2
        if life_expectancy(_hazard(sex, decile, np.exp(middle)))[0] > target:
            low = middle
        else:
            high = middle
    return _hazard(sex, decile, np.exp((low + high) / 2))


@cache
def hazard_table() -> np.ndarray:
    """Hazards as one array indexed [sex (0 F, 1 M), decile - 1, age]."""
    return np.array([[hazard(sex, decile) for decile in DECILES] for sex in SEXES])


def planted_life_expectancy(start_ages: tuple[int, ...] = (0, 65)) -> list[dict]:
    """Rows (sex, imd_decile, start_age, life_expectancy) of the planted hazards, for the ground truth."""
    rows = []
    for sex in SEXES:
        for decile in DECILES:
            expectancy = life_expectancy(hazard(sex, decile))
            for age in start_ages:
                rows.append(
                    {"sex": sex, "imd_decile": decile, "start_age": age, "life_expectancy": expectancy[age]}
                )
    return rows


YEAR = 365.25  # days: ages here are whole years of 365.25 days since birth, as the population's are


def sample_deaths(
    rng: np.random.Generator,
    born: np.ndarray,
    start: np.ndarray,
    end: np.ndarray,
    sex: np.ndarray,
    decile: np.ndarray,
    multiplier: np.ndarray,
) -> np.ndarray:
    """Day of death (datetime64[D]) of each person at risk from `start` to `end` (exclusive), or NaT.

    Each person's yearly hazard is that of their sex ("F" or "M") and IMD decile (1-10) at their age,
    times their `multiplier`; it steps at each birthday. A unit exponential draw is spent along the
    exposure, so that the chance of dying in any stretch of it is exactly the planted hazard's, and a
    person who dies is at risk until the death and no longer.
    """
    n = len(born)
    day = np.timedelta64(1, "D")
    t0 = (start - born) / day  # days since birth
    t1 = (end - born) / day
    budget = rng.exponential(1.0, n)
    spent = np.zeros(n)
    died_at = np.full(n, np.nan)
    age = np.floor(np.maximum(t0, 0) / YEAR).astype(np.int64)
    segment_start = np.maximum(t0, 0.0)
    table = hazard_table()
    sex_index = (sex == "M").astype(np.int64)
    decile_index = decile.astype(np.int64) - 1
    while True:
        live = (segment_start < t1) & np.isnan(died_at)
        if not live.any():
            break
        segment_end = np.minimum((age + 1) * YEAR, t1)
        rate = table[sex_index, decile_index, np.minimum(age, MAX_AGE)] * multiplier / YEAR  # per day
        length = np.where(live, segment_end - segment_start, 0.0)
        enough = live & (spent + rate * length >= budget)
        died_at[enough] = segment_start[enough] + (budget - spent)[enough] / rate[enough]
        spent += rate * length
        segment_start = np.where(live, segment_end, segment_start)
        age += 1
    dead = ~np.isnan(died_at)
    days = np.floor(np.where(dead, died_at, 0)).astype(np.int64)
    return np.where(dead, born + days * day, np.datetime64("NaT", "D"))
