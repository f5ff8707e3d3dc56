"""The probabilistic linkage step's models, kept for IG.

Revision ID: 0009_linkage_models
Revises: 0008_person_evidence
Created: 2026-12-03

- `governance.linkage_models`: one row per Fellegi-Sunter model the probabilistic step trained,
  written in the transaction of the batch that trained it (so that batch's audit digests cover it):
  m and u of every comparison level, the prior, blocking rules, threshold and margin, what it was
  trained on, the Splink version, and Splink's own model JSON, from which later batches score with
  the same model while the data have not changed materially (ldm.linkage.probabilistic). Every
  probabilistic link names its model in record_links.algorithm_version (`...+fs:<model_id>`).

The table is new and empty: models trained before it were never kept, so the links they made name
no model. A revision is a frozen snapshot: the columns are spelt out here rather than read from
models/, and tests/test_store.py checks that what it builds is exactly what the models describe.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_linkage_models"
down_revision: str | None = "0008_person_evidence"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GOVERNANCE = "governance"


def _col(name: str, type_: sa.types.TypeEngine, comment: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, type_, nullable=nullable, comment=comment, autoincrement=False)


def upgrade() -> None:
    op.create_table(
        "linkage_models",
        _col(
            "model_id",
            sa.String(),
            "First 16 hex digits of the SHA-256 of model_json; links name it as fs:<model_id>",
            nullable=False,
        ),
        _col(
            "batch_id",
            sa.BigInteger(),
            "Batch that trained the model (governance.batches.batch_id)",
            nullable=False,
        ),
        _col("trained_at", sa.DateTime(timezone=True), "When the model was trained (UTC)", nullable=False),
        _col(
            "fingerprint",
            sa.String(),
            "Digest of the comparisons, blocking rules, training scheme, threshold, margin and Splink version: "
            "a later batch reuses the model only under the same fingerprint",
            nullable=False,
        ),
        _col("algorithm_version", sa.String(), "ldm linkage version and training scheme", nullable=False),
        _col("splink_version", sa.String(), "Splink version that scored with it", nullable=False),
        _col(
            "compared",
            sa.String(),
            "Comparisons the undecided training records carried (comma-separated); reused only for the same",
            nullable=False,
        ),
        _col(
            "prior",
            sa.Double(),
            "Prior match probability of a record-person pair that Splink starts each weight from",
            nullable=False,
        ),
        _col(
            "blocked_prior",
            sa.Double(),
            "Share of the undecided records' blocked record-person pairs expected to match",
        ),
        _col(
            "blocked_share",
            sa.Double(),
            "Share of all record-person pairs that blocking compares (P(blocked | non-match))",
        ),
        _col(
            "blocking_recall",
            sa.Double(),
            "Share of records linked by NHS number whose person blocking finds (P(blocked | match))",
        ),
        _col("threshold", sa.Double(), "Match weight a link must reach", nullable=False),
        _col(
            "margin",
            sa.Double(),
            "Match weight by which the best person must lead every other",
            nullable=False,
        ),
        _col(
            "blocking_rules",
            sa.String(),
            "Blocking rules as a JSON list of SQL conditions",
            nullable=False,
        ),
        _col(
            "parameters",
            sa.String(),
            "m, u and match weight of every level of every comparison, as JSON",
            nullable=False,
        ),
        _col(
            "model_json",
            sa.String(),
            "The model as Splink's settings JSON (comparisons with m and u per level, prior, blocking rules)",
            nullable=False,
        ),
        _col("spine_persons", sa.BigInteger(), "Persons on the spine when it was trained", nullable=False),
        _col(
            "training_records",
            sa.BigInteger(),
            "Record combinations trained on (undecided and anchors)",
            nullable=False,
        ),
        _col(
            "training_undecided",
            sa.BigInteger(),
            "Of those, combinations the trace steps left undecided",
            nullable=False,
        ),
        _col("training_pairs", sa.BigInteger(), "Blocked record-person pairs EM was run on", nullable=False),
        _col(
            "em_iterations",
            sa.Integer(),
            "EM iterations (both passes) until the parameters settled",
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("model_id", name="pk_linkage_models"),
        schema=GOVERNANCE,
        comment="Probabilistic linkage models: m and u per comparison level, prior, blocking rules, decision rule",
    )


def downgrade() -> None:
    op.drop_table("linkage_models", schema=GOVERNANCE)
