"""Training the probabilistic step's model: u counted exactly, m and the prior by EM on pattern counts.

The reasoning (what it is trained on, why anchors, how the prior stays consistent with u) is in
ldm.linkage.probabilistic's docstring.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ldm.dialects import current as dialect
from ldm.linkage.columns import TOKEN_COLUMNS
from ldm.linkage.fellegi_sunter import (
    COMPARED,
    Model,
    ProbabilisticConfig,
    fingerprint,
    level_values,
    settings_dict,
)
from ldm.linkage.pairs import comparable_sql, identities, predict, splink_table
from ldm.linkage.working import ANCHORS, COMBO, DECIDED, IDENTITIES, PENDING_RAW, PR_SPINE, TRAINING
from ldm.linkage.workspace import Workspace
from ldm.sql import literal

# Steps whose links anchor EM: decided by an NHS number or a local id, which the model does not
# compare, not by the identifiers EM learns about (a dob_names link agrees on birth date and names
# by construction, and would teach that matches always do).
ANCHOR_STEPS = ("nhs_number_dob", "nhs_number", "local_id", "learnt_nhs_number")


PSEUDO_PAIRS = 0.5  # added to every level's count, so that no level unseen in training weighs infinity


MIN_PRIOR = 1e-9  # EM can find no matches among the undecided: then nothing links


logger = logging.getLogger(__name__)


def anchor_select(config: ProbabilisticConfig) -> str:
    """A repeatable sample of combinations linked by an NHS number or a local id that carry something
    else: the lowest MD5s of the seed and every token column of the combination, so that the same data
    give the same sample on any thread and on either engine. DuckDB and Spark spell md5, concat_ws,
    coalesce and the casts to text alike and give the same hexadecimal text, where each engine's own
    64-bit hash would not agree; every column is in it, so two combinations tie only if their MD5s
    collide, and combo_id (numbered in each engine's own order) never decides. The tokens are keyed
    HMACs, so the order is as good as random."""
    steps = ", ".join(literal(s) for s in ANCHOR_STEPS)
    text = ", ".join(
        [
            literal(str(int(config.seed))),
            *(f"coalesce({dialect().as_text(f'c.{name}')}, '')" for name in TOKEN_COLUMNS),
        ]
    )
    return f"""select 'a' as role, c.combo_id as unique_id, {", ".join(f"c.{name}" for name in COMPARED)}
               from {COMBO} c join {DECIDED} d using (combo_id)
               where d.step in ({steps}) and {comparable_sql()}
               order by md5(concat_ws('|', {text})), c.combo_id
               limit {int(config.anchor_records)}"""


def pattern_sql(predictions: str, settings: dict) -> str:
    """How many blocked pairs show each comparison vector, the undecided records' (role 'u') apart."""
    names = ["undecided", *(f"gamma_{c['output_column_name']}" for c in settings["comparisons"])]
    return f"""select t.role = 'u' as undecided, {", ".join(names[1:])}, count(*) as pairs
               from {predictions} p join {TRAINING} t on t.unique_id = p.unique_id_l
               group by all {dialect().order_by_all([*names, "pairs"])}"""


def blocking_recall_sql(predictions: str) -> str:
    """The share of anchor records whose person (by NHS number) is among their blocked pairs: the
    probability that blocking pairs a record with its person, P(blocked | match)."""
    return f"""select cast(count(distinct p.unique_id_l) as double) / (select count(*) from {TRAINING} where role = 'a')
               from {predictions} p join {TRAINING} t on t.unique_id = p.unique_id_l and t.role = 'a'
               join {DECIDED} d on d.combo_id = t.unique_id
               join {PR_SPINE} s on s.unique_id = p.unique_id_r and s.spine_row = d.spine_row"""


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
                          cast(coalesce(sum(a.n * b.n), 0) as double) / nullif({pairs}, 0) as share,
                          cast({pairs} as double) as pairs
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
    ws: Workspace, config: ProbabilisticConfig, spine_persons: int, compared: tuple[str, ...]
) -> Model | None:
    """A model from the records of lk_pr_raw (the undecided, role 'u', and the anchors, role 'a') and
    their blocked pairs with the spine identities of lk_pr_spine."""
    splink_table(ws, TRAINING, f"select * from {PENDING_RAW}", ", role")
    ws.create(IDENTITIES, f"select * from {identities()}")
    shares = {name: (share, pairs) for name, share, pairs in ws.rows(agreement_sql(TRAINING, IDENTITIES))}
    spine_identities = ws.value(f"select count(*) from {IDENTITIES}")
    ws.drop(IDENTITIES)
    u = u_probabilities(shares)
    # Any m and u do here: only the comparison vectors (kept with the matching columns) are read.
    start = settings_dict(0.5, [[(0.5, 0.5)] * len(v) for v in level_values(settings_dict(0.5))])
    start["retain_matching_columns"] = True
    linker, predictions = predict(ws, start, TRAINING, None)
    rows = ws.rows(pattern_sql(predictions, start))
    recall = ws.value(blocking_recall_sql(predictions)) or 1.0
    linker.table_management.delete_tables_created_by_splink_from_db()
    records, undecided = ws.rows(f"select count(*), count(*) filter (where role = 'u') from {TRAINING}")[0]
    ws.drop(TRAINING)
    patterns = np.array([row[1:-1] for row in rows], dtype=np.int64).reshape(len(rows), -1)
    pairs = np.array([row[-1] for row in rows], dtype=float)
    is_undecided = np.array([row[0] for row in rows], dtype=bool)
    undecided_pairs = float(pairs[is_undecided].sum())
    if not undecided_pairs:
        return None  # blocking pairs none of them with anyone: nothing to score
    every = expectation_maximisation(
        patterns,
        pairs,
        u,
        pairs.sum() / (records * spine_identities),
        config.em_iterations,
        config.em_tolerance,
    )
    # Then m among the undecided records' pairs alone, shrunk towards every record's m: the faults
    # that left them undecided (a birth date a day out) are far commoner among them than in all.
    blocked_share = undecided_pairs / (undecided * spine_identities)
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


def anchor(ws: Workspace, config: ProbabilisticConfig) -> bool:
    """Add the anchor records to lk_pr_raw; false (and none added) when too few to train on."""
    ws.create(ANCHORS, anchor_select(config))
    anchors = ws.value(f"select count(*) from {ANCHORS}")
    if anchors >= config.min_anchor_records:
        ws.append(PENDING_RAW, f"select * from {ANCHORS}")
    else:
        logger.info(
            "probabilistic step: %s records linked by NHS number or local id, too few to train on", anchors
        )
    ws.drop(ANCHORS)
    return anchors >= config.min_anchor_records
