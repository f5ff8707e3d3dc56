"""Digests of what the store holds, so that the audit chain can commit to the data, not only to itself.

Every base table of the store is cut into partitions by the batch that wrote its rows (`batch_id`,
else `last_batch_id`, else `first_batch_id`; a table with none of these is one partition), and
each partition is summarised as (rows, digest). A row's value is DuckDB's hash of a keyed sum of
its columns' DuckDB hashes, each multiplied by a secret weight of its table and column (30 bits,
derived from the audit key) in exact 128-bit integers; the digest is the sum of the row values.
One scan, independent of row order, and any edited, deleted or added row changes it:
- DuckDB's plain row hash is public and combines columns with XOR, so an intruder could edit one
  column and fix another to keep it (an attack on an earlier version did);
- the keyed sum alone commits to each column's values but not to which row holds them (swapping
  two rows' person ids would keep it), hence the hash over it, which binds a row's columns;
- without the weights an intruder cannot compute any row's value, so cannot make edits cancel.
That leaves collisions of DuckDB's hash inside one column. For numbers, dates and times it is a
bijection, so there are none; for text it can be run backwards (printable strings with any chosen
hash take under a second), so every other column enters through one keyed MD5 of the row's
length-prefixed texts instead. Measured on 2.2 million GP events (13 columns, 4 of them text):
0.16 s with DuckDB's hash alone, 1.23 s with the text MD5, 2.85 s for a keyed MD5 of the whole
row's text.

The catalog is summarised too, one entry per object: each table's columns, types, defaults,
constraints and comments; each view's SQL; each sequence's settings and last value (not its start
value, which DuckDB rewrites at each checkpoint); each index, user type and schema; and any
function or macro (an ldm store defines none: a macro can replace a built-in function for every
query on the store, so `ldm.governance.audit.verify` refuses a store that has one). Every query
here names DuckDB's own functions in full (`system.main.*`), so a macro in the store cannot change
what is computed.

The audit chain (ldm.governance.audit) records these summaries under its MAC, and `verify`
recomputes them and names each partition that differs: a changed row count says rows were deleted
or added; the same count with another digest says rows were edited.

The state an entry records is a change to the expected state: `replace` names tables (or `*` for
every table, `load:*` for every table of the load schemas, `dbt:*` for every other table) whose
recorded partitions replace the expected ones wholesale; other tables in `tables` have only the
partitions listed updated (a partition recorded with 0 rows is gone). Replaying every entry in
order gives what the store should hold now.
"""

from __future__ import annotations

import hashlib
import hmac
import re

import duckdb

from ldm.sql import literal, quoted

LOAD_SCHEMAS = ("main", "linkage", "governance")  # written by the loader; every other schema is dbt's
NOT_COVERED = {"governance.audit_log", "governance.audit_head"}  # the chain itself, sealed by its MAC
PARTITION_COLUMNS = ("batch_id", "last_batch_id", "first_batch_id")
WHOLE = "*"  # the partition of a table with no batch column
EVERY_TABLE, LOAD_TABLES, DBT_TABLES = "*", "load:*", "dbt:*"
CATALOG = "catalog"  # the pseudo-table of catalog objects in a recorded state
SCHEME = "weighted-hash-v2"

Parts = dict[str, list]  # partition -> [rows, digest]
State = dict[str, Parts]  # "schema.table" -> partitions

_DB = "system.main.current_database()"
CATALOG_SQL = f"""
select 'table ' || t.schema_name || '.' || t.table_name,
       system.main.md5(coalesce(t.comment, '') || chr(30) || t.sql || chr(30) || system.main.string_agg(
           c.column_name || ' ' || c.data_type || ' ' || c.is_nullable::varchar || ' '
           || coalesce(c.column_default, '') || ' ' || coalesce(c.comment, ''), chr(31) order by c.column_index))
from system.main.duckdb_tables() t join system.main.duckdb_columns() c
  on c.database_name = t.database_name and c.schema_name = t.schema_name and c.table_name = t.table_name
where t.database_name = {_DB} and not t.temporary
group by t.schema_name, t.table_name, t.comment, t.sql
union all
select 'view ' || schema_name || '.' || view_name, system.main.md5(coalesce(comment, '') || chr(30) || sql)
from system.main.duckdb_views() where database_name = {_DB} and not internal and not temporary
union all
select 'sequence ' || schema_name || '.' || sequence_name,
       concat_ws(' ', increment_by, min_value, max_value, cycle, last_value)
from system.main.duckdb_sequences() where database_name = {_DB} and not temporary
union all
select 'function ' || schema_name || '.' || function_name,
       system.main.md5(coalesce(macro_definition, '') || function_type)
from system.main.duckdb_functions() where database_name = {_DB} and not internal
union all
select 'index ' || schema_name || '.' || index_name, system.main.md5(coalesce(sql, '') || coalesce(comment, ''))
from system.main.duckdb_indexes() where database_name = {_DB}
union all
select 'type ' || schema_name || '.' || type_name, system.main.md5(logical_type || coalesce(comment, ''))
from system.main.duckdb_types() where database_name = {_DB} and not internal
union all
select 'schema ' || schema_name, system.main.md5(coalesce(comment, ''))
from system.main.duckdb_schemas() where database_name = {_DB} and not internal
"""


