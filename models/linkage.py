"""Linkage tables (schema `linkage`): tokens of the spine, so that person ids stay stable.

Only the pipeline and IG leads read this schema. It holds keyed tokens, never identifiers, but a
token is still a linkage key: analysts get `person_id` in `main` and nothing from here.
"""

from __future__ import annotations

import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from models.base import LINKAGE_SCHEMA, Base, mapper_key, sequence, sequence_key, table_args
from models.columns import RECORD_KEY

PERSON_ID_SEQ = sequence("person_id_seq", LINKAGE_SCHEMA)
EVIDENCE_ID_SEQ = sequence("evidence_id_seq", LINKAGE_SCHEMA)


def _token(field: str) -> Mapped[str | None]:
    return mapped_column(sa.String, comment=f"Keyed token (HMAC-SHA256) of the normalised {field}")


class PersonKey(Base):
    """One row per person on the spine, with the tokens that the deterministic steps match on.

    A later run finds an existing person by these tokens and reuses the id; a new id is drawn from
    linkage.person_id_seq only for someone never seen before.
    """

    __tablename__ = "person_keys"
    __table_args__ = table_args(
        "The linkage spine: one row per person id with the tokens used to match records to it", LINKAGE_SCHEMA
    )

    person_id: Mapped[int] = sequence_key(
        PERSON_ID_SEQ, "Pseudonymous person id, drawn once from linkage.person_id_seq and then kept"
    )
    nhs_number_token: Mapped[str | None] = _token("NHS number (valid numbers only)")
    date_of_birth_token: Mapped[str | None] = _token("date of birth")
    sex: Mapped[str | None] = mapped_column(sa.String, comment="Sex: F or M")
    postcode_token: Mapped[str | None] = _token("postcode of the latest address")
    postcode_district_token: Mapped[str | None] = _token("postcode district of the latest address")
    surname_token: Mapped[str | None] = _token("surname")
    surname_phonetic_token: Mapped[str | None] = _token("phonetic code (NYSIIS) of the surname")
    surname_initial_token: Mapped[str | None] = _token("surname initial")
    forename_token: Mapped[str | None] = _token("forename")
    forename_phonetic_token: Mapped[str | None] = _token("phonetic code (NYSIIS) of the forename")
    forename_initial_token: Mapped[str | None] = _token("forename initial")
    first_batch_id: Mapped[int | None] = mapped_column(
        sa.BigInteger, comment="Batch that created the person id (governance.batches)"
    )
    last_batch_id: Mapped[int | None] = mapped_column(
        sa.BigInteger, comment="Latest batch that updated these tokens (governance.batches)"
    )


class PersonLocalId(Base):
    """Hospital numbers seen for a person: a later record carrying only the local id still links."""

    __tablename__ = "person_local_ids"
    __table_args__ = table_args("Local (hospital) patient id tokens known for each person id", LINKAGE_SCHEMA)

    person_id: Mapped[int] = mapped_column(
        sa.BigInteger, primary_key=True, comment="Person id (linkage.person_keys.person_id)"
    )
    local_id_token: Mapped[str] = mapped_column(
        sa.String,
        primary_key=True,
        comment="Keyed token of the local patient id together with its issuing organisation",
    )
    first_batch_id: Mapped[int | None] = mapped_column(
        sa.BigInteger, comment="Batch in which this local id was first tied to the person"
    )


