"""The linkage engine's working tables, named once: what each holds while a batch is linked.

They live in the engine's own connection (ldm.load.linking makes one per load, and keeps lk_spine
from batch to batch), so their names need only be unique there.
"""

from __future__ import annotations

from ldm.sql import WorkingTable

SPINE = WorkingTable(
    "lk_spine", "one row per spine identity: spine_row (a person), person_id, tokens, nhs_key"
)
COMBO = WorkingTable(
    "lk_combo", "one row per distinct combination of record tokens: combo_id, tokens, nhs_key"
)
DECIDED = WorkingTable(
    "lk_decided", "each decided combination: combo_id, spine_row, step, weight, candidates"
)
RESOLVED = WorkingTable(
    "lk_resolved",
    "each combination's tokens with its outcome: person_id (none if unlinked), step, weight, candidates",
)
RESULT = WorkingTable("linkage_result", "each record's link, when `link` makes a table of them")

# The probabilistic step's tables (ldm.linkage.probabilistic, pairs, training).
PENDING_RAW = WorkingTable("lk_pr_raw", "combinations to score (role u) and, when training, anchors (role a)")
ANCHORS = WorkingTable(
    "lk_pr_anchor", "the repeatable sample of combinations linked by NHS number or local id"
)
PR_SPINE = WorkingTable(
    "lk_pr_spine", "spine identities sharing a blocking key with a record, hashed, numbered"
)
PENDING = WorkingTable("lk_pr_pending", "the combinations to score, as Splink reads them (tokens hashed)")
TRAINING = WorkingTable("lk_pr_train", "the training records (undecided and anchors), as Splink reads them")
IDENTITIES = WorkingTable("lk_pr_identities", "every distinct spine identity, hashed, for counting u")

# Ground-truth scoring (ldm.linkage.quality, scoring, engine_only).
TRUE_RECORDS = WorkingTable("qa_truth", "each record's true person: feed, record_id, person_key")
SCORED = WorkingTable("qa_scored", "each scored record with its true person and its groups")
STORE_RECORDS = WorkingTable("qa_store_records", "every activity and registration record of the store")
STORE_PERSON_TRUE = WorkingTable(
    "qa_person_truth", "each store person's true person (most of its registrations)"
)
QA_SPINE = WorkingTable("qa_spine", "current GP registrations, one per person, for the one-pass engine run")
QA_RECORDS = WorkingTable("qa_records", "every activity record of a sample, numbered, for the one-pass run")
QA_SPINE_TRUE = WorkingTable("qa_spine_truth", "each spine row's true person, for the one-pass run")
TABLES_SPINE = WorkingTable("lt_spine", "link_tables' spine: its tokens and person_id")
TABLES_RECORDS = WorkingTable("lt_records", "link_tables' records: their tokens and record_key")


def learnt(column: str) -> WorkingTable:
    """An identifier learnt from the spine and from links of the teaching steps -> spine_row."""
    return WorkingTable(
        f"lk_learnt_{column}", f"{column} -> spine_row, from the spine and the teaching steps"
    )
