"""Probabilistic fallback: Fellegi-Sunter on token agreement, trained by EM, scored with Splink on DuckDB.

What is scored: only the record combinations the trace steps left undecided (and that carry more
than an NHS number), each against the distinct identities of spine persons (registration tokens,
linkage evidence) that a blocking rule pairs it with. A record links to its best person only if
that person's weight (their best identity's) reaches `threshold` and every other person is at least
`margin` lower; when two or more persons come within the margin it is ambiguous and stays unlinked:
the step never guesses between two persons. A person whose valid NHS number differs from the
record's is never a candidate, as at the trace steps.

What it is trained on: the blocked pairs (the scoring rules' pairs) of
- the undecided combinations themselves, the records the model is for: their faults (a birth date
  a day or a year out, a name variant, a moved address) are what the match class must describe;
- a repeatable sample of combinations the trace steps linked by an NHS number or a local id
  (`anchor_records`), identifiers the model does not compare. The undecided alone cannot teach EM
  what a match looks like: at city scale most of their blocked pairs are neighbours and namesakes,
  many of them have nobody on the spine (visitors, the unregistered), and EM would split the pairs
  on whatever clusters them (a household shares a postcode and a surname) rather than on who is
  who. The anchors bring true pairs whose other identifiers were not what linked them (a birth date
  a day out still links by NHS number), and their NHS number agrees with their person and differs
  from everybody else, which pins the match class down. (A dob_names link would not do: it agrees
  on birth date and names by construction, and would teach that matches always do.)

How: u, the chance that a level occurs between a record and a spine identity that are not the same
person, is counted exactly over all (training record, identity) pairs from how often each value
occurs on each side (`agreement_sql`). m and the share of matches are then estimated by EM on the
counts of each comparison pattern among the blocked pairs (each iteration costs microseconds): first
over all training pairs, then over the undecided records' pairs alone, shrunk towards the first by
`shrinkage_pairs`, because the faults that left them undecided are far commoner among them than in
all records (on the 30,000-person sample, m of 'same year and month of birth' came out 0.03 in the
hospital model, whose undecided records hardly ever have a match, and 0.31 in the community one).

The prior is computed over the blocked comparisons: `blocked_prior` is the share of the undecided
records' blocked record-person pairs expected to match (EM's share of matches among them). u is
consistent with it through the blocking term: a non-match is blocked with probability
`blocked_share` (blocked pairs / all pairs) and a match with `blocking_recall` (measured on the
anchors), so the prior Splink applies to u over all pairs is blocked_prior's odds times
blocked_share / blocking_recall (`splink_prior`). Measured on the 30,000-person sample, u estimated
over the blocked pairs themselves instead (EM with u free) broke conditional independence so far
that an exact surname weighed 0.07 bits and a forename 0.6: agreement on a field a rule blocks on
is common among blocked pairs. The city-wide prior takes about 20 bits off each pair, as it should:
what linked nothing before was the spine's missing year and month of birth (its registration rows
have none; ldm.load.linking.spine_of now gives them the person's), not the prior.

Decision rule: the threshold was 8. At 850,000 persons (threshold 0 for the
measurement) the community model made 688 links of weight 6 to 8, all true, none of weight 4 to 6,
and 6 false of 20 below 4; FEBRL4 recall at precision 1.0 was 0.987 at 8 and 0.994 at 4. So 4
(a match 16 times likelier than not), with the margin of 4 kept.

When it trains, and when it is reused: a saved model (governance.linkage_models, written by the
loader in the training batch's transaction) is reused while the data have not changed materially:
the same `fingerprint` (comparisons, blocking rules, training scheme, threshold, margin, Splink's
minor version), undecided records that carry the same identifiers (`compared`: a model of hospital
records without names has learnt nothing of names, and its prior is that of records most of whom
live elsewhere), and a spine within `reuse_tolerance` (10%) of its size then. Otherwise the batch
trains one: in practice once per run per kind of record, hospital and community. A batch with
nothing undecided to compare (GP events carry only an NHS number) neither trains nor scores, nor
does one with fewer than `min_anchor_records` anchors and no model to reuse.

How a link is explained: its weight is the model's prior weight plus the weight of one level of each
comparison (Splink's additive match weight). The link's algorithm_version names the model
(`...+fs:<model_id>`, the first 16 hex digits of the SHA-256 of the model's settings); `explain`
finds the levels whose weights add up to a stored weight.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import duckdb
import numpy as np
import splink
import splink.comparison_level_library as cll
import splink.comparison_library as cl
from splink import DuckDBAPI, Linker, SettingsCreator, block_on

from ldm.sql import literal

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
# The token columns: text compared only for equality (the rest are small already).
HASHED = tuple(c for c in COMPARED if c == "nhs_key" or c.endswith("_token"))
# A combination can be scored only if it carries one of these: an NHS number alone was the trace
# steps' to decide.
COMPARABLE = ("date_of_birth_token", "postcode_token", "surname_token", "forename_token")
# Steps whose links anchor EM: decided by an NHS number or a local id, which the model does not
# compare, not by the identifiers EM learns about (a dob_names link agrees on birth date and names
# by construction, and would teach that matches always do).
ANCHOR_STEPS = ("nhs_number_dob", "nhs_number", "local_id", "learnt_nhs_number")
SCHEME = "ldm-fs-2"  # how models are trained and applied; a change retrains
PSEUDO_PAIRS = 0.5  # added to every level's count, so that no level unseen in training weighs infinity
MIN_PRIOR = 1e-9  # EM can find no matches among the undecided: then nothing links

logger = logging.getLogger(__name__)
logging.getLogger("splink").setLevel(logging.ERROR)  # its training notes are not for the operator


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


@dataclass
class Scored:
    """What the step did in one batch: the model it used (None when it had nothing to score)."""

    model: Model | None = None
    scored: int = 0  # undecided combinations that carried something to compare


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


def hashed(alias: str = "") -> str:
    """The compared columns for Splink, each token replaced by its 64-bit hash.

    Splink only asks whether two values are equal or null, which a 64-bit hash answers as a
    64-character token does (two of a city's million distinct values of a column share a hash with
    odds of about 1 in 30 million), while hashing, joining and copying become several times cheaper.
    """
    # DuckDB hashes a null to a number like any other value: a null must stay null (no evidence).
    return ", ".join(
        f"case when {alias}{c} is not null then hash({alias}{c}) end as {c}" if c in HASHED else f"{alias}{c}"
        for c in COMPARED
    )


def _table(con: duckdb.DuckDBPyConnection, name: str, select: str, extra: str = "") -> None:
    """A table for Splink of `select`'s rows (unique_id, `extra` and the compared columns, hashed)."""
    con.execute(f"create or replace temp table {name} as select unique_id{extra}, {hashed()} from ({select})")


