"""mart_life_expectancy on generated samples through the real pipeline.

(a) On the 20,000-person sample of tests/test_indicators.py (the same store, built once), the city's
life expectancy is ldm.stats.life_expectancy of deaths and populations counted here anew from the
store's person-level tables (the residents' deaths in the financial year by sex and life-table band;
the registered population at its end).

(b) On a 100,000-person sample, the planted life expectancy (the ground truth's, by sex and IMD
decile) is recovered by IMD quintile within the mart's intervals, and the slope index of inequality
has the planted sign and size.
"""

from __future__ import annotations

import csv
import datetime
import math
import time
import warnings
from pathlib import Path

import pytest
from conftest import query
from independent_counts import PROJECT_VARS, date, pipeline_seconds, pipeline_store, registered_population
from scipy.stats import binom

from ldm import stats
from ldm.synthetic.config import SampleConfig
from ldm.synthetic.generate import generate

REPORTING_END = datetime.date.fromisoformat(PROJECT_VARS["reporting_period_end"])
FINANCIAL_YEAR = (
    REPORTING_END.replace(year=REPORTING_END.year - 1) + datetime.timedelta(days=1),
    REPORTING_END,
)
LABEL = f"{FINANCIAL_YEAR[0].year}/{str(FINANCIAL_YEAR[1].year)[2:]}"
CONFIDENCE = PROJECT_VARS["confidence_level"]


def band(age: str) -> str:
    """The abridged life-table band (0, 1-4, 5-9, ..., 85-89, 90+) of an age, by its first age."""
    return f"case when {age} = 0 then 0 when {age} < 5 then 1 else least({age} - {age} % 5, 90) end"


def mart_rows(store: Path, level: str, sex: str) -> dict[tuple[str, int], tuple]:
    rows = query(
        store,
        """select area_code, start_age, deaths, person_years, life_expectancy, life_expectancy_lower,
                  life_expectancy_upper, not_computed, deprivation_gap, sii, sii_lower, sii_upper
           from marts.mart_life_expectancy
           where period_type = 'financial_year' and period_label = ? and geography_level = ? and sex = ?""",
        LABEL,
        level,
        sex,
    )
    return {(area, start_age): values for area, start_age, *values in rows}


# --- (a) the city's life table, counted anew -------------------------------------------------------


@pytest.fixture(scope="module")
def store(medium_sample: Path, tmp_path_factory) -> Path:
    built = pipeline_store(medium_sample, tmp_path_factory)
    print(f"ldm run on the 20,000-person sample: {pipeline_seconds(medium_sample, tmp_path_factory):.0f} s")
    return built


@pytest.mark.slow  # builds (or shares with test_indicators.py) the 20,000-person store: about a minute
@pytest.mark.parametrize("sex", ["F", "M"])
def test_city_life_expectancy_is_ldm_stats_of_independently_counted_deaths_and_population(store, sex):
    start, end = FINANCIAL_YEAR
    deaths = dict(
        query(
            store,
            f"""select {band("age_at_event")}, count(*) from main.deaths
                where lsoa21_code is not null and sex = ? and age_at_event >= 0
                  and date_of_death between {date(start)} and {date(end)}
                group by 1""",
            sex,
        )
    )

    # Person-years: the mid-period population, the mean of the lists the day before the period and at
    # its end (each person in their age band at that date).
    def listed(at: datetime.date) -> dict[int, int]:
        return dict(
            query(
                store,
                f"select {band('age')}, count(*) from ({registered_population(at)}) where sex = ? group by 1",
                sex,
            )
        )

    at_start, at_end = listed(start - datetime.timedelta(days=1)), listed(end)
    population = {b: (at_start.get(b, 0) + at_end.get(b, 0)) / 2 for b in set(at_start) | set(at_end)}
    bands = list(stats.LE_AGE_STARTS)
    assert set(population) == set(bands) and sum(deaths.values()) > 20
    with warnings.catch_warnings():  # values at old start ages with few deaths are suppressed, as in the mart
        warnings.simplefilter("ignore")
        expected = stats.life_expectancy(
            [deaths.get(b, 0) for b in bands], [population[b] for b in bands], bands, confidence=CONFIDENCE
        )
    published = mart_rows(store, "city", sex)
    assert {start_age for _, start_age in published} == {0, 65}
    for (_, start_age), (n_deaths, person_years, value, lower, upper, reason, *_) in published.items():
        assert n_deaths == sum(d for b, d in deaths.items() if b >= start_age)
        assert person_years == sum(p for b, p in population.items() if b >= start_age)
        assert reason is None
        want = expected[start_age]
        assert (value, lower, upper) == pytest.approx((want.value, want.lower, want.upper), rel=0, abs=1e-9)


# --- (b) the planted life expectancy, recovered ---------------------------------------------------

