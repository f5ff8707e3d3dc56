"""Dates in the month of birth move to its first day; dates of death and registration ends become months.

Revision ID: 0006_birth_month_dates
Revises: 0005_projects_and_releases
Created: 2026-12-02

A date recorded in the month a person was born gives their date of birth back, or narrows it
down, to every analyst (a newborn's registration starts on the day of birth); an exact date of death
with a small area singles most of the deceased out. The loader now stores such dates minimised
(`ldm.minimise`); this revision does the same to the rows loaded before it, with the same SQL:

- the dates and times of a row that fall in the month of birth (recorded on the row, or that of the
  person the row is linked to) move back by the same number of days, so that the earliest is the
  first of the month;
- dates of death (`persons`, `registrations`) and registration ends are kept as months, as the first
  day of the month; their column comments say so. So is the date of death in
  `marts.mart_person_analysis` when the store has it, so that the marts hold no exact date until the
  next build.

No row is added or removed and no other column changes; the audit seals the rewritten tables at the
upgrade. The days cannot be restored: the downgrade puts the comments back, nothing else.
"""

from collections.abc import Sequence

from alembic import op

import models
from ldm import minimise
from ldm.sql import literal

revision: str = "0006_birth_month_dates"
down_revision: str | None = "0005_projects_and_releases"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Every feed's table at this revision (the opt-out list has none), spelt out: a feed added later
# (deaths, 0007) has no table yet when this revision runs.
ACTIVITY_TABLES = (
    "registrations",
    "gp_events",
    "apc_spells",
    "op_appointments",
    "ae_attendances",
    "community_contacts",
)


def minimise_sql(table: str) -> str:
    """One UPDATE that stores every date and time column of an activity table minimised."""
    dated = list(minimise.dated_columns(table))
    births = minimise.birth_pairs(table, "b", ("b.person_year_of_birth", "b.person_month_of_birth"))
    stored = minimise.minimised(table, "b", births, dated)
    own = ["year_of_birth", "month_of_birth"] if minimise.has_recorded_birth(table) else []
    read = ", ".join(f"r.{name}" for name in ["batch_id", "row_number", *dated, *own])
    return f"""update {table} set {", ".join(f"{name} = {stored[name]}" for name in dated)}
               from (select {read}, p.year_of_birth as person_year_of_birth, p.month_of_birth as person_month_of_birth
                     from {table} r left join persons p on p.person_id = r.person_id) b
               where b.batch_id = {table}.batch_id and b.row_number = {table}.row_number"""


MONTH_ONLY = {
    "persons": {"date_of_death": "Date of death recorded by the GP system"},
    "registrations": {
        "registration_end": "Date the registration ended; NULL while it is open",
        "date_of_death": "Date of death, when the GP system records one",
    },
}  # with the comments they had before this revision
PERSON_MART = ("marts", "mart_person_analysis")


def _comment(table: str, column: str, comment: str) -> None:
    # Alembic's alter_column(comment=...) has no DuckDB compilation; DuckDB's own statement does it.
    op.execute(f"comment on column {table}.{column} is {literal(comment)}")


def upgrade() -> None:
    for table in ACTIVITY_TABLES:
        op.execute(minimise_sql(table))
    persons = minimise.minimised("persons", "persons", [], ["date_of_death"])
    op.execute(f"update persons set date_of_death = {persons['date_of_death']}")
    for table, columns in MONTH_ONLY.items():
        for column in columns:
            _comment(table, column, models.metadata.tables[table].columns[column].comment)
    schema, mart = PERSON_MART
    found = op.get_bind().exec_driver_sql(
        "select count(*) from duckdb_tables() where schema_name = ? and table_name = ?", (schema, mart)
    )
    if found.scalar():
        op.execute(f"update {schema}.{mart} set date_of_death = {minimise.month_start('date_of_death')}")


def downgrade() -> None:
    """The days moved cannot be put back; the comments can."""
    for table, columns in MONTH_ONLY.items():
        for column, comment in columns.items():
            _comment(table, column, comment)