def comparable_sql() -> str:
    return "(" + " or ".join(f"{c} is not null" for c in COMPARABLE) + ")"


IDENTITIES = f"(select distinct spine_row, {hashed()} from lk_spine)"


def spine_sql(records: str) -> str:
    """The distinct identities of spine persons (registration, evidence), hashed and numbered, that
    some record of `records` shares a blocking key with: the only ones a blocking rule can pair, so
    that Splink never copies the rest of a city's spine. Found by one semi-join per rule."""
    shares = " union ".join(
        f"select s.rowid from lk_spine s semi join {records} r on {' and '.join(f'r.{c} = s.{c}' for c in key)}"
        for key in BLOCKING_KEYS
    )
    return f"""create or replace temp table lk_pr_spine as
               select row_number() over () as unique_id, *
               from (select distinct spine_row, {hashed()} from lk_spine where rowid in ({shares}))"""


def pending_select() -> str:
    """The combinations no trace step decided that carry something to compare."""
    return f"""select 'u' as role, combo_id as unique_id, {", ".join(COMPARED)}
               from lk_combo anti join lk_decided using (combo_id) where {comparable_sql()}"""


def anchor_select(config: ProbabilisticConfig) -> str:
    """A repeatable sample of combinations linked by an NHS number or a local id that carry something
    else: the lowest hashes of their tokens, so that the same data give the same sample on any thread."""
    steps = ", ".join(literal(s) for s in ANCHOR_STEPS)
    return f"""select 'a' as role, c.combo_id as unique_id, {", ".join(f"c.{name}" for name in COMPARED)}
               from lk_combo c join lk_decided d using (combo_id)
               where d.step in ({steps}) and {comparable_sql()}
               order by hash(c.nhs_key, c.date_of_birth_token, c.postcode_token, c.surname_token,
                             c.forename_token, {int(config.seed)}), c.combo_id
               limit {int(config.anchor_records)}"""


