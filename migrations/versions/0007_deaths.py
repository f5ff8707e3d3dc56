"""Registered deaths (civil registration, Primary Care Mortality Database shape) and their causes.

Revision ID: 0007_deaths
Revises: 0006_birth_month_dates
Created: 2026-12-03

- `deaths`: one row per death registration, keyed like every activity table by (batch_id,
  row_number), with its link to a person, the month of death and of registration (the day is never
  stored: ldm.minimise), the place of death as an ONS category, and the demographics recorded on the
  registration (the areas of the postcode of usual residence, the age at death).
- `death_causes`: the ICD-10 causes of each death, one row each; position 0 is the underlying
  cause, 1 and up the contributing causes in the order sent, as `spell_diagnoses` holds a spell's.

Both tables are new and empty, so no row of the store changes. A revision is a frozen snapshot: the
columns are spelt out here rather than read from models/, and tests/test_store.py checks that what
it builds is exactly what the models describe.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_deaths"
down_revision: str | None = "0006_birth_month_dates"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _col(name: str, type_: sa.types.TypeEngine, comment: str, nullable: bool = True) -> sa.Column:
    # autoincrement=False: an integer key here is never SERIAL (DuckDB has none).
    return sa.Column(name, type_, nullable=nullable, comment=comment, autoincrement=False)


def _text(name: str, comment: str) -> sa.Column:
    return _col(name, sa.String(), comment)


def _activity_key() -> list[sa.Column]:
    return [
        _col(
            "batch_id",
            sa.BigInteger(),
            "Load batch the record arrived in (governance.batches.batch_id); with row_number, the key",
            nullable=False,
        ),
        _col(
            "row_number",
            sa.BigInteger(),
            "Row of the record in its pseudonymised extract, from 1; with batch_id, the key",
            nullable=False,
        ),
        _col(
            "record_id",
            sa.BigInteger(),
            "The provider's own record identifier as sent (identifies the record, not the person)",
        ),
        _col(
            "person_id",
            sa.BigInteger(),
            "Pseudonymous person (persons.person_id); NULL when linkage found no single match "
            "(unlinked records are kept, never dropped)",
        ),
        _text(
            "link_step",
            "Linkage step that linked the record (see governance/ linkage rules); NULL when unlinked",
        ),
        _col(
            "link_weight",
            sa.Double(),
            "Match weight of the link (higher is more certain); NULL when unlinked",
        ),
        _col(
            "nhs_number_valid",
            sa.Boolean(),
            "True when the record carried an NHS number that passes the Modulus 11 check; "
            "false when it was missing or invalid",
        ),
    ]


def _recorded_demographics() -> list[sa.Column]:
    small = sa.SmallInteger()
    return [
        _col("year_of_birth", small, "Year of birth as recorded on the record"),
        _col("month_of_birth", small, "Month of birth (1-12) as recorded"),
        _text("sex", "Sex as recorded: F or M (NULL if not known)"),
        _text("lsoa21_code", "2021 LSOA of the recorded postcode (ONS code); NULL if out of area or unknown"),
        _text("lsoa11_code", "2011 LSOA of the recorded postcode (ONS code)"),
        _text("msoa11_code", "2011 MSOA of the recorded postcode (ONS code)"),
        _text("ward_code", "Electoral ward of the recorded postcode (ONS code)"),
        _col("imd_decile", small, "IMD 2019 decile of the 2011 LSOA: 1 most deprived, 10 least deprived"),
        _col("imd_quintile", small, "IMD 2019 quintile of the 2011 LSOA: 1 most deprived, 5 least deprived"),
        _col(
            "age_at_event",
            small,
            "Age in whole years on the date of the event, from the recorded date of birth",
        ),
    ]


def _record_digest() -> sa.Column:
    return _col(
        "record_digest",
        sa.BigInteger(),
        "Digest of the record's pseudonymised content (63 bits of DuckDB's hash): recognises the same record "
        "sent again; NULL for rows loaded before ldm recorded it",
    )


def upgrade() -> None:
    op.create_table(
        "deaths",
        *_activity_key(),
        _col("date_of_death", sa.Date(), "Month of death, as its first day (the day is not kept)"),
        _col(
            "registration_date",
            sa.Date(),
            "Month the death was registered, as its first day (the day is not kept)",
        ),
        _text(
            "place_of_death",
            "Place of death, ONS categories: HOME the usual residence, CARE_HOME a care home, HOSPITAL, "
            "HOSPICE, OTHER_COMMUNAL another communal establishment, ELSEWHERE any other place",
        ),
        *_recorded_demographics(),
        _record_digest(),
        sa.PrimaryKeyConstraint("batch_id", "row_number", name="pk_deaths"),
        comment="Registered deaths (civil registration, PCMD shape), one row per death registration; "
        "causes of death in death_causes",
    )
    op.create_table(
        "death_causes",
        _col("batch_id", sa.BigInteger(), "Death's batch (deaths.batch_id)", nullable=False),
        _col("row_number", sa.BigInteger(), "Death's row (deaths.row_number)", nullable=False),
        _col(
            "position",
            sa.SmallInteger(),
            "0 for the underlying cause of death, 1 and up for contributing causes in the order sent",
            nullable=False,
        ),
        _col("icd10_code", sa.String(), "ICD-10 code without the dot, e.g. I219", nullable=False),
        sa.PrimaryKeyConstraint("batch_id", "row_number", "position", name="pk_death_causes"),
        comment="ICD-10 causes of each death; position 0 is the underlying cause of death",
    )


def downgrade() -> None:
    op.drop_table("death_causes")
    op.drop_table("deaths")