class PersonEvidence(Base):
    """Every identity a person's records were linked with, kept across batches and months.

    A GP registration founds a person with the identifiers it carries; a later record linked to
    them (a spell with an NHS number the registration lacked, an address the registration has not
    caught up with) adds what it knew that the person's evidence did not already hold. Later
    batches link through all of it (ldm.load.linking.spine_of). Evidence comes only from
    deterministic links, whose identifiers agreed; see governance/linkage_rules.md.
    """

    __tablename__ = "person_evidence"
    __table_args__ = table_args(
        "Identities (token combinations) that linked records to each person, by feed and batch",
        LINKAGE_SCHEMA,
    )

    evidence_id: Mapped[int] = sequence_key(EVIDENCE_ID_SEQ, "Evidence row id, from linkage.evidence_id_seq")
    person_id: Mapped[int] = mapped_column(
        sa.BigInteger, nullable=False, comment="Person id (linkage.person_keys.person_id)"
    )
    feed: Mapped[str] = mapped_column(sa.String, nullable=False, comment="Feed of the record that carried it")
    link_step: Mapped[str] = mapped_column(
        sa.String,
        nullable=False,
        comment="How that record was linked (new_person for a founding registration)",
    )
    nhs_number_token: Mapped[str | None] = _token("NHS number (valid numbers only)")
    local_id_token: Mapped[str | None] = _token("local patient id with its issuer")
    date_of_birth_token: Mapped[str | None] = _token("date of birth")
    year_of_birth: Mapped[int | None] = mapped_column(sa.Integer, comment="Year of birth as recorded")
    month_of_birth: Mapped[int | None] = mapped_column(sa.Integer, comment="Month of birth as recorded")
    sex: Mapped[str | None] = mapped_column(sa.String, comment="Sex: F or M")
    postcode_token: Mapped[str | None] = _token("postcode")
    postcode_district_token: Mapped[str | None] = _token("postcode district")
    surname_token: Mapped[str | None] = _token("surname")
    surname_phonetic_token: Mapped[str | None] = _token("phonetic code (NYSIIS) of the surname")
    surname_initial_token: Mapped[str | None] = _token("surname initial")
    forename_token: Mapped[str | None] = _token("forename")
    forename_phonetic_token: Mapped[str | None] = _token("phonetic code (NYSIIS) of the forename")
    forename_initial_token: Mapped[str | None] = _token("forename initial")
    first_batch_id: Mapped[int] = mapped_column(
        sa.BigInteger,
        nullable=False,
        comment="Batch in which this identity was first seen (governance.batches)",
    )
    first_seen_at: Mapped[datetime.datetime] = mapped_column(
        sa.DateTime, nullable=False, comment="When that batch was loaded (UTC)"
    )


class RecordLink(Base):
    """How each loaded record was linked, or why it was not: IG can audit any single link."""

    __tablename__ = "record_links"
    __table_args__ = table_args("Outcome of linkage for every loaded record, linked or not", LINKAGE_SCHEMA)
    # One row per loaded record, as many as all the record tables together: its key is not indexed
    # either (models/base.py).
    __mapper_args__ = mapper_key(*RECORD_KEY)

    batch_id: Mapped[int] = mapped_column(
        sa.BigInteger, nullable=False, comment="Record's batch (governance.batches.batch_id)"
    )
    row_number: Mapped[int] = mapped_column(
        sa.BigInteger, nullable=False, comment="Record's row in its pseudonymised extract"
    )
    person_id: Mapped[int | None] = mapped_column(
        sa.BigInteger, comment="Person the record was linked to; NULL when unlinked or ambiguous"
    )
    step: Mapped[str | None] = mapped_column(
        sa.String, comment="Linkage step that decided the outcome; NULL when no step applied"
    )
    weight: Mapped[float | None] = mapped_column(
        sa.Double, comment="Match weight of the chosen candidate (probabilistic steps), else fixed per step"
    )
    candidates: Mapped[int | None] = mapped_column(
        sa.Integer, comment="Number of candidate persons at the deciding step; 2 or more means ambiguous"
    )
    algorithm_version: Mapped[str] = mapped_column(
        sa.String, nullable=False, comment="Version of the linkage rules and model that made the decision"
    )


class OptOut(Base):
    """NHS numbers on the national data opt-out list, as tokens; their records are never loaded."""

    __tablename__ = "opt_outs"
    __table_args__ = table_args("Tokens of NHS numbers under the national data opt-out", LINKAGE_SCHEMA)

    nhs_number_token: Mapped[str] = mapped_column(
        sa.String, primary_key=True, comment="Keyed token of the opted-out NHS number"
    )
    first_batch_id: Mapped[int | None] = mapped_column(
        sa.BigInteger, comment="Opt-out list batch in which the number first appeared"
    )