def _predict(
    con: duckdb.DuckDBPyConnection, settings: dict, records: str, threshold: float | None
) -> tuple[Linker, str]:
    """Splink's scored blocked pairs of `records` with the spine identities (lk_pr_spine): the name of
    the table (with each pair's comparison vector, gamma_*, if the settings retain the matching
    columns) and the linker that owns it."""
    db_api = DuckDBAPI(connection=con)
    spine = db_api.register("lk_pr_spine", dataset_display_name="spine")
    left = db_api.register(records, dataset_display_name="records")
    linker = Linker([left, spine], settings, log_level=None)
    predictions = linker.inference.predict_between(
        left, spine, threshold_match_weight=threshold, warning_mode="never"
    )
    return linker, predictions.physical_name


def pattern_sql(predictions: str, settings: dict) -> str:
    """How many blocked pairs show each comparison vector, the undecided records' (role 'u') apart."""
    gammas = ", ".join(f"gamma_{c['output_column_name']}" for c in settings["comparisons"])
    return f"""select t.role = 'u' as undecided, {gammas}, count(*) as pairs
               from {predictions} p join lk_pr_train t on t.unique_id = p.unique_id_l
               group by all order by all"""


def blocking_recall_sql(predictions: str) -> str:
    """The share of anchor records whose person (by NHS number) is among their blocked pairs: the
    probability that blocking pairs a record with its person, P(blocked | match)."""
    return f"""select count(distinct p.unique_id_l)::double / (select count(*) from lk_pr_train where role = 'a')
               from {predictions} p join lk_pr_train t on t.unique_id = p.unique_id_l and t.role = 'a'
               join lk_decided d on d.combo_id = t.unique_id
               join lk_pr_spine s on s.unique_id = p.unique_id_r and s.spine_row = d.spine_row"""


# The agreements u is made of: (name, columns that must be equal, column whose null is the null level).
AGREEMENTS = (
    ("nhs", ("nhs_key",), "nhs_key"),
    ("dob", ("date_of_birth_token",), "date_of_birth_token"),
    ("dob_ym", ("year_of_birth", "month_of_birth"), "date_of_birth_token"),
    ("dob_y", ("year_of_birth",), "date_of_birth_token"),
    ("dob_m", ("month_of_birth",), "date_of_birth_token"),
    ("sex", ("sex",), "sex"),
    ("postcode", ("postcode_token",), "postcode_token"),
    ("district", ("postcode_district_token",), "postcode_token"),
    *(
        agreement
        for name in ("surname", "forename")
        for agreement in (
            (name, (f"{name}_token",), f"{name}_token"),
            (f"{name}_p", (f"{name}_phonetic_token",), f"{name}_token"),
            (f"{name}_i", (f"{name}_initial_token",), f"{name}_token"),
            (f"{name}_ip", (f"{name}_initial_token", f"{name}_phonetic_token"), f"{name}_token"),
        )
    ),
)


def agreement_sql(records: str, spine: str) -> str:
    """Per agreement: the share of all (record, spine identity) pairs, both sides non-null, whose
    columns are equal, and how many such pairs there are. Exact, from how often each value occurs
    on each side: no sample of random pairs could measure a birth date's 1 in 30,000 as well."""

    def one(name: str, keys: tuple[str, ...], present: str) -> str:
        k = ", ".join(keys)
        where = " and ".join(f"{c} is not null" for c in dict.fromkeys((present, *keys)))
        pairs = f"""(select count(*) from {records} where {present} is not null)
                    * (select count(*) from {spine} where {present} is not null)"""
        return f"""select {literal(name)} as agreement,
                          coalesce(sum(a.n * b.n), 0)::double / nullif({pairs}, 0) as share,
                          {pairs}::double as pairs
                   from (select {k}, count(*) as n from {records} where {where} group by all) a
                   join (select {k}, count(*) as n from {spine} where {where} group by all) b using ({k})"""

    return " union all ".join(one(*agreement) for agreement in AGREEMENTS)


