"""Death registrations for a slice of the synthetic people: causes, place and registration date.

Every Leeds resident who died in the activity window (ldm.synthetic.mortality decided who and when)
has one registration. The underlying cause is drawn from cause groups weighted by age band and sex
and raised by the person's planted conditions (COPD makes J44 likelier, dementia F03 and G30); the
planted conditions also appear as contributing causes. The place of death follows the cause (a hospice
for cancers, a care home for dementia, elsewhere for external causes) in roughly England's shares:
home 28%, hospital 44%, care home 21%, hospice 5%. All tables are data; nothing loops over people.
"""

from __future__ import annotations

import numpy as np

from ldm.synthetic import reference
from ldm.synthetic.config import SampleConfig
from ldm.synthetic.population import DAY, People

CONTRIBUTING = 15  # positions after the underlying cause (PCMD's S_COD_CODE_1..15)
# Cause groups: (name, ICD-10 codes as ONS writes them, 3-character codes with the X filler).
CAUSE_GROUPS = (
    ("ihd", ("I219", "I251", "I259")),
    ("stroke", ("I639", "I64X", "I619")),
    ("heart_failure", ("I500", "I509")),
    ("other_circulatory", ("I489", "I10X", "I714")),
    ("lung_cancer", ("C349",)),
    ("colorectal_cancer", ("C189", "C20X")),
    ("breast_cancer", ("C509",)),
    ("prostate_cancer", ("C61X",)),
    ("other_cancer", ("C259", "C159", "C169", "C719", "C859", "C64X")),
    ("copd", ("J449", "J440")),
    ("pneumonia", ("J189", "J181")),
    ("dementia", ("F03X", "G309", "F019")),
    ("liver", ("K703", "K746")),
    ("diabetes", ("E149", "E119")),
    ("kidney", ("N185", "N189")),
    ("external", ("V892", "W19X", "W10X", "X42X", "X44X", "X70X", "X80X")),
    ("perinatal", ("P073", "P220", "Q249", "R95X")),
    ("senility", ("R54X",)),
    ("other", ("A419", "K566", "K922")),
)
GROUPS = tuple(name for name, _ in CAUSE_GROUPS)
# Relative weight of each group by age band (lower bounds), before sex and conditions: a rough
# picture of England's registered deaths, young deaths external and cancers, old deaths circulatory,
# dementia and respiratory.
AGE_BANDS = (0, 1, 15, 45, 65, 80)
WEIGHTS = {
    #                    0   1-14 15-44 45-64 65-79 80+
    "ihd":               (0,  0,   8,    13,   14,   11),
    "stroke":            (0,  1,   3,    4,    6,    7),
    "heart_failure":     (0,  0,   1,    2,    3,    5),
    "other_circulatory": (0,  1,   4,    4,    5,    5),
    "lung_cancer":       (0,  0,   1,    10,   9,    4),
    "colorectal_cancer": (0,  0,   3,    5,    4,    3),
    "breast_cancer":     (0,  0,   5,    6,    3,    2),
    "prostate_cancer":   (0,  0,   0,    1,    4,    4),
    "other_cancer":      (0,  25,  15,   20,   15,   7),
    "copd":              (0,  0,   0,    5,    8,    6),
    "pneumonia":         (2,  8,   3,    3,    4,    7),
    "dementia":          (0,  0,   0,    1,    6,    18),
    "liver":             (0,  0,   10,   8,    2,    1),
    "diabetes":          (0,  1,   2,    2,    2,    1),
    "kidney":            (0,  0,   1,    1,    2,    3),
    "external":          (5,  30,  35,   7,    2,    2),
    "perinatal":         (85, 10,  0,    0,    0,    0),
    "senility":          (0,  0,   0,    0,    0,    5),
    "other":             (8,  24,  9,    8,    5,    6),
}  # fmt: skip
SEX_ONLY = {"breast_cancer": ("F", 0.01), "prostate_cancer": ("M", 0.0)}  # group: (sex, weight otherwise)
# Planted condition -> (cause groups it makes likelier as the underlying cause, by this factor).
CONDITION_CAUSES = {
    "COPD": (("copd",), 5.0),
    "CHD": (("ihd",), 3.0),
    "HF": (("heart_failure",), 4.0),
    "AF": (("stroke", "other_circulatory"), 1.5),
    "DEM": (("dementia",), 5.0),
    "DM": (("diabetes",), 3.0),
    "CKD": (("kidney",), 3.0),
    "HYP": (("other_circulatory", "stroke"), 1.3),
}
# The cause group a planted condition's own ICD-10 codes belong to: not repeated as a contributing
# cause when it is the underlying one.
OWN_GROUP = {
    "COPD": "copd",
    "CHD": "ihd",
    "HF": "heart_failure",
    "AF": "other_circulatory",
    "HYP": "other_circulatory",
    "DEM": "dementia",
    "DM": "diabetes",
    "CKD": "kidney",
}
# Common immediate or contributing causes beside the planted conditions, with their chance each.
EXTRA_CAUSES = (("J189", 0.25), ("A419", 0.08), ("N179", 0.05))
# Place of death (store codes, ldm.feeds.codes "place_of_death") by cause profile.
PLACES = ("HOME", "HOSPITAL", "CARE_HOME", "HOSPICE", "OTHER_COMMUNAL", "ELSEWHERE")
PLACE_SHARES = {
    #           home  hospital care_home hospice other_communal elsewhere
    "cancer":   (0.30, 0.33,   0.10,     0.25,   0.005,         0.015),
    "dementia": (0.15, 0.24,   0.60,     0.005,  0.003,         0.002),
    "external": (0.35, 0.40,   0.04,     0.0,    0.02,          0.19),
    "infant":   (0.08, 0.90,   0.0,      0.01,   0.0,           0.01),
    "general":  (0.29, 0.50,   0.18,     0.01,   0.005,         0.015),
}  # fmt: skip
PLACE_PROFILE = {
    **dict.fromkeys(("lung_cancer", "colorectal_cancer", "breast_cancer", "prostate_cancer"), "cancer"),
    "other_cancer": "cancer",
    "dementia": "dementia",
    "senility": "dementia",
    "external": "external",
    "perinatal": "infant",
}
CORONER_SHARE = 0.1  # registrations delayed by a coroner's inquest (weeks to months)


