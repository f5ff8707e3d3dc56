"""The synthetic people: where they live, their practice, identifiers, conditions and life events.

Everything is drawn for all people at once with numpy; nothing loops over people.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from ldm.synthetic import mortality, nhs_numbers, reference, vocabulary
from ldm.synthetic.config import SampleConfig

DAY = np.timedelta64(1, "D")

# Relative prevalence by age for each condition (scaled per IMD decile to the QOF table) and
# the youngest age at which it is planted.
AGE_SHAPE = {
    "DM": (lambda a: 0.03 + 1 / (1 + np.exp(-(a - 55) / 10)), 5),
    "HYP": (lambda a: 1 / (1 + np.exp(-(a - 60) / 9)), 18),
    "AST": (lambda a: np.where(a < 16, 1.2, 1.0), 3),
    "COPD": (lambda a: 1 / (1 + np.exp(-(a - 66) / 8)), 35),
    "CHD": (lambda a: 1 / (1 + np.exp(-(a - 70) / 8)), 30),
    "AF": (lambda a: np.exp(np.minimum(a - 75, 20) * 0.09), 30),
    "HF": (lambda a: np.exp(np.minimum(a - 78, 20) * 0.09), 30),
    "CKD": (lambda a: 1 / (1 + np.exp(-(a - 72) / 8)), 18),
    "DEM": (lambda a: np.exp(np.minimum(a - 85, 15) * 0.13), 50),
    "DEP": (lambda a: np.where(a < 65, 1.0, 0.75), 16),
}
# How much each planted condition raises a person's hazard of death relative to others of their age,
# sex and IMD decile (the cell's mean stays the planted hazard: see _mortality_multiplier).
CONDITION_MORTALITY = 0.2
# The population each QOF register is a share of (list size of these ages).
QOF_LIST_MIN_AGE = {"DM": 17, "CKD": 18, "DEP": 18}
RESOLVED_SHARE = {"DM": 0.01, "AST": 0.05}


@dataclass
class People:
    """One row per synthetic person (Leeds residents first, then out-of-area hospital patients)."""

    person_key: np.ndarray
    nhs_number: np.ndarray  # int64, valid, 999 test range
    forename: np.ndarray
    surname: np.ndarray
    sex: np.ndarray  # "M" / "F"
    date_of_birth: np.ndarray  # datetime64[D]
    age: np.ndarray  # whole years at the extract date
    area: np.ndarray  # index into Geography arrays; -1 out of area
    postcode: np.ndarray
    previous_postcode: np.ndarray  # "" unless the person moved during the period
    moved_on: np.ndarray  # datetime64[D], NaT unless moved
    imd_decile: np.ndarray  # 0 when out of area
    practice: np.ndarray  # current practice code, "" when out of area
    previous_practice: np.ndarray
    practice_changed_on: np.ndarray
    registered_on: np.ndarray
    deregistered_on: np.ndarray  # NaT unless left the area or died
    died_on: np.ndarray  # NaT unless died in the activity window (Leeds residents only)
    mortality_multiplier: np.ndarray  # the person's hazard / the planted hazard of their cell (mean 1)
    ethnic_category: np.ndarray
    out_of_area: np.ndarray  # bool
    opted_out: np.ndarray  # bool
    conditions: dict[str, np.ndarray]  # condition -> diagnosis date (NaT when absent)
    resolved: dict[str, np.ndarray]  # condition -> resolved date (NaT when not resolved)
    frailty: np.ndarray  # shared multiplier of condition risk and of health care use

    def __len__(self) -> int:
        return len(self.person_key)

    @functools.cached_property
    def condition_count(self) -> np.ndarray:
        """Conditions per person (read once per feed per slice; the conditions never change)."""
        return _condition_count(self.conditions)


def _condition_count(conditions: dict[str, np.ndarray]) -> np.ndarray:
    return sum((~np.isnat(d)).astype(int) for d in conditions.values())


def pick_weighted(rng: np.random.Generator, weights: np.ndarray, size: int) -> np.ndarray:
    cumulative = np.cumsum(weights)
    return np.searchsorted(cumulative, rng.random(size) * cumulative[-1], side="right")


def _postcode_in_area(rng: np.random.Generator, area: np.ndarray) -> np.ndarray:
    geo = reference.geography()
    start, end = geo.area_start[area], geo.area_end[area]
    return start + (rng.random(len(area)) * (end - start)).astype(np.int64)


def _out_of_area_postcodes(rng: np.random.Generator, count: int) -> np.ndarray:
    """Plausible postcodes from neighbouring towns that are not Leeds postcodes."""
    districts = np.array(["BD3", "BD7", "BD18", "WF1", "WF2", "WF10", "HG1", "HG2", "YO24", "HD1"])
    letters = np.array(list("ABDEFGHJLNPQRSTUWXYZ"))
    codes = np.char.add(
        np.char.add(districts[rng.integers(0, len(districts), count)], " "),
        np.char.add(
            rng.integers(1, 10, count).astype(str),
            np.char.add(letters[rng.integers(0, 20, count)], letters[rng.integers(0, 20, count)]),
        ),
    )
    return np.where(np.isin(codes, reference.geography().postcodes), "YO1 7HH", codes)


def _practices_near_home(rng: np.random.Generator, wards: np.ndarray) -> np.ndarray:
    """Mostly a practice in the home ward (by list size), otherwise any Leeds practice."""
    practices = reference.practices()
    choice = practices.code[pick_weighted(rng, practices.list_size, len(wards))]
    near = rng.random(len(wards)) < 0.8
    for ward in np.unique(wards):
        local = practices.ward == ward
        here = near & (wards == ward)
        if local.any() and here.any():
            picked = pick_weighted(rng, practices.list_size[local], int(here.sum()))
            choice[here] = practices.code[local][picked]
    return choice


def _dates_between(rng: np.random.Generator, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    span = np.nan_to_num(np.maximum((end - start) / DAY, 0))
    return start + (rng.random(len(start)) * span).astype(np.int64) * DAY


def _plant_conditions(
    rng: np.random.Generator, age: np.ndarray, decile: np.ndarray, frailty: np.ndarray, config
) -> dict[str, np.ndarray]:
    """Decide who has each condition, calibrated to QOF prevalence by IMD decile."""
    targets = reference.qof_prevalence_by_decile()
    as_of = np.datetime64(config.as_of, "D")
    planted = {}
    for condition, (shape, min_age) in AGE_SHAPE.items():
        risk = np.where(age >= min_age, shape(age.astype(float)), 0.0) * frailty
        eligible = age >= QOF_LIST_MIN_AGE.get(condition, 0)
        probability = np.zeros(len(age))
        for d in range(1, 11):
            in_decile = decile == d
            expected = targets[condition][d - 1] * (eligible & in_decile).sum()
            scale = expected / max(risk[eligible & in_decile].sum(), 1e-9)
            probability[in_decile] = np.minimum(risk[in_decile] * scale, 0.95)
        has = rng.random(len(age)) < probability
        onset_age = min_age + rng.random(len(age)) * np.maximum(age - min_age, 0)
        onset = as_of - (np.maximum(age - onset_age, 0) * 365.25).astype(np.int64) * DAY
        planted[condition] = np.where(has, onset, np.datetime64("NaT", "D"))
    return planted


def make_people(config: SampleConfig) -> People:
    rng = np.random.default_rng([config.seed, 1])
    geo = reference.geography()
    as_of = np.datetime64(config.as_of, "D")
    window_start = np.datetime64(config.window_start, "D")
    nat = np.datetime64("NaT", "D")

    n_leeds = config.persons
    n_away = round(config.persons * config.out_of_area_share)
    n = n_leeds + n_away
    cells = pick_weighted(rng, geo.population.ravel(), n)
    area, age = np.divmod(cells, geo.population.shape[1])
    age = age + np.where(age == 90, rng.geometric(0.25, n) - 1, 0).clip(0, 15)
    birth_offset = (age * 365.25 + rng.random(n) * 365).astype(np.int64) + 1
    date_of_birth = as_of - birth_offset * DAY
    female_share = 0.5 + 0.15 * np.clip((age - 65) / 30, 0, 1)
    sex = np.where(rng.random(n) < female_share, "F", "M")
    forename = np.where(
        sex == "F",
        np.array(vocabulary.FEMALE_FORENAMES)[_zipf(rng, len(vocabulary.FEMALE_FORENAMES), n)],
        np.array(vocabulary.MALE_FORENAMES)[_zipf(rng, len(vocabulary.MALE_FORENAMES), n)],
    )
    surname = np.array(vocabulary.SURNAMES)[_zipf(rng, len(vocabulary.SURNAMES), n)]
    ethnic = np.array(vocabulary.ETHNIC_CATEGORIES)[pick_weighted(rng, np.array(vocabulary.ETHNIC_SHARE), n)]

    out_of_area = np.arange(n) >= n_leeds
    postcode_index = _postcode_in_area(rng, area)
    postcode = geo.postcodes[postcode_index].astype(object)
    postcode[out_of_area] = _out_of_area_postcodes(rng, n_away)
    area = np.where(out_of_area, -1, area)
    imd_decile = np.where(out_of_area, 0, geo.imd_decile[area])

    moved = ~out_of_area & (rng.random(n) < config.mover_share)
    moved_on = np.where(moved, _dates_between(rng, np.full(n, window_start), np.full(n, as_of)), nat)
    previous_area = rng.integers(0, len(geo.lsoa11), n)
    previous_postcode = np.where(moved, geo.postcodes[_postcode_in_area(rng, previous_area)], "")

    practice = np.full(n, "", dtype=object)
    practice[~out_of_area] = _practices_near_home(rng, geo.postcode_ward[postcode_index[~out_of_area]])
    registered_on = np.maximum(date_of_birth, as_of - (rng.exponential(9 * 365, n)).astype(np.int64) * DAY)
    changed = ~out_of_area & (rng.random(n) < config.practice_change_share)
    changed_on = np.where(
        changed,
        _dates_between(rng, np.maximum(registered_on, window_start), np.full(n, as_of)),
        nat,
    )
    previous_practice = np.where(changed, _practices_near_home(rng, geo.postcode_ward[postcode_index]), "")
    changed &= previous_practice != practice
    changed_on = np.where(changed, changed_on, nat)
    previous_practice = np.where(changed, previous_practice, "")

    frailty = rng.lognormal(-0.125, 0.5, n)
    conditions = _plant_conditions(rng, age, imd_decile, frailty, config)
    resolved = {}
    for condition, share in RESOLVED_SHARE.items():
        onset = conditions[condition]
        is_resolved = ~np.isnat(onset) & (rng.random(n) < share)
        resolved[condition] = np.where(is_resolved, _dates_between(rng, onset, np.full(n, as_of)), nat)

    # Leaving the area is drawn first: a Leeds resident is at risk of a Leeds death from the window's
    # start (or registration) until they die, leave, or the extract date, whichever comes first.
    left = ~out_of_area & (rng.random(n) < config.left_area_share)
    left_on = np.where(left, _dates_between(rng, np.full(n, window_start), np.full(n, as_of)), nat)
    multiplier = _mortality_multiplier(age, sex, imd_decile, _condition_count(conditions))
    died_on = np.full(n, nat)
    leeds = ~out_of_area
    at_risk_from = np.maximum(np.maximum(registered_on, window_start), date_of_birth)
    at_risk_until = np.where(left, left_on, as_of + DAY)
    died_on[leeds] = mortality.sample_deaths(
        rng,
        date_of_birth[leeds],
        at_risk_from[leeds],
        at_risk_until[leeds],
        sex[leeds],
        imd_decile[leeds],
        multiplier[leeds],
    )
    died = ~np.isnat(died_on)
    left &= ~died
    left_on = np.where(left, left_on, nat)
    deregistered_on = np.where(died, died_on, left_on)
    # Life events cannot come after leaving.
    moved_on = np.where(moved & (np.isnat(deregistered_on) | (moved_on < deregistered_on)), moved_on, nat)
    previous_postcode = np.where(np.isnat(moved_on), "", previous_postcode)
    changed_ok = ~np.isnat(changed_on) & (np.isnat(deregistered_on) | (changed_on < deregistered_on))
    changed_on = np.where(changed_ok, changed_on, nat)
    previous_practice = np.where(changed_ok, previous_practice, "")

    opted_out = rng.random(n) < config.opt_out_share
    return People(
        person_key=np.arange(n, dtype=np.int64),
        nhs_number=nhs_numbers.unique_valid(rng, n),
        forename=forename,
        surname=surname,
        sex=sex,
        date_of_birth=date_of_birth,
        age=age,
        area=area,
        postcode=postcode.astype(str),
        previous_postcode=previous_postcode.astype(str),
        moved_on=moved_on,
        imd_decile=imd_decile,
        practice=practice.astype(str),
        previous_practice=previous_practice.astype(str),
        practice_changed_on=changed_on,
        registered_on=np.where(out_of_area, nat, registered_on),
        deregistered_on=deregistered_on,
        died_on=died_on,
        mortality_multiplier=multiplier,
        ethnic_category=ethnic,
        out_of_area=out_of_area,
        opted_out=opted_out,
        conditions=conditions,
        resolved=resolved,
        frailty=frailty,
    )


def _mortality_multiplier(
    age: np.ndarray, sex: np.ndarray, decile: np.ndarray, conditions: np.ndarray
) -> np.ndarray:
    """Each person's share of their cell's hazard: higher with more planted conditions, normalised so
    that the mean over each cell (single year of age, sex, IMD decile) is 1 and the cell's mean hazard
    stays the planted one (ldm.synthetic.mortality). Out-of-area people (decile 0) get 1."""
    raw = 1 + CONDITION_MORTALITY * conditions
    cell = (age.astype(np.int64) * 2 + (sex == "M")) * 11 + decile
    totals = np.bincount(cell, weights=raw)
    counts = np.bincount(cell)
    return np.where(decile > 0, raw / (totals[cell] / counts[cell]), 1.0)


def _zipf(rng: np.random.Generator, size: int, count: int) -> np.ndarray:
    """Indices 0..size-1 with a gentle Zipf-like skew, as real name frequencies have."""
    weights = 1 / np.arange(1, size + 1) ** 0.8
    return pick_weighted(rng, weights, count)