def u_probabilities(shares: dict[str, tuple[float, float]]) -> list[list[float]]:
    """u of each non-null level of each comparison (Splink's order, strongest first), from the
    agreement shares of `agreement_sql`: a level is its agreement less the stronger levels'.
    No u is below half a pair of those counted, so that no level weighs infinity."""
    s = {name: share or 0.0 for name, (share, _) in shares.items()}
    floor = {name: 0.5 / pairs if pairs else 1.0 for name, (_, pairs) in shares.items()}

    def names(n: str) -> list[float]:
        return [
            s[n],
            s[f"{n}_p"] - s[n],
            s[f"{n}_i"] - s[f"{n}_ip"],
            1 - s[f"{n}_p"] - s[f"{n}_i"] + s[f"{n}_ip"],
        ]

    levels = {
        "nhs": [s["nhs"], 1 - s["nhs"]],
        "dob": [
            s["dob"],
            s["dob_ym"] - s["dob"],
            s["dob_y"] + s["dob_m"] - 2 * s["dob_ym"],
            1 - s["dob_y"] - s["dob_m"] + s["dob_ym"],
        ],
        "sex": [s["sex"], 1 - s["sex"]],
        "postcode": [s["postcode"], s["district"] - s["postcode"], 1 - s["district"]],
        "surname": names("surname"),
        "forename": names("forename"),
    }
    out = []
    for name, values in levels.items():  # in the order of `comparisons()`
        floored = [max(v, floor[name]) for v in values]
        out.append([v / sum(floored) for v in floored])
    return out


@dataclass(frozen=True)
class Fit:
    """EM's estimates: m per non-null level of each comparison (strongest first), the share of
    matches among the blocked pairs, each pattern's match probability, and the iterations."""

    m: list[list[float]]
    share: float
    probability: np.ndarray
    iterations: int


def _by_level(levels: Sequence[Sequence[float]]) -> list[np.ndarray]:
    """Splink's order (strongest first) to gamma order (index = comparison vector value)."""
    return [np.array(values[::-1], dtype=float) for values in levels]


def _level_sums(column: np.ndarray, weights: np.ndarray, size: int) -> np.ndarray:
    seen = column >= 0
    return np.bincount(column[seen], weights=weights[seen], minlength=size)


def expectation_maximisation(
    gammas: np.ndarray,
    pairs: np.ndarray,
    u: Sequence[Sequence[float]],
    blocked_share: float,
    iterations: int,
    tolerance: float,
    start_m: Sequence[Sequence[float]] | None = None,
    start_weight: float = 0.0,
) -> Fit:
    """Fellegi-Sunter EM on pattern counts of blocked pairs, u fixed, m and the share of matches
    estimated. `gammas` (patterns x comparisons) holds each pattern's comparison vector value
    (-1 null: no evidence either way), `pairs` how many blocked pairs show it, `u` the u of each
    level (Splink's order) over all pairs.

    A non-match is blocked with probability `blocked_share` (P(blocked | non-match)), so among
    blocked pairs a non-match pattern is 1 / blocked_share times as likely as among all pairs;
    a match is blocked nearly always (its recall is applied to the prior afterwards). m starts
    leaning to agreement, or at `start_m`, which then also counts as `start_weight` matched pairs
    at every iteration (m of few pairs shrunk towards it); every level gets PSEUDO_PAIRS more
    pairs, so none weighs infinity.
    """
    gammas, pairs = np.asarray(gammas, dtype=np.int64), np.asarray(pairs, dtype=float)
    u_level = _by_level(u)
    sizes = [len(level) for level in u_level]
    m = _by_level(
        start_m or [[0.9, *([0.05 / max(size - 2, 1)] * (size - 2)), 0.05][:size] for size in sizes]
    )
    m = [level / level.sum() for level in m]
    shrink = [start_weight * level for level in m]
    in_other = np.full(len(pairs), 1.0 / blocked_share)
    for k in range(len(sizes)):
        seen = gammas[:, k] >= 0
        in_other[seen] *= u_level[k][gammas[seen, k]]
    share, done = 0.01, 0
    probability = np.zeros(len(pairs))
    for done in range(1, iterations + 1):  # noqa: B007 - `done` is returned
        in_match = np.ones(len(pairs))
        for k in range(len(sizes)):
            seen = gammas[:, k] >= 0
            in_match[seen] *= m[k][gammas[seen, k]]
        probability = share * in_match / (share * in_match + (1 - share) * in_other)
        matched = pairs * probability
        new_m = []
        for k, size in enumerate(sizes):
            counts = _level_sums(gammas[:, k], matched, size) + shrink[k] + PSEUDO_PAIRS
            new_m.append(counts / counts.sum())
        new_share = float(matched.sum() / pairs.sum())
        change = max(
            abs(new_share - share), *(float(np.abs(x - y).max()) for x, y in zip(new_m, m, strict=True))
        )
        m, share = new_m, new_share
        if change < tolerance:
            break
    return Fit([[float(v) for v in level[::-1]] for level in m], share, probability, done)