def _with_filler(codes: np.ndarray) -> np.ndarray:
    """ICD-10 codes as ONS writes them: a 3-character code gets the X filler (I10 -> I10X)."""
    return np.where(np.char.str_len(codes.astype(str)) == 3, np.char.add(codes.astype(str), "X"), codes)


def _weights(age: np.ndarray, sex: np.ndarray, has: dict[str, np.ndarray]) -> np.ndarray:
    band = np.searchsorted(AGE_BANDS, age, side="right") - 1
    table = np.array([WEIGHTS[group] for group in GROUPS], dtype=float).T  # band x group
    weights = table[band]
    for group, (only, otherwise) in SEX_ONLY.items():
        column = GROUPS.index(group)
        weights[:, column] *= np.where(sex == only, 1.0, otherwise)
    for condition, (groups, factor) in CONDITION_CAUSES.items():
        for group in groups:
            weights[:, GROUPS.index(group)] *= np.where(has[condition], factor, 1.0)
    return weights


def _pick_rows(rng: np.random.Generator, weights: np.ndarray) -> np.ndarray:
    """One column per row of a weight matrix, in proportion to the row's weights."""
    cumulative = np.cumsum(weights, axis=1)
    draw = rng.random(len(weights))[:, None] * cumulative[:, -1:]
    return (cumulative <= draw).sum(axis=1)


def _underlying(rng, group: np.ndarray) -> np.ndarray:
    codes = np.empty(len(group), dtype=object)
    for index, (_, choices) in enumerate(CAUSE_GROUPS):
        at = group == index
        codes[at] = np.array(choices, dtype=object)[rng.integers(0, len(choices), int(at.sum()))]
    return codes


def _contributing(rng, underlying_group: np.ndarray, has: dict[str, np.ndarray], n: int) -> np.ndarray:
    """Contributing causes, in the order a certificate lists them: the planted conditions the person
    had at death (other than the one the underlying cause stands for), then common immediate causes."""
    causes = np.full((n, CONTRIBUTING), "", dtype=object)
    filled = np.zeros(n, dtype=np.int64)
    rows = np.arange(n)

    def add(present: np.ndarray, codes: np.ndarray) -> None:
        fits = present & (filled < CONTRIBUTING)
        causes[rows[fits], filled[fits]] = codes[fits]
        filled[fits] += 1

    for condition in reference.CONDITIONS:
        own = underlying_group == GROUPS.index(OWN_GROUP[condition]) if condition in OWN_GROUP else False
        listed = reference.icd10_codes(condition)
        add(has[condition] & ~own, _with_filler(listed[rng.integers(0, len(listed), n)]))
    pneumonia = underlying_group == GROUPS.index("pneumonia")
    for code, chance in EXTRA_CAUSES:
        add((rng.random(n) < chance) & ~(pneumonia & (code == "J189")), np.full(n, code, dtype=object))
    return causes


def _place(rng, group: np.ndarray, age: np.ndarray) -> np.ndarray:
    profiles = np.array([PLACE_PROFILE.get(name, "general") for name in GROUPS])[group]
    shares = np.array([PLACE_SHARES[profile] for profile in profiles], dtype=float).reshape(-1, len(PLACES))
    # Care homes are for the old: below 65 their share goes home instead.
    young = age < 65
    care, home = PLACES.index("CARE_HOME"), PLACES.index("HOME")
    shares[young, home] += shares[young, care] * 0.9
    shares[young, care] *= 0.1
    return np.array(PLACES, dtype=object)[_pick_rows(rng, shares)]


def deaths(rng, people: People, index: np.ndarray, config: SampleConfig) -> dict[str, np.ndarray]:
    """One death registration per Leeds resident of the slice who died in the window (canonical columns)."""
    index = index[~people.out_of_area[index] & ~np.isnat(people.died_on[index])]
    n = len(index)
    died = people.died_on[index]
    age = ((died - people.date_of_birth[index]) / DAY / 365.25).astype(np.int64)
    has = {
        condition: ~np.isnat(onset[index]) & (onset[index] <= died)
        for condition, onset in people.conditions.items()
    }
    group = _pick_rows(rng, _weights(age, people.sex[index], has))
    as_of = np.datetime64(config.as_of, "D")
    coroner = rng.random(n) < CORONER_SHARE
    delay = np.where(coroner, rng.integers(20, 150, n), np.ceil(rng.lognormal(np.log(5), 0.5, n)))
    # Registrations after the extract date are not in it: the extract is cut at as_of.
    registered = np.minimum(died + delay.astype(np.int64) * DAY, as_of)
    contributing = _contributing(rng, group, has, n)
    return {
        "person": index,
        "date": died,
        "registration_date": registered,
        "place_of_death": _place(rng, group, age),
        "underlying_cause": _underlying(rng, group),
        **{f"cause_{i + 1}": contributing[:, i] for i in range(CONTRIBUTING)},
    }
