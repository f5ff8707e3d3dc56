"""The Fellegi-Sunter model of the probabilistic step: its comparisons, Splink settings, identity
and reuse, and the reading of a stored weight back into the levels that made it.

How it is trained and applied: ldm.linkage.training and ldm.linkage.probabilistic.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import splink
import splink.comparison_level_library as cll
import splink.comparison_library as cl
from splink import SettingsCreator, block_on

logging.getLogger("splink").setLevel(logging.ERROR)  # its training notes are not for the operator

COMPARED = (
    "nhs_key",
    "date_of_birth_token",
    "year_of_birth",
    "month_of_birth",
    "sex",
    "postcode_token",
    "postcode_district_token",
    "forename_token",
    "forename_phonetic_token",
    "forename_initial_token",
    "surname_token",
    "surname_phonetic_token",
    "surname_initial_token",
)


SCHEME = "ldm-fs-2"  # how models are trained and applied; a change retrains


@dataclass(frozen=True)
class ProbabilisticConfig:
    threshold: float = 4.0  # match weight (log2 odds, prior included) to link; see "Decision rule"
    margin: float = 4.0  # best weight minus every other person's weight needed to link
    anchor_records: int = 5_000  # combinations linked by NHS number or local id sampled to anchor EM
    min_anchor_records: int = 100  # below this, too little to tell matches apart: no model
    reuse_tolerance: float = 0.10  # a saved model serves while the spine is within this of its size
    em_iterations: int = 500
    em_tolerance: float = 1e-7
    shrinkage_pairs: float = 20.0  # the undecided records' m is shrunk towards all records' by this many
    seed: int = 42


@dataclass(frozen=True)
class Model:
    """A trained Fellegi-Sunter model: Splink's settings (comparisons with m and u per level,
    the prior, blocking rules) and what it was trained on. `trained` is true when this run made it
    (the loader then saves it), false when it was read from the store."""

    settings: dict
    fingerprint: str
    threshold: float
    margin: float
    spine_persons: int
    compared: tuple[str, ...] = ()  # the comparisons its undecided training records carried
    blocked_prior: float = 0.0  # share of the undecided records' blocked pairs expected to match
    blocked_share: float = 0.0  # P(blocked | non-match): blocked pairs / all record-identity pairs
    blocking_recall: float = 1.0  # P(blocked | match), measured on the records linked by NHS number
    training_records: int = 0
    training_undecided: int = 0
    training_pairs: int = 0
    em_iterations: int = 0
    splink_version: str = splink.__version__
    trained: bool = False

    @property
    def model_id(self) -> str:
        return model_id(self.settings)

    @property
    def prior(self) -> float:
        return float(self.settings["probability_two_random_records_match"])

    @property
    def tag(self) -> str:
        """What each of its links carries in algorithm_version, after the engine's version."""
        return f"fs:{self.model_id}"


def _comparison(name: str, levels: list[tuple[object, str]]) -> cl.CustomComparison:
    """A comparison whose levels carry short labels (the report's tables and charts show them)."""
    return cl.CustomComparison(
        output_column_name=name,
        comparison_levels=[level.configure(label_for_charts=label) for level, label in levels],
    )


def _exact(column: str, what: str) -> cl.CustomComparison:
    return _comparison(
        column if column != "nhs_key" else "nhs_number",
        [
            (cll.NullLevel(column), "missing"),
            (cll.ExactMatchLevel(column), f"same {what}"),
            (cll.ElseLevel(), "other"),
        ],
    )


def _name_comparison(name: str) -> cl.CustomComparison:
    return _comparison(
        name,
        [
            (cll.NullLevel(f"{name}_token"), "missing"),
            (cll.ExactMatchLevel(f"{name}_token"), f"same {name}"),
            (cll.ExactMatchLevel(f"{name}_phonetic_token"), "same sound (NYSIIS)"),
            (cll.ExactMatchLevel(f"{name}_initial_token"), "same initial"),
            (cll.ElseLevel(), "other"),
        ],
    )


def comparisons() -> list:
    """Agreement levels per identifier, strongest first."""
    dob = _comparison(
        "date_of_birth",
        [
            (cll.NullLevel("date_of_birth_token"), "missing"),
            (cll.ExactMatchLevel("date_of_birth_token"), "same date"),
            (
                cll.And(cll.ExactMatchLevel("year_of_birth"), cll.ExactMatchLevel("month_of_birth")),
                "same year and month",
            ),
            (
                cll.Or(cll.ExactMatchLevel("year_of_birth"), cll.ExactMatchLevel("month_of_birth")),
                "same year or month",
            ),
            (cll.ElseLevel(), "other"),
        ],
    )
    postcode = _comparison(
        "postcode",
        [
            (cll.NullLevel("postcode_token"), "missing"),
            (cll.ExactMatchLevel("postcode_token"), "same postcode"),
            (cll.ExactMatchLevel("postcode_district_token"), "same district"),
            (cll.ElseLevel(), "other"),
        ],
    )
    return [
        _exact("nhs_key", "valid NHS number"),
        dob,
        _exact("sex", "sex"),
        postcode,
        _name_comparison("surname"),
        _name_comparison("forename"),
    ]


