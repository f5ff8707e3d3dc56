"""Every row of a batch counted once, and which provider and spec a batch was read with.

Revision ID: 0004_batch_provenance_duplicates
Revises: 0003_record_digests_keyed_audit
Created: 2026-12-02

- `governance.batches.rows_duplicate`: rows that a later row of the same extract repeats (a spell
  sent twice in one file; ldm.load.records). They were counted in `rows_resent` before, together
  with records already in the store, so an IG lead could not tell a provider's export fault from an
  ordinary re-send; batches loaded before this revision keep NULL, since the two cannot be told apart
  afterwards (the comment on `rows_resent` says so).
- `governance.batches.rows_withheld`: rows not written because their person has opted out. It was
  only in `governance.opt_out_counts`, beside the records an opt-out list removed from earlier
  batches; with it, a batch's row reconciles on its own:
  rows_in = rows_quarantined + rows_duplicate + rows_resent + rows_withheld + rows_loaded.
  Filled for earlier batches from their opt-out counts (a records feed's batch records there only
  what it withheld; an opt-out list withholds nothing of its own).
- `governance.batches.provider` and `spec_name`: one feed may come from several providers, each
  with its own spec, and an IG lead must be able to say which spec read a batch. NULL for batches
  loaded before this revision (their manifests did not record them).
DuckDB cannot add a CHECK constraint by ALTER, so the reconciliation is tested, not enforced.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from ldm.sql import literal

revision: str = "0004_batch_provenance_duplicates"
down_revision: str | None = "0003_record_digests_keyed_audit"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GOVERNANCE = "governance"
COLUMNS = (
    sa.Column(
        "rows_duplicate",
        sa.BigInteger(),
        comment="Accepted rows that a later row of the same extract repeats (same record key, or same content "
        "without one): not loaded; NULL for batches loaded before ldm counted them (then in rows_resent)",
    ),
    sa.Column(
        "rows_withheld",
        sa.BigInteger(),
        comment="Accepted rows not written because their person has opted out (0 for the opt-out list itself)",
    ),
    sa.Column(
        "provider", sa.String(), comment="Provider of the feed the extract came from, as its spec names it"
    ),
    sa.Column("spec_name", sa.String(), comment="Name of the feed spec the extract was read with"),
)
RESENT_BEFORE = "Accepted rows already in the store or repeated within the extract (not loaded again)"
RESENT = (
    "Accepted rows already in the store from an earlier file (not loaded again); for batches loaded before "
    "rows_duplicate was recorded, rows repeated within the extract too"
)
BACKFILL_WITHHELD = """
update governance.batches b
set rows_withheld = case when b.feed = 'opt_out' then 0 else coalesce(c.removed, 0) end
from (select batch_id, sum(records_removed) as removed from governance.opt_out_counts group by batch_id) c
where c.batch_id = b.batch_id and b.rows_loaded is not null
"""


def _comment_resent(comment: str) -> None:
    # Alembic's alter_column(comment=...) has no DuckDB compilation; DuckDB's own statement does it.
    op.execute(f"comment on column {GOVERNANCE}.batches.rows_resent is {literal(comment)}")


def upgrade() -> None:
    for column in COLUMNS:
        op.add_column("batches", column, schema=GOVERNANCE)
    _comment_resent(RESENT)
    op.execute(BACKFILL_WITHHELD)
    op.execute(
        "update governance.batches set rows_withheld = 0 where rows_withheld is null and rows_loaded is not null"
    )


def downgrade() -> None:
    _comment_resent(RESENT_BEFORE)
    for column in reversed(COLUMNS):
        op.drop_column("batches", column.name, schema=GOVERNANCE)
