"""The Spark warehouse of a store: where `ldm run --engine spark` builds the marts, and how they come
back to the store and its audit.

The warehouse is a folder beside the store (setting `spark_dir`): Spark's Parquet tables and its
Derby metastore (ldm.spark.session). A run on Spark builds the dbt project there (build.py), then
copies the marts into the store's `marts` schema, replacing what dbt-duckdb built there before, so
that everything ldm reads the marts from (releases, the dashboard, the mart expectations, the
analysts' DuckDB queries) reads the figures Spark computed, and so that the audit chain seals them
as it seals any build (ldm.governance.seal.seal_marts). `ldm audit verify --spark-dir` then checks
every table the warehouse holds that the audit covers against the store's under the same keyed
digest: the marts, the store's analyst and governance tables copied into it (ldm.spark.tables), and
the audit chain among them, so that the chain lives beside the data it seals. The digests are
computed by DuckDB over the warehouse's Parquet files, read where they lie, so the digest's
security still rests where ldm.governance.digests says it does.

A failed run leaves the warehouse as it was: the folder is copied aside before the build and put
back if anything fails (a copy, not a move, because the metastore records each table's location as
an absolute path in the folder). A copy left aside by a killed run is put back at the next start.
The store's other dbt schemas (intermediate, staging, reference) are dropped from the store when
the marts come from Spark: they live in the warehouse, and a stale copy of them in the store would
disagree with the marts beside it.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from ldm.errors import LdmError
from ldm.governance import digests
from ldm.spark.tables import COPIED_SCHEMAS, store_tables
from ldm.sql import quoted
from ldm.store import connect

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

MARTS_SCHEMA = "marts"
WAREHOUSE_SCHEMAS = (*COPIED_SCHEMAS, MARTS_SCHEMA)  # what the warehouse holds that the audit covers
SPARK_MART = "spark_mart"  # the rows of one warehouse table (Arrow or Parquet), while they are copied


def aside(warehouse: Path) -> Path:
    """Where the warehouse is kept while a run builds in it."""
    return warehouse.with_name(warehouse.name + ".before-run")


def restore_if_left(warehouse: Path) -> None:
    """Put back a warehouse a killed run left aside (it is the last good one)."""
    kept = aside(warehouse)
    if kept.exists():
        shutil.rmtree(warehouse, ignore_errors=True)
        kept.rename(warehouse)


def set_aside(warehouse: Path) -> None:
    """Copy the warehouse aside before a run builds in it."""
    restore_if_left(warehouse)
    if warehouse.exists():
        shutil.copytree(warehouse, aside(warehouse), symlinks=True)


def put_back(warehouse: Path) -> None:
    """After a failed run: the warehouse as it was before it."""
    if aside(warehouse).exists():
        restore_if_left(warehouse)
    else:
        shutil.rmtree(warehouse, ignore_errors=True)  # it was new: nothing built in it is kept


def release(warehouse: Path) -> None:
    """After a run that succeeded: the copy set aside is no longer needed."""
    shutil.rmtree(aside(warehouse), ignore_errors=True)


def dbt_schemas(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The store's schemas that dbt writes (every one outside the loader's)."""
    rows = con.execute(
        "select schema_name from duckdb_schemas() where database_name = current_database() and not internal "
        "order by 1"
    ).fetchall()
    return [name for (name,) in rows if name not in digests.LOAD_SCHEMAS]


def replace_store_marts(store: Path, marts: dict[str, pa.Table]) -> None:
    """Make the store's `marts` schema hold exactly `marts` (name -> rows), in one transaction, and
    drop the store's other dbt schemas."""
    con = connect(store)
    try:
        con.begin()
        for schema in dbt_schemas(con):
            con.execute(f"drop schema {quoted(schema)} cascade")
        con.execute(f"create schema {quoted(MARTS_SCHEMA)}")
        for name, table in sorted(marts.items()):
            con.register(SPARK_MART, table)
            con.execute(f"create table {quoted(MARTS_SCHEMA)}.{quoted(name)} as select * from {SPARK_MART}")
            con.unregister(SPARK_MART)
        con.commit()
    finally:
        con.close()


