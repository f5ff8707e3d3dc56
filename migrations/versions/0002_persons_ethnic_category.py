"""Add persons.ethnic_category, filled from each person's GP registrations.

Revision ID: 0002_persons_ethnic_category
Revises: 0001_initial
Created: 2026-11-23

Ethnicity splits sit beside deprivation splits in inequality reporting, and analysts should not
each re-derive a person's category from registrations in their own way. The new column is filled
from rows already in the store, so a store that holds data keeps every row and gains the column:
the category of the person's latest registration that states one (A-S), else "Z" (not stated)
when that is all their registrations record, else NULL. Ties on the start date go to the later
batch and row, so the result does not depend on the order DuckDB reads rows in.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_persons_ethnic_category"
down_revision: str | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BACKFILL = """
update persons
set ethnic_category = latest.ethnic_category
from (
    select
        person_id,
        ethnic_category,
        row_number() over (
            partition by person_id
            order by
                ethnic_category <> 'Z' desc,
                registration_start desc nulls last,
                batch_id desc,
                "row_number" desc
        ) as rank
    from registrations
    where person_id is not null and ethnic_category is not null
) as latest
where latest.rank = 1 and latest.person_id = persons.person_id
"""


def upgrade() -> None:
    op.add_column(
        "persons",
        sa.Column(
            "ethnic_category",
            sa.String(),
            nullable=True,
            comment="NHS ethnic category code (A-S, Z not stated) from the latest registration that "
            "records one; NULL if none does",
        ),
    )
    op.execute(BACKFILL)


def downgrade() -> None:
    op.drop_column("persons", "ethnic_category")
