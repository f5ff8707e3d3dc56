"""Linkage evidence kept across batches: every identity that linked a record to a person.

Revision ID: 0008_person_evidence
Revises: 0007_deaths
Created: 2026-12-02

- `linkage.person_evidence`: one row per identity (combination of tokens) a person's records were
  linked with and that the person's evidence did not already hold, with the feed, the linkage step,
  the batch and the time it was first seen. Later batches link through every row of it, so an NHS
  number that a hospital record brought for a person whose registration has none links their GP
  events next month as well (ldm.load.evidence).
- `linkage.evidence_id_seq` numbers its rows.

The table starts empty: the store never kept the tokens of the records it loaded, so what earlier
batches knew cannot be rebuilt; every person's latest registration tokens stay in `person_keys`,
which linkage reads beside the evidence. A revision is a frozen snapshot: the columns are spelt
out here rather than read from models/, and tests/test_store.py checks that what it builds is
exactly what the models describe.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.schema import CreateSequence, DropSequence

from ldm.sql import literal

revision: str = "0008_person_evidence"
down_revision: str | None = "0007_deaths"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LINKAGE = "linkage"
SEQUENCE = sa.Sequence("evidence_id_seq", schema=LINKAGE)


def _col(name: str, type_: sa.types.TypeEngine, comment: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, type_, nullable=nullable, comment=comment, autoincrement=False)


def _token(name: str, field: str) -> sa.Column:
    return _col(name, sa.String(), f"Keyed token (HMAC-SHA256) of the normalised {field}")


def upgrade() -> None:
    op.execute(CreateSequence(SEQUENCE))
    op.create_table(
        "person_evidence",
        sa.Column(
            "evidence_id",
            sa.BigInteger(),
            server_default=sa.text(f"nextval({literal(LINKAGE + '.evidence_id_seq')})"),
            nullable=False,
            comment="Evidence row id, from linkage.evidence_id_seq",
        ),
        _col("person_id", sa.BigInteger(), "Person id (linkage.person_keys.person_id)", nullable=False),
        _col("feed", sa.String(), "Feed of the record that carried it", nullable=False),
        _col(
            "link_step",
            sa.String(),
            "How that record was linked (new_person for a founding registration)",
            nullable=False,
        ),
        _token("nhs_number_token", "NHS number (valid numbers only)"),
        _token("local_id_token", "local patient id with its issuer"),
        _token("date_of_birth_token", "date of birth"),
        _col("year_of_birth", sa.Integer(), "Year of birth as recorded"),
        _col("month_of_birth", sa.Integer(), "Month of birth as recorded"),
        _col("sex", sa.String(), "Sex: F or M"),
        _token("postcode_token", "postcode"),
        _token("postcode_district_token", "postcode district"),
        _token("surname_token", "surname"),
        _token("surname_phonetic_token", "phonetic code (NYSIIS) of the surname"),
        _token("surname_initial_token", "surname initial"),
        _token("forename_token", "forename"),
        _token("forename_phonetic_token", "phonetic code (NYSIIS) of the forename"),
        _token("forename_initial_token", "forename initial"),
        _col(
            "first_batch_id",
            sa.BigInteger(),
            "Batch in which this identity was first seen (governance.batches)",
            nullable=False,
        ),
        _col("first_seen_at", sa.DateTime(), "When that batch was loaded (UTC)", nullable=False),
        sa.PrimaryKeyConstraint("evidence_id", name="pk_person_evidence"),
        schema=LINKAGE,
        comment="Identities (token combinations) that linked records to each person, by feed and batch",
    )


def downgrade() -> None:
    op.drop_table("person_evidence", schema=LINKAGE)
    op.execute(DropSequence(SEQUENCE))
