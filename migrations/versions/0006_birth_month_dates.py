"""Rows with a date in the month of birth move back to its first day; dates of death become months.

Revision ID: 0006_birth_month_dates
Revises: 0005_projects_and_releases
Created: 2026-12-02

A date recorded in the month a person was born gives their date of birth back, or narrows it
down, to every analyst (a newborn's registration starts on the day of birth). The loader now moves
such rows back in time (`ldm.minimise`: every date and time of the row by the same days, so that the
earliest in the birth month falls on its first day); this revision does the same to the rows loaded
before it, with the same SQL: the birth month is the one recorded on the row or that of the person the
row is linked to. A person's date of death is then taken again from their registrations, as the
loader takes it.

Dates of death (`persons`, `registrations`) are kept as months, as the first day of the month: at city
scale an exact date of death with the MSOA singles out most of the deceased. Their column comments
say so.

No row is added or removed and no other column changes; the audit seals the rewritten tables at the
upgrade. The days cannot be restored: the downgrade puts the comments back, nothing else.
"""

from collections.abc import Sequence

from alembic import op

import models
from ldm import minimise
from ldm.sql import literal
from models.feeds import FEED_TABLES

revision: str = "0006_birth_month_dates"
down_revision: str | None = "0005_projects_and_releases"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ACTIVITY_TABLES = tuple(FEED_TABLES.values())  # every feed's table (the opt-out list has none)


def shift_sql(table: str) -> str:
    """One UPDATE that moves back the rows of an activity table with a date in a birth month."""
    dated = minimise.dated_columns(table)
    births = minimise.birth_pairs(table, "b", ("b.person_year_of_birth", "b.person_month_of_birth"))
    moved = minimise.shifted(dated, births, "b")
    own = ["year_of_birth", "month_of_birth"] if minimise.has_recorded_birth(table) else []
    read = ", ".join(f"r.{name}" for name in ["batch_id", "row_number", *dated, *own])
    return f"""update {table} set {", ".join(f"{name} = {moved[name]}" for name in dated)}
               from (select {read}, p.year_of_birth as person_year_of_birth, p.month_of_birth as person_month_of_birth
                     from {table} r left join persons p on p.person_id = r.person_id) b
               where b.batch_id = {table}.batch_id and b.row_number = {table}.row_number
                 and ({" or ".join(minimise.in_birth_month(f"b.{name}", births) for name in dated)})"""


# A death in the birth month: the person's date is the latest of their registrations' (as loaded),
# or, with none to take it from, moved to the first of that month by the same rule.
PERSONS_SQL = f"""
update persons set date_of_death = coalesce(
    (select max(r.date_of_death) from registrations r where r.person_id = persons.person_id),
    {
    minimise.shifted({"date_of_death": False}, minimise.birth_pairs("persons", "persons", None), "persons")[
        "date_of_death"
    ]
})
where {minimise.in_birth_month("date_of_death", minimise.birth_pairs("persons", "persons", None))}
"""


MONTH_ONLY = {
    "persons": {"date_of_death": "Date of death recorded by the GP system"},
    "registrations": {"date_of_death": "Date of death, when the GP system records one"},
}  # with the comments they had before this revision


def _comment(table: str, column: str, comment: str) -> None:
    # Alembic's alter_column(comment=...) has no DuckDB compilation; DuckDB's own statement does it.
    op.execute(f"comment on column {table}.{column} is {literal(comment)}")


def upgrade() -> None:
    for table in ACTIVITY_TABLES:
        op.execute(shift_sql(table))
    op.execute(PERSONS_SQL)
    for table, columns in MONTH_ONLY.items():
        for column in columns:
            op.execute(f"update {table} set {column} = {minimise.month_start(column)}")
            _comment(table, column, models.metadata.tables[table].columns[column].comment)


def downgrade() -> None:
    """The days moved cannot be put back; the comments can."""
    for table, columns in MONTH_ONLY.items():
        for column, comment in columns.items():
            _comment(table, column, comment)
