"""The Spark warehouse of a store: where `ldm run --engine spark` builds the marts, and how they come
back to the store and its audit.

The warehouse is a folder beside the store (setting `spark_dir`): Spark's Parquet tables and its
Derby metastore (ldm.spark.session). A run on Spark builds the dbt project there (build.py), then
copies the marts into the store's `marts` schema, replacing what dbt-duckdb built there before, so
that everything ldm reads the marts from (releases, the dashboard, the mart expectations, the
analysts' DuckDB queries) reads the figures Spark computed, and so that the audit chain seals them
as it seals any build (ldm.governance.seal.seal_marts). `ldm audit verify --spark-dir` then checks
the warehouse's marts against the store's under the same keyed digest (computed by DuckDB over
the Arrow batches Spark hands back, so the digest's security still rests where
ldm.governance.digests says it does).

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

from ldm.governance import digests
from ldm.sql import quoted
from ldm.store import connect

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

MARTS_SCHEMA = "marts"
SPARK_MART = "spark_mart"  # the Arrow batch of one mart, registered while it is copied


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


def mart_differences(
    store_con: duckdb.DuckDBPyConnection, marts: dict[str, pa.Table], audit_key: bytes
) -> list[str]:
    """Each way the warehouse's `marts` differ from the store's marts, by the audit's keyed digest:
    a mart missing on either side, a changed row count, or the same count with other values."""
    import duckdb

    scope = f"{MARTS_SCHEMA}.*"
    in_store = {t: c for t, c in digests.covered_tables(store_con).items() if t.startswith(scope[:-1])}
    copy = duckdb.connect()
    try:
        copy.execute(f"create schema {quoted(MARTS_SCHEMA)}")
        for name, table in marts.items():
            copy.register(SPARK_MART, table)
            copy.execute(f"create table {quoted(MARTS_SCHEMA)}.{quoted(name)} as select * from {SPARK_MART}")
            copy.unregister(SPARK_MART)
        in_warehouse = digests.covered_tables(copy)
        expected = digests.table_digests(store_con, in_store, audit_key)
        actual = digests.table_digests(copy, in_warehouse, audit_key)
    finally:
        copy.close()
    return [f"Spark warehouse: {text}" for text in digests.differences(expected, actual)]
