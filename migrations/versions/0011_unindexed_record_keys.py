"""The large record tables and linkage.record_links keep their key without indexing it.

Revision ID: 0011_unindexed_record_keys
Revises: 0010_persons_stated_ethnic_category
Created: 2026-12-02

A record's key, (batch_id, row_number), is unique by construction: row_number is the record's row
in its batch's pseudonymised extract, and a batch is loaded once under a batch id of its own. DuckDB
keeps a primary key as an index that every insert updates and every checkpoint writes out; on a
city's worth of rows (17 million GP events, 23 million record links) the keys of these tables took
half the CPU time of inserting their rows (47-49 s against 25 s) and 430 MB of a 990 MB store file.
So these tables lose the constraint; the models keep the key at the mapper, and the loader checks
each batch's keys before it commits (ldm.load.unique_keys). `deaths` and `death_causes` keep
theirs: a city registers too few deaths for their index to cost anything measurable.

DuckDB cannot drop a constraint in place, so each table is rebuilt: a new table with the same
columns in the same order, with the same types, NOT NULL, defaults and comments, read from the
store's own catalog (nothing is retyped here, so nothing can drift), the rows copied, the old table
dropped and the new one given its name. No row or value changes: the audit chain's row digests are
the same, and the upgrade seals the new catalog (ldm.governance.seal.seal_upgrade), as it does for
every revision that rewrites tables. The downgrade rebuilds the tables with their primary keys; a
store that holds a key twice cannot go back, and is left as it was.

The file does not shrink at the upgrade: on a 100,000-person store (4.5 s) the blocks in use fell
from 894 to 673 of 256 KB, but the file grew from 242 MB to 300 MB, as DuckDB keeps the blocks the old
tables and their indexes held (473 free) and fills them with later writes. A new store is built
without the indexes from the start; `COPY FROM DATABASE` into a new file compacts an old one.
"""

from collections.abc import Sequence

from alembic import op

from ldm.sql import literal, quoted

revision: str = "0011_unindexed_record_keys"
down_revision: str | None = "0010_persons_stated_ethnic_category"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RECORD_KEY = ("batch_id", "row_number")
# Each table rebuilt, with the primary key it had (and has again after the downgrade).
KEYS = {
    ("main", "registrations"): RECORD_KEY,
    ("main", "gp_events"): RECORD_KEY,
    ("main", "apc_spells"): RECORD_KEY,
    ("main", "spell_diagnoses"): (*RECORD_KEY, "position"),
    ("main", "spell_procedures"): (*RECORD_KEY, "position"),
    ("main", "op_appointments"): RECORD_KEY,
    ("main", "ae_attendances"): RECORD_KEY,
    ("main", "community_contacts"): RECORD_KEY,
    ("linkage", "record_links"): RECORD_KEY,
}
REBUILT = "_rebuilt"  # suffix of the new table while both exist


def _rebuild(schema: str, table: str, key: Sequence[str]) -> None:
    """Rebuild `schema.table` as it is, with `key` as its primary key (none when empty)."""
    bind = op.get_bind()
    where = "where database_name = current_database() and schema_name = ? and table_name = ?"
    columns = bind.exec_driver_sql(
        f"""select column_name, data_type, is_nullable, column_default, comment from duckdb_columns() {where}
            order by column_index""",
        (schema, table),
    ).fetchall()
    comment = bind.exec_driver_sql(f"select comment from duckdb_tables() {where}", (schema, table)).scalar()
    definitions = [
        quoted(name)
        + f" {data_type}"
        + ("" if nullable else " not null")
        + ("" if default is None else f" default {default}")
        for name, data_type, nullable, default, _ in columns
    ]
    if key:
        definitions.append(f"primary key ({', '.join(map(quoted, key))})")
    old, new = f"{schema}.{quoted(table)}", f"{schema}.{quoted(table + REBUILT)}"
    op.execute(f"create table {new} ({', '.join(definitions)})")
    op.execute(f"insert into {new} select * from {old}")
    op.execute(f"drop table {old}")
    op.execute(f"alter table {new} rename to {quoted(table)}")
    if comment is not None:
        op.execute(f"comment on table {old} is {literal(comment)}")
    for name, *_, column_comment in columns:
        if column_comment is not None:
            op.execute(f"comment on column {old}.{quoted(name)} is {literal(column_comment)}")


def upgrade() -> None:
    for schema, table in KEYS:
        _rebuild(schema, table, ())


def downgrade() -> None:
    for (schema, table), key in KEYS.items():
        _rebuild(schema, table, key)
