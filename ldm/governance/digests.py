"""Digests of what the store holds, so that the audit chain can commit to the data, not only to itself.

Every base table of the store is cut into partitions by the batch that wrote its rows (`batch_id`,
else `last_batch_id`, else `first_batch_id`; a table with none of these is one partition), and
each partition is summarised as (rows, digest): the digest is the sum of DuckDB's `hash` of every
whole row, so it is one scan, does not depend on the order rows are read in, and any edited,
deleted or added row changes it. The audit chain (ldm.governance.audit) records these summaries
under its MAC, and `verify` recomputes them and names each partition that differs:

    a changed row count says rows were deleted or added; the same count with another digest says
    rows were edited.

DuckDB's `hash` is fast (tens of millions of rows a second) but is DuckDB's own: each recorded
state names the DuckDB version that computed it, and a store opened by another DuckDB version is
reported as unverifiable rather than tampered.

The state an entry records is a change to the expected state: `replace` names tables (or `*` for
every table, `load:*` for every table of the load schemas, `dbt:*` for every other table) whose
recorded partitions replace the expected ones wholesale; other tables in `tables` have only the
partitions listed updated (a partition recorded with 0 rows is gone). Replaying every entry in
order gives what the store should hold now.
"""

from __future__ import annotations

import duckdb

from ldm.sql import literal, quoted

LOAD_SCHEMAS = ("main", "linkage", "governance")  # written by the loader; every other schema is dbt's
NOT_COVERED = {"governance.audit_log", "governance.audit_head"}  # the chain itself, sealed by its MAC
PARTITION_COLUMNS = ("batch_id", "last_batch_id", "first_batch_id")
WHOLE = "*"  # the partition of a table with no batch column
EVERY_TABLE, LOAD_TABLES, DBT_TABLES = "*", "load:*", "dbt:*"

Parts = dict[str, list]  # partition -> [rows, digest]
State = dict[str, Parts]  # "schema.table" -> partitions


def engine_version() -> str:
    return duckdb.__version__


def covered_tables(con: duckdb.DuckDBPyConnection, scope: str = EVERY_TABLE) -> dict[str, list[str]]:
    """Base tables of the store the audit covers, with their columns: `*`, `load:*` or `dbt:*`."""
    rows = con.execute(
        """select t.schema_name || '.' || t.table_name, list(c.column_name order by c.column_index)
           from duckdb_tables() t join duckdb_columns() c
             on c.database_name = t.database_name and c.schema_name = t.schema_name and c.table_name = t.table_name
           where t.database_name = current_database() and not t.internal and not t.temporary
           group by 1 order by 1"""
    ).fetchall()
    tables = {}
    for name, columns in rows:
        if name in NOT_COVERED:
            continue
        if _matches(name, scope):
            tables[name] = columns
    return tables


def partition_column(columns: list[str]) -> str | None:
    return next((name for name in PARTITION_COLUMNS if name in columns), None)


def table_sql(table: str, columns: list[str], batch_only: bool = False) -> str:
    """(partition, rows, digest) per partition of `table`; `batch_only` takes one batch (a parameter)."""
    schema, name = table.split(".", 1)
    source = f"{quoted(schema)}.{quoted(name)}"
    part = partition_column(columns)
    key = f"coalesce(cast(t.{quoted(part)} as varchar), 'null')" if part else literal(WHOLE)
    where = f" where t.{quoted(part)} = ?" if batch_only and part else ""
    return f"select {key}, count(*), cast(sum(hash(t)) as varchar) from {source} t{where} group by 1"


def table_digests(
    con: duckdb.DuckDBPyConnection, tables: dict[str, list[str]], batch_id: int | None = None
) -> State:
    """Partitions of each table; with `batch_id`, only that batch's partition of batch-cut tables."""
    state: State = {}
    for table, columns in tables.items():
        batch_only = batch_id is not None and partition_column(columns) is not None
        rows = con.execute(table_sql(table, columns, batch_only), [batch_id] if batch_only else []).fetchall()
        parts = {part: [count, digest] for part, count, digest in rows}
        if batch_only and str(batch_id) not in parts:
            parts[str(batch_id)] = [0, "0"]
        state[table] = parts
    return state


def _matches(table: str, pattern: str) -> bool:
    if pattern == EVERY_TABLE:
        return True
    if pattern == LOAD_TABLES:
        return table.split(".", 1)[0] in LOAD_SCHEMAS
    if pattern == DBT_TABLES:
        return table.split(".", 1)[0] not in LOAD_SCHEMAS
    return table == pattern


def apply(expected: State, change: dict) -> None:
    """Apply one entry's recorded change to the expected state (in place)."""
    replace = change.get("replace", [])
    for table in [t for t in expected if any(_matches(t, p) for p in replace)]:
        del expected[table]
    for table, parts in change.get("tables", {}).items():
        if any(_matches(table, p) for p in replace):
            expected[table] = {k: v for k, v in parts.items() if v[0]}
        else:
            merged = expected.setdefault(table, {})
            for part, value in parts.items():
                if value[0]:
                    merged[part] = value
                else:
                    merged.pop(part, None)


def differences(expected: State, actual: State) -> list[str]:
    """Each partition whose rows differ from what the chain recorded, in words."""
    found = []
    for table in sorted(set(expected) | set(actual)):
        want, have = expected.get(table, {}), actual.get(table, {})
        for part in sorted(set(want) | set(have), key=lambda p: (len(p), p)):
            (rows_want, digest_want), (rows_have, digest_have) = (
                want.get(part, [0, "0"]),
                have.get(part, [0, "0"]),
            )
            if rows_want == rows_have and (rows_want == 0 or digest_want == digest_have):
                continue
            where = f"{table}" + ("" if part == WHOLE else f" (batch {part})")
            if rows_have < rows_want:
                found.append(f"{where}: {rows_want - rows_have:,} row(s) deleted since the audit recorded it")
            elif rows_have > rows_want:
                found.append(
                    f"{where}: {rows_have - rows_want:,} row(s) added that no audit entry accounts for"
                )
            else:
                found.append(
                    f"{where}: row(s) edited since the audit recorded it (same count, other content)"
                )
    return found