def _store_columns(con: duckdb.DuckDBPyConnection, tables: list[str]) -> dict[str, list[tuple[str, str]]]:
    """(column, type) of each of the store's `tables` ("schema.table"), in the store's order."""
    rows = con.execute(
        """select schema_name || '.' || table_name, list((column_name, data_type) order by column_index)
           from duckdb_columns() where database_name = current_database() group by 1"""
    ).fetchall()
    found = {name: columns for name, columns in rows}
    return {table: [tuple(column) for column in found[table]] for table in tables if table in found}


def _copy_in(
    copy: duckdb.DuckDBPyConnection, table: str, rows: list[str] | pa.Table, columns: list[tuple[str, str]]
) -> None:
    """`table` of the warehouse into the `copy`, its columns in the store's order (a column order is no
    content). A time stamp with a time zone in the store is one without in Spark (its TIMESTAMP_NTZ,
    written in UTC: ldm.spark.tables), so it is read back as the instant it was; every other type is
    kept as it is, so that a changed type changes the digest."""
    if isinstance(rows, list):
        copy.read_parquet(rows).create_view(SPARK_MART)  # the paths never enter SQL text
    else:
        copy.register(SPARK_MART, rows)
    try:
        have = dict(copy.execute(f"select column_name, column_type from (describe {SPARK_MART})").fetchall())
        if columns and {name for name, _ in columns} == set(have):
            select = ", ".join(
                f"cast({quoted(name)} as timestamptz) as {quoted(name)}"
                if kind == "TIMESTAMP WITH TIME ZONE" and have[name] == "TIMESTAMP"
                else quoted(name)
                for name, kind in columns
            )
        else:
            select = "*"  # other columns than the store's: the digests differ, and say so
        copy.execute(f"create table {digests.qualified(table)} as select {select} from {SPARK_MART}")
    finally:
        if isinstance(rows, list):
            copy.execute(f"drop view {SPARK_MART}")
        else:
            copy.unregister(SPARK_MART)


def _schema(table: str) -> str:
    return table.split(".", 1)[0]


def warehouse_differences(
    store_con: duckdb.DuckDBPyConnection,
    tables: dict[str, list[str] | pa.Table],
    audit_key: bytes,
    scratch: Path | None = None,
) -> list[str]:
    """Each way the warehouse's tables differ from the store's under the audit's keyed digest: a table
    missing on either side, a changed row count, or the same count with other values.

    `tables` are the warehouse's ("schema.table": its Parquet files, or its rows). They are compared
    with the store's copied tables (those of models/ in COPIED_SCHEMAS, the audit chain among them,
    which the chain's MAC seals in the store; not Alembic's own bookkeeping) and its marts; any other
    table in the warehouse's schemas is reported as added. The store has been verified against its
    chain first (`ldm audit verify`), so a warehouse that equals it holds what the chain recorded, and
    a warehouse whose chain is the store's holds its audit beside its data. The digests are DuckDB's
    (ldm.governance.digests), computed on a scratch DuckDB (a file in `scratch`, else in memory) that
    the warehouse's rows are read into.
    """
    import duckdb

    copied = {table.key for table in store_tables()}
    in_store = {
        t: c
        for t, c in digests.covered_tables(store_con, chain=True).items()
        if t in copied or _schema(t) == MARTS_SCHEMA
    }
    columns = _store_columns(store_con, list(in_store))
    scratch_file = scratch / "warehouse-check.duckdb" if scratch else None
    if scratch_file:
        scratch_file.unlink(missing_ok=True)  # left by a check that was killed
    copy = duckdb.connect(str(scratch_file) if scratch_file else ":memory:")
    try:
        copy.execute("set TimeZone = 'UTC'")  # the zone Spark's sessions write their time stamps in
        for schema in WAREHOUSE_SCHEMAS:
            copy.execute(f"create schema if not exists {quoted(schema)}")
        for name, rows in sorted(tables.items()):
            if _schema(name) in WAREHOUSE_SCHEMAS:
                try:
                    _copy_in(copy, name, rows, columns.get(name, []))
                except duckdb.Error as error:
                    raise LdmError(f"Spark warehouse: {name} cannot be read: {error}") from None
        in_warehouse = digests.covered_tables(copy, chain=True)
        expected = digests.table_digests(store_con, in_store, audit_key)
        actual = digests.table_digests(copy, in_warehouse, audit_key)
    finally:
        copy.close()
        if scratch_file:
            scratch_file.unlink(missing_ok=True)
    return [f"Spark warehouse: {text}" for text in digests.differences(expected, actual)]
