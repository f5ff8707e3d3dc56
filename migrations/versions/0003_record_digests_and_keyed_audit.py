"""Re-sends recognised by record, and an audit chain keyed under the master key that covers the store.

Revision ID: 0003_record_digests_keyed_audit
Revises: 0002_persons_ethnic_category
Created: 2026-12-02

- Each activity table gains `record_digest`: a digest of the record as it crossed the seam, so a
  record sent again in a later file (the same rows under a new checksum) is recognised and not
  loaded twice. Rows loaded before this revision keep NULL: a re-send of them under the feed's
  record key is treated as a revision and replaces them, so nothing is counted twice.
- `governance.batches` counts what a batch recognised: rows already loaded (re-sent) and rows that
  replaced an earlier version of the same record (revised).
- `governance.audit_log.scheme` says how an entry is sealed: NULL for the unkeyed SHA-256 chain
  of earlier versions, 'hmac-sha256' for entries keyed under the audit purpose key.
- `governance.audit_head` keeps the newest entry of the chain inside the store, under a MAC, so
  that deleting the anchor file beside the store cannot hide entries cut from the end.

The first keyed write after this revision seals the whole store (ldm.governance.audit).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_record_digests_keyed_audit"
down_revision: str | None = "0002_persons_ethnic_category"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GOVERNANCE = "governance"
ACTIVITY_TABLES = (
    "registrations",
    "gp_events",
    "apc_spells",
    "op_appointments",
    "ae_attendances",
    "community_contacts",
)
RECORD_DIGEST_COMMENT = (
    "Digest of the record's pseudonymised content (63 bits of DuckDB's hash): recognises the same record sent again; "
    "NULL for rows loaded before ldm recorded it"
)


def upgrade() -> None:
    for table in ACTIVITY_TABLES:
        op.add_column(table, sa.Column("record_digest", sa.BigInteger(), comment=RECORD_DIGEST_COMMENT))
    op.add_column(
        "batches",
        sa.Column(
            "rows_resent",
            sa.BigInteger(),
            comment="Accepted rows already in the store or repeated within the extract (not loaded again)",
        ),
        schema=GOVERNANCE,
    )
    op.add_column(
        "batches",
        sa.Column(
            "rows_revised",
            sa.BigInteger(),
            comment="Accepted rows that replaced an earlier version of the same record (same record key)",
        ),
        schema=GOVERNANCE,
    )
    op.add_column(
        "audit_log",
        sa.Column(
            "scheme",
            sa.String(),
            comment="How entry_hash seals the entry: 'hmac-sha256' under the audit key; NULL for the unkeyed "
            "SHA-256 of entries written before keyed audit",
        ),
        schema=GOVERNANCE,
    )
    op.create_table(
        "audit_head",
        sa.Column("head_id", sa.SmallInteger(), primary_key=True, autoincrement=False, comment="Always 1"),
        sa.Column("seq", sa.BigInteger(), nullable=False, comment="seq of the newest audit entry"),
        sa.Column("entry_hash", sa.String(), nullable=False, comment="entry_hash of the newest audit entry"),
        sa.Column(
            "head_mac", sa.String(), nullable=False, comment="HMAC of (seq, entry_hash) under the audit key"
        ),
        schema=GOVERNANCE,
        comment="The newest entry of the audit chain, kept in the store under a MAC",
    )


def downgrade() -> None:
    op.drop_table("audit_head", schema=GOVERNANCE)
    op.drop_column("audit_log", "scheme", schema=GOVERNANCE)
    op.drop_column("batches", "rows_revised", schema=GOVERNANCE)
    op.drop_column("batches", "rows_resent", schema=GOVERNANCE)
    for table in ACTIVITY_TABLES:
        op.drop_column(table, "record_digest")