# The smallest sample whose IMD groups all pass phe_life_expectancy's minimum of more than 5,000
# person-years per sex over 12 months. Leeds's people are far from evenly spread over the national
# deciles (a quarter live in decile 1, 2% in decile 4), so deciles would need about 260,000 people
# (decile 4 holds ~2,000 person-years per sex at 100,000); generation and `ldm run` take ~130 s at
# 100,000 on two cores already. Quintiles are used: the smallest (quintile 2) holds ~6,100
# person-years per sex at 100,000 people, ~20% above the minimum.
LARGE = SampleConfig(persons=100_000, seed=3)
LEFT_OUT = ("gp_events.txt",)
QUINTILES = range(1, 6)
SEXES = ("F", "M")
# At least MIN_COVERED of the 10 groups (5 quintiles x 2 sexes) must have the planted value inside the
# mart's 95% interval. The groups' deaths and populations are disjoint, so if each interval held its
# true value with probability 0.95, the number holding it would be Binomial(10, 0.95): fewer than 8
# with probability 1.2% (binom.cdf(7, 10, 0.95)). Asking for 9 of 10 (90%) would fail a correct mart
# on 8.6% of samples, and 10 of 10 on 40%.
MIN_COVERED = 8


def planted(sample: Path, store: Path) -> dict[tuple[str, int], float]:
    """The ground truth's life expectancy at birth by sex and IMD quintile: the mean of its two deciles'
    values, weighted by their person-years in the mart (the people of the city's quintile).

    An approximation: a quintile's true period life expectancy is that of its two deciles' pooled
    death rates, which weights each decile's rates by its population at each age rather than its
    life expectancy by its population in all. The two deciles' planted values differ by ~1 year, so
    the error is a small fraction of a year, against intervals ~5-9 years wide.
    """
    with (sample / "ground_truth" / "life_expectancy.csv").open(newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["start_age"] == "0"]
    by_decile = {(row["sex"], int(row["imd_decile"])): float(row["life_expectancy"]) for row in rows}
    truth = {}
    for sex in SEXES:
        person_years = {int(area): values[1] for (area, age), values in mart_rows(store, "imd_decile", sex).items()
                        if age == 0 and area != "unknown"}  # fmt: skip
        for q in QUINTILES:
            deciles = (2 * q - 1, 2 * q)
            truth[(sex, q)] = sum(by_decile[(sex, d)] * person_years[d] for d in deciles) / sum(
                person_years[d] for d in deciles
            )
    return truth


@pytest.fixture(scope="module")
def large(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("le_sample_100k")
    started = time.perf_counter()
    generate(LARGE, folder)
    generated = time.perf_counter() - started
    # Life expectancy needs the lists, the deaths and where people lived, not the GP events (two
    # thirds of the sample's rows): they are left out to keep the test short.
    store = pipeline_store(folder, tmp_path_factory, LEFT_OUT)
    seconds = pipeline_seconds(folder, tmp_path_factory, LEFT_OUT)
    print(f"{LARGE.persons:,} persons: generate {generated:.0f} s, ldm run {seconds:.0f} s")
    return folder, store


@pytest.mark.slow
def test_planted_life_expectancy_by_imd_quintile_lies_in_the_marts_intervals(large):
    """For each sex and IMD quintile (financial year 2024/25, start age 0), the planted value is inside
    the mart's 95% interval for at least MIN_COVERED of the 10 groups (see its comment)."""
    assert binom.cdf(MIN_COVERED - 1, 2 * len(QUINTILES), 0.95) < 0.015
    sample, store = large
    truth = planted(sample, store)
    outside = []
    for sex in SEXES:
        rows = mart_rows(store, "imd_quintile", sex)
        for q in QUINTILES:
            _, person_years, value, lower, upper, reason, *_ = rows[(str(q), 0)]
            group = (sex, q, person_years, reason)
            assert person_years > stats.LE_MIN_TOTAL_POPULATION and reason is None, group
            assert lower <= value <= upper
            if not lower <= truth[(sex, q)] <= upper:
                outside.append((sex, q, truth[(sex, q)], (lower, value, upper)))
    assert 2 * len(QUINTILES) - len(outside) >= MIN_COVERED, outside


@pytest.mark.slow
@pytest.mark.parametrize("sex", SEXES)
def test_slope_index_of_inequality_has_the_planted_sign_and_size(large, sex):
    """The mart's SII of life expectancy at birth across IMD quintiles is positive (longer lives in
    less deprived areas) and its interval holds the planted SII.

    The planted SII is phe_sii's slope fitted to the planted quintile values at the mart's own
    population ranks. It is not the planted gap between deciles 10 and 1 (F 8.0, M 9.7 years): the SII
    is the fitted difference between the ends of the city's population rank (0 to 1), and the planted
    gradient is linear in national decile, which the city's population does not fill evenly (a third
    of it in quintile 1), so the planted SII is larger (about F 9.5, M 11.5 years on this sample).
    """
    sample, store = large
    truth = planted(sample, store)
    rows = mart_rows(store, "imd_quintile", sex)
    at_birth = [rows[(str(q), 0)] for q in QUINTILES]
    [(sii, lower, upper)] = {tuple(row[-3:]) for row in at_birth}  # the scale's SII, on each of its rows
    target = stats.sii(
        [truth[(sex, q)] for q in QUINTILES],
        [row[1] for row in at_birth],  # person-years: the population shares phe_sii ranks
        [0.0] * len(QUINTILES),
        repetitions=stats.SII_MIN_REPETITIONS,
        seed=0,
    )["sii"]
    assert sii > 0 and lower <= target <= upper, (sex, target, (lower, sii, upper))
    assert math.isclose(
        rows[("5", 0)][-4], rows[("5", 0)][2] - rows[("1", 0)][2], abs_tol=1e-9
    )  # deprivation_gap: least minus most deprived quintile