def splink_prior(blocked_prior: float, blocked_share: float, blocking_recall: float) -> float:
    """The prior over all record-person pairs that Splink applies (with u over all pairs), from the
    prior over blocked pairs: odds x P(blocked | non-match) / P(blocked | match)."""
    odds = blocked_prior / (1 - blocked_prior) * blocked_share / max(blocking_recall, 1e-9)
    return min(max(odds / (1 + odds), MIN_PRIOR), 0.5)


def train(
    con: duckdb.DuckDBPyConnection, config: ProbabilisticConfig, spine_persons: int, compared: tuple[str, ...]
) -> Model | None:
    """A model from the records of lk_pr_raw (the undecided, role 'u', and the anchors, role 'a') and
    their blocked pairs with the spine identities of lk_pr_spine."""
    _table(con, "lk_pr_train", "select * from lk_pr_raw", ", role")
    con.execute(f"create or replace temp table lk_pr_identities as select * from {IDENTITIES}")
    shares = {
        name: (share, pairs)
        for name, share, pairs in con.execute(agreement_sql("lk_pr_train", "lk_pr_identities")).fetchall()
    }
    identities = con.execute("select count(*) from lk_pr_identities").fetchall()[0][0]
    con.execute("drop table lk_pr_identities")
    u = u_probabilities(shares)
    # Any m and u do here: only the comparison vectors (kept with the matching columns) are read.
    start = settings_dict(0.5, [[(0.5, 0.5)] * len(v) for v in level_values(settings_dict(0.5))])
    start["retain_matching_columns"] = True
    linker, predictions = _predict(con, start, "lk_pr_train", None)
    rows = con.execute(pattern_sql(predictions, start)).fetchall()
    recall = con.execute(blocking_recall_sql(predictions)).fetchall()[0][0] or 1.0
    linker.table_management.delete_tables_created_by_splink_from_db()
    records, undecided = con.execute(
        "select count(*), count(*) filter (where role = 'u') from lk_pr_train"
    ).fetchall()[0]
    con.execute("drop table lk_pr_train")
    patterns = np.array([row[1:-1] for row in rows], dtype=np.int64).reshape(len(rows), -1)
    pairs = np.array([row[-1] for row in rows], dtype=float)
    is_undecided = np.array([row[0] for row in rows], dtype=bool)
    undecided_pairs = float(pairs[is_undecided].sum())
    if not undecided_pairs:
        return None  # blocking pairs none of them with anyone: nothing to score
    every = expectation_maximisation(
        patterns, pairs, u, pairs.sum() / (records * identities), config.em_iterations, config.em_tolerance
    )
    # Then m among the undecided records' pairs alone, shrunk towards every record's m: the faults
    # that left them undecided (a birth date a day out) are far commoner among them than in all.
    blocked_share = undecided_pairs / (undecided * identities)
    fit = expectation_maximisation(
        patterns[is_undecided],
        pairs[is_undecided],
        u,
        blocked_share,
        config.em_iterations,
        config.em_tolerance,
        start_m=every.m,
        start_weight=config.shrinkage_pairs,
    )
    blocked_prior = fit.share
    return Model(
        settings=settings_dict(
            splink_prior(blocked_prior, blocked_share, recall),
            [list(zip(m, u_k, strict=True)) for m, u_k in zip(fit.m, u, strict=True)],
        ),
        fingerprint=fingerprint(config),
        threshold=config.threshold,
        margin=config.margin,
        spine_persons=spine_persons,
        compared=compared,
        blocked_prior=blocked_prior,
        blocked_share=blocked_share,
        blocking_recall=recall,
        training_records=records,
        training_undecided=undecided,
        training_pairs=int(pairs.sum()),
        em_iterations=every.iterations + fit.iterations,
        trained=True,
    )


