"""Probabilistic fallback: Fellegi-Sunter on token agreement, trained by EM, scored with Splink on DuckDB.

This module scores and decides; the model (comparisons, settings, reuse, `explain`) is in
ldm.linkage.fellegi_sunter, its training (`agreement_sql`, `expectation_maximisation`,
`splink_prior`) in ldm.linkage.training, and the tables and blocked pairs in ldm.linkage.pairs.

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

from collections.abc import Sequence
from dataclasses import dataclass

from ldm.dialects import current as dialect
from ldm.linkage.fellegi_sunter import PRESENCE, Model, ProbabilisticConfig, compared_sql, reusable
from ldm.linkage.pairs import pending_select, predict, spine_sql, splink_table
from ldm.linkage.training import anchor, train
from ldm.linkage.working import DECIDED, PENDING, PENDING_RAW, PR_SPINE, SPINE
from ldm.linkage.workspace import Workspace


@dataclass
class Scored:
    """What the step did in one batch: the model it used (None when it had nothing to score)."""

    model: Model | None = None
    scored: int = 0  # undecided combinations that carried something to compare


def score(ws: Workspace, config: ProbabilisticConfig, saved: Sequence[Model] = ()) -> Scored:
    """Decide the undecided combinations by match weight, with the first of the `saved` models that
    still fits, else with a model trained here (Scored.model.trained)."""
    result = Scored()
    ws.create(PENDING_RAW, pending_select())
    result.scored = ws.value(f"select count(*) from {PENDING_RAW}")
    spine_persons = ws.value(f"select count(distinct spine_row) from {SPINE}")
    if result.scored == 0 or spine_persons < 2:
        ws.drop(PENDING_RAW)
        return result
    carried = ws.rows(compared_sql(PENDING_RAW))[0]
    compared = tuple(name for (name, _), present in zip(PRESENCE, carried, strict=True) if present)
    model = next((m for m in saved if reusable(m, spine_persons, compared, config)), None)
    training = model is None and anchor(ws, config)
    ws.create(PR_SPINE, spine_sql(PENDING_RAW))
    splink_table(ws, PENDING, f"select * from {PENDING_RAW} where role = 'u'")
    if training:
        model = train(ws, config, spine_persons, compared)
    if model is not None:
        linker, predictions = predict(ws, model.settings, PENDING, config.threshold - config.margin)
        ws.append(DECIDED, decide_sql(predictions, config))
        linker.table_management.delete_tables_created_by_splink_from_db()
    result.model = model
    for name in (PR_SPINE, PENDING, PENDING_RAW):
        ws.drop(name)
    return result


def decide_sql(predictions: str, config: ProbabilisticConfig) -> str:
    """Rows of lk_decided: the best person per combination, if clearly ahead of every other person.

    A person's weight is that of their best identity. Persons whose valid NHS number differs from
    the record's are left out, as at the trace steps: two valid numbers that differ are two people.
    """
    return f"""
        with persons as (
            select p.unique_id_l as combo_id, s.spine_row, max(p.match_weight) as match_weight
            from {predictions} p join {PR_SPINE} s on s.unique_id = p.unique_id_r
            join {PENDING} r on r.unique_id = p.unique_id_l
            where not coalesce(r.nhs_key <> s.nhs_key, false)
            group by all
        ), ranked as (
            select combo_id,
                   {dialect().arg_max("spine_row", "match_weight")} as best_row,
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