def engine_version() -> str:
    return duckdb.__version__


def column_weights(audit_key: bytes, table: str, columns: list[str]) -> list[int]:
    """The secret weight of each column (odd, below 2^30): derived from the audit key, never stored.

    Below 2^30, so a row of up to 2^32 columns summed over 2^30 rows stays inside a HUGEINT.
    """
    weights = []
    for column in columns:
        mac = hmac.new(
            audit_key, f"ldm row digest v2\x1f{table}\x1f{column}".encode(), hashlib.sha256
        ).digest()
        weights.append(int.from_bytes(mac[:4], "big") & (2**30 - 1) | 1)
    return weights


def user_functions(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Functions and macros defined in the store itself (an ldm store has none)."""
    rows = con.execute(
        f"""select schema_name || '.' || function_name from system.main.duckdb_functions()
            where database_name = {_DB} and not internal order by 1"""
    ).fetchall()
    return [name for (name,) in rows]


# Types whose DuckDB hash is a bijection of a 64-bit value (no two values share it). Every other
# type (text above all) is digested through a keyed MD5 of its text, since DuckDB's string hash can
# be inverted: printable strings with any chosen hash are found in under a second.
FIXED_WIDTH = re.compile(
    r"(BOOLEAN|TINYINT|SMALLINT|INTEGER|BIGINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|FLOAT|DOUBLE|DATE|TIME"
    r"|TIMESTAMP( WITH TIME ZONE)?|TIMESTAMP_(S|MS|NS)|DECIMAL\(([1-9]|1[0-8]),\d+\))"
)


def covered_tables(
    con: duckdb.DuckDBPyConnection, scope: str = EVERY_TABLE, chain: bool = False
) -> dict[str, list[str]]:
    """Base tables of the store the audit covers, with their columns: `*`, `load:*` or `dbt:*`; with
    `chain`, the tables of the chain itself too (for comparing a copy of the store with it).

    A column is named `name` when its type is fixed-width and `name\x00text` otherwise (see
    `table_sql`), so that the digest of a table follows its columns' types as well as their names.
    """
    rows = con.execute(
        f"""select t.schema_name || '.' || t.table_name,
                   system.main.list(c.column_name || case when system.main.regexp_full_match(c.data_type, ?)
                                                          then '' else chr(0) || 'text' end
                                    order by c.column_index)
            from system.main.duckdb_tables() t join system.main.duckdb_columns() c
              on c.database_name = t.database_name and c.schema_name = t.schema_name and c.table_name = t.table_name
            where t.database_name = {_DB} and not t.internal and not t.temporary
            group by 1 order by 1""",
        [FIXED_WIDTH.pattern],
    ).fetchall()
    return {
        name: columns
        for name, columns in rows
        if (chain or name not in NOT_COVERED) and _matches(name, scope)
    }


def _is_text(column: str) -> bool:
    return column.endswith("\x00text")


def _name(column: str) -> str:
    return column.removesuffix("\x00text")


def partition_column(columns: list[str]) -> str | None:
    names = {_name(column) for column in columns}
    return next((name for name in PARTITION_COLUMNS if name in names), None)


def qualified(table: str) -> str:
    """`schema.table` as a quoted SQL name."""
    schema, name = table.split(".", 1)
    return f"{quoted(schema)}.{quoted(name)}"


def _row_by_row(columns: list[str]) -> bool:
    """Whether the texts of a table hardly repeat (it has keyed tokens): see `table_sql`."""
    return any(_is_text(c) and _name(c).endswith("_token") for c in columns)


def _length_prefixed(texts: list[str]) -> str:
    """The texts (SQL expressions) run together, each as its length, ':' and itself (NULL as '-')."""
    parts = ", ".join(
        f"coalesce(system.main.length({text})::varchar || ':' || {text}, '-')" for text in texts
    )
    return f"system.main.concat({parts})"


def table_sql(table: str, columns: list[str], batch_only: bool = False) -> str:
    """(partition, rows, digest) per partition of `table`.

    Named parameters (`table_parameters`): `$w0`, `$w1` ... the weight of each fixed-width column;
    when the table has other columns, `$text_weight` and `$text_key`; with `batch_only`, `$batch`
    (that batch's partition only). The other columns enter as one keyed MD5 of their text, each
    length-prefixed (NULL as '-'), so that no two rows' texts run together.

    The MD5 is computed once per distinct combination of the texts and joined back to the rows
    (on their texts, NULL matching NULL), not once per row: the value of every row is the same,
    but a table's texts are mostly codes, steps and practice codes that repeat, and at city scale
    the MD5 was most of the audit's cost (18 million GP events with 87,560 distinct combinations:
    4.9 s per row, 0.6 s per combination). The combinations are those of the texts as VARCHAR
    under the binary collation, whose equality is equality of their bytes (a column's own
    collation, e.g. NOCASE, would make 'A' and 'a' one combination), so two rows share an MD5 only
    when their texts are the same. Texts that hardly repeat (a table with keyed tokens, `*_token`,
    one per person or identity) are digested row by row, which is then the cheaper plan for the
    same values.
    """
    source = qualified(table)
    part = partition_column(columns)
    key = f"coalesce(cast(t.{quoted(part)} as varchar), 'null')" if part else literal(WHOLE)
    where = f" where t.{quoted(part)} = $batch" if batch_only and part else ""
    fixed = [c for c in columns if not _is_text(c)]
    terms = [f"system.main.hash(t.{quoted(c)})::hugeint * $w{index}" for index, c in enumerate(fixed)]
    texts = [quoted(_name(c)) for c in columns if _is_text(c)]
    joined = ""
    if texts and _row_by_row(columns):
        run_together = _length_prefixed([f"cast(t.{c} as varchar)" for c in texts])
        terms.append(
            f"$text_weight::hugeint * system.main.md5_number_lower($text_key::varchar || {run_together})::hugeint"
        )
    elif texts:
        names = [f"x{index}" for index in range(len(texts))]
        as_bytes = [f'(cast(t.{c} as varchar) collate "binary")' for c in texts]
        distinct = ", ".join(f"{text} as {name}" for text, name in zip(as_bytes, names, strict=True))
        on = " and ".join(
            f"m.{name} is not distinct from {text}" for text, name in zip(as_bytes, names, strict=True)
        )
        joined = (
            f" join (select *, system.main.md5_number_lower($text_key::varchar || {_length_prefixed(names)})"
            f" as text_md5 from (select distinct {distinct} from {source} t{where})) m on {on}"
        )
        terms.append("m.text_md5::hugeint * $text_weight")
    row = " + ".join(terms) or "0::hugeint"
    return (
        f"select {key}, system.main.count(*), cast(system.main.sum(system.main.hash({row})) as varchar) "
        f"from {source} t{joined}{where} group by 1"
    )


def table_parameters(audit_key: bytes, table: str, columns: list[str], batch_id: int | None = None) -> dict:
    """The values of `table_sql`'s parameters: the secret weights and text key (from the audit key),
    and the batch when one partition is digested."""
    weights = column_weights(audit_key, table, [c for c in columns if not _is_text(c)])
    parameters: dict = {f"w{index}": weight for index, weight in enumerate(weights)}
    if any(_is_text(c) for c in columns):
        parameters["text_key"] = hmac.new(
            audit_key, f"ldm text digest v2\x1f{table}".encode(), hashlib.sha256
        ).hexdigest()
        (parameters["text_weight"],) = column_weights(audit_key, table, ["\x00text"])
    if batch_id is not None:
        parameters["batch"] = batch_id
    return parameters


def table_digests(
    con: duckdb.DuckDBPyConnection,
    tables: dict[str, list[str]],
    audit_key: bytes,
    batch_id: int | None = None,
) -> State:
    """Partitions of each table; with `batch_id`, only that batch's partition of batch-cut tables."""
    state: State = {}
    for table, columns in tables.items():
        batch_only = batch_id is not None and partition_column(columns) is not None
        parameters = table_parameters(audit_key, table, columns, batch_id if batch_only else None)
        rows = con.execute(table_sql(table, columns, batch_only), parameters)
        parts = {part: [count, digest] for part, count, digest in rows.fetchall()}
        if batch_only and str(batch_id) not in parts:
            parts[str(batch_id)] = [0, "0"]
        state[table] = parts
    return state


def catalog_digest(con: duckdb.DuckDBPyConnection) -> Parts:
    """One part per catalog object (tables, views, sequences, functions) with a digest of its definition."""
    return {name: [1, digest] for name, digest in con.execute(CATALOG_SQL).fetchall()}


def _matches(table: str, pattern: str) -> bool:
    if pattern == EVERY_TABLE:
        return True
    if pattern == LOAD_TABLES:
        return table.split(".", 1)[0] in LOAD_SCHEMAS
    if pattern == DBT_TABLES:
        return table.split(".", 1)[0] not in LOAD_SCHEMAS and table != CATALOG
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
    """Each partition (or catalog object) that differs from what the chain recorded, in words."""
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
            if table == CATALOG:
                change = (
                    "removed" if rows_have < rows_want else "added" if rows_have > rows_want else "changed"
                )
                found.append(f"catalog: {part} {change} since the audit recorded it")
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