# The columns each blocking rule pairs a record with the spine identities that share them on.
# Each rule is narrow enough that a record meets a few hundred identities of a city's spine, not
# thousands: (surname sound, year) and (surname, forename) alone paired 22,000 records with 30
# million identities at 850,000 persons, where these pair them with under 2 million.
BLOCKING_KEYS = (
    ("date_of_birth_token",),
    ("postcode_token",),
    # A birth date a day out at a new address: its year and month still agree.
    ("surname_phonetic_token", "year_of_birth", "month_of_birth"),
    ("postcode_district_token", "year_of_birth", "month_of_birth", "sex"),
    # A birth date a year out at a new address: the names and the month are all that is left.
    ("surname_token", "forename_token", "month_of_birth"),
)


BLOCKING_RULES = tuple(block_on(*key) for key in BLOCKING_KEYS)


def settings_dict(prior: float, levels: Sequence[Sequence[tuple[float, float]]] | None = None) -> dict:
    """Splink's settings for the model: with `levels`, (m, u) of each non-null level of each
    comparison, in Splink's order (strongest first)."""
    settings = SettingsCreator(
        link_type="link_only",
        comparisons=comparisons(),
        blocking_rules_to_generate_predictions=list(BLOCKING_RULES),
        probability_two_random_records_match=prior,
        retain_matching_columns=False,
        retain_intermediate_calculation_columns=False,
    ).create_settings_dict(sql_dialect_str="duckdb")
    for comparison, values in zip(settings["comparisons"], levels or [], strict=False):
        scored = [level for level in comparison["comparison_levels"] if not level.get("is_null_level")]
        for level, (m, u) in zip(scored, values, strict=True):
            level["m_probability"], level["u_probability"] = m, u
    return settings


def fingerprint(config: ProbabilisticConfig) -> str:
    """What a saved model must share with this run to be reused: comparisons, blocking rules,
    training scheme, decision rule and Splink's minor version (its SQL and model format)."""
    shape = {
        "scheme": SCHEME,
        "settings": settings_dict(0.5),
        "threshold": config.threshold,
        "margin": config.margin,
        "splink": ".".join(splink.__version__.split(".")[:2]),
    }
    return hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()[:16]


def model_id(settings: dict) -> str:
    """A model's id: the first 16 hex digits of the SHA-256 of its settings (so the same model has
    one id wherever it is stored, and a changed one cannot keep its id)."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def reusable(
    model: Model, spine_persons: int, compared: tuple[str, ...], config: ProbabilisticConfig
) -> bool:
    """Whether a saved model still fits this batch: same fingerprint, trained on undecided records that
    carried the same identifiers (a model of hospital records without names has learnt nothing of
    names, and its prior is that of records most of whom live elsewhere), and a spine within the
    tolerance of its size then."""
    if model.fingerprint != fingerprint(config) or model.compared != compared or model.spine_persons <= 0:
        return False
    return abs(spine_persons - model.spine_persons) <= config.reuse_tolerance * model.spine_persons


# The column whose null is each comparison's null level, in the order of `comparisons()`.
PRESENCE = (
    ("nhs_number", "nhs_key"),
    ("date_of_birth", "date_of_birth_token"),
    ("sex", "sex"),
    ("postcode", "postcode_token"),
    ("surname", "surname_token"),
    ("forename", "forename_token"),
)


def compared_sql(records: str) -> str:
    """Which comparisons the records carry a value for (one boolean column each)."""
    return (
        "select "
        + ", ".join(f"count({column}) > 0 as {name}" for name, column in PRESENCE)
        + f" from {records}"
    )


def level_values(settings: dict) -> list[list[int]]:
    """The comparison vector value (gamma) of each non-null level of each comparison, in Splink's
    order: the strongest is the highest, the catch-all level 0, a null -1."""
    return [
        list(range(sum(not level.get("is_null_level") for level in c["comparison_levels"]) - 1, -1, -1))
        for c in settings["comparisons"]
    ]


def level_weights(settings: dict) -> list[list[tuple[str, float]]]:
    """(label, match weight) of every level of every comparison, null levels (weight 0) included."""
    out = []
    for comparison in settings["comparisons"]:
        levels = []
        for level in comparison["comparison_levels"]:
            label = level.get("label_for_charts", level["sql_condition"])
            if level.get("is_null_level"):
                levels.append((label, 0.0))
            else:
                levels.append((label, math.log2(level["m_probability"] / level["u_probability"])))
        out.append(levels)
    return out


def prior_weight(settings: dict) -> float:
    prior = float(settings["probability_two_random_records_match"])
    return math.log2(prior / (1 - prior))


def gammas(settings: dict) -> list[list[int]]:
    """The comparison vector value of every level of every comparison (null levels -1)."""
    out = []
    for comparison, values in zip(settings["comparisons"], level_values(settings), strict=True):
        scored = iter(values)
        out.append(
            [-1 if level.get("is_null_level") else next(scored) for level in comparison["comparison_levels"]]
        )
    return out


def explain(
    settings: dict, weight: float, tolerance: float = 1e-6
) -> list[list[tuple[str, str, float, int]]]:
    """Every choice of one level per comparison whose weights, with the prior's, add up to `weight`:
    [(comparison, level, weight, comparison vector value), ...] each. One choice, unless weights
    happen to coincide: so a stored link weight names the levels that made it."""
    names = [c["output_column_name"] for c in settings["comparisons"]]
    levels = [
        [(label, w, g) for (label, w), g in zip(weights, values, strict=True)]
        for weights, values in zip(level_weights(settings), gammas(settings), strict=True)
    ]
    start = prior_weight(settings)
    found = []
    for choice in itertools.product(*levels):
        if abs(start + sum(w for _, w, _ in choice) - weight) <= tolerance:
            found.append([(n, label, w, g) for n, (label, w, g) in zip(names, choice, strict=True)])
    return found