def _anchor(con: duckdb.DuckDBPyConnection, config: ProbabilisticConfig) -> bool:
    """Add the anchor records to lk_pr_raw; false (and none added) when too few to train on."""
    con.execute(f"create or replace temp table lk_pr_anchor as {anchor_select(config)}")
    anchors = con.execute("select count(*) from lk_pr_anchor").fetchall()[0][0]
    if anchors >= config.min_anchor_records:
        con.execute("insert into lk_pr_raw select * from lk_pr_anchor")
    else:
        logger.info(
            "probabilistic step: %s records linked by NHS number or local id, too few to train on", anchors
        )
    con.execute("drop table lk_pr_anchor")
    return anchors >= config.min_anchor_records


def score(con: duckdb.DuckDBPyConnection, config: ProbabilisticConfig, saved: Sequence[Model] = ()) -> Scored:
    """Decide the undecided combinations by match weight, with the first of the `saved` models that
    still fits, else with a model trained here (Scored.model.trained)."""
    result = Scored()
    con.execute(f"create or replace temp table lk_pr_raw as {pending_select()}")
    result.scored = con.execute("select count(*) from lk_pr_raw").fetchall()[0][0]
    spine_persons = con.execute("select count(distinct spine_row) from lk_spine").fetchall()[0][0]
    if result.scored == 0 or spine_persons < 2:
        con.execute("drop table lk_pr_raw")
        return result
    carried = con.execute(compared_sql("lk_pr_raw")).fetchall()[0]
    compared = tuple(name for (name, _), present in zip(PRESENCE, carried, strict=True) if present)
    model = next((m for m in saved if reusable(m, spine_persons, compared, config)), None)
    training = model is None and _anchor(con, config)
    con.execute(spine_sql("lk_pr_raw"))
    _table(con, "lk_pr_pending", "select * from lk_pr_raw where role = 'u'")
    if training:
        model = train(con, config, spine_persons, compared)
    if model is not None:
        linker, predictions = _predict(con, model.settings, "lk_pr_pending", config.threshold - config.margin)
        con.execute(decide_sql(predictions, config))
        linker.table_management.delete_tables_created_by_splink_from_db()
    result.model = model
    for name in ("lk_pr_spine", "lk_pr_pending", "lk_pr_raw"):
        con.execute(f"drop table {name}")
    return result


def decide_sql(predictions: str, config: ProbabilisticConfig) -> str:
    """Best person per combination, if clearly ahead of every other person.

    A person's weight is that of their best identity. Persons whose valid NHS number differs from
    the record's are left out, as at the trace steps: two valid numbers that differ are two people.
    """
    return f"""
        insert into lk_decided
        with persons as (
            select p.unique_id_l as combo_id, s.spine_row, max(p.match_weight) as match_weight
            from {predictions} p join lk_pr_spine s on s.unique_id = p.unique_id_r
            join lk_pr_pending r on r.unique_id = p.unique_id_l
            where not coalesce(r.nhs_key <> s.nhs_key, false)
            group by all
        ), ranked as (
            select combo_id,
                   arg_max(spine_row, match_weight) as best_row,
                   max(match_weight) as best,
                   count(*) filter (where match_weight >= max_weight_minus_margin) as close
            from (select *, max(match_weight) over (partition by combo_id) - {float(config.margin)!r}
                      as max_weight_minus_margin from persons)
            group by combo_id
        )
        select combo_id,
               case when close = 1 then best_row end,
               case when close = 1 then 'probabilistic' else 'ambiguous:probabilistic' end,
               best,
               close
        from ranked
        where best >= {float(config.threshold)!r}
    """


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
