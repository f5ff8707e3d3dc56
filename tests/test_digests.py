"""The audit's table digests on tiny hand-made tables: the value every row contributes is the one the
module's docstring defines, whichever plan computes it (the keyed MD5 of a row's texts once per
distinct combination, or row by row for tables of tokens), so a chain sealed by either plan
verifies under the other."""

from __future__ import annotations

import hashlib
import hmac

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ldm.governance import digests

KEY = b"a test audit key, not a real one"


def reference(
    con: duckdb.DuckDBPyConnection, table: str, columns: list[str], batch: int | None = None
) -> dict:
    """(rows, digest) per partition, each row's value computed on its own, straight from the
    definition: the hash of the weighted sum of its fixed-width columns' hashes and of one keyed MD5
    of its length-prefixed texts."""
    fixed = [c for c in columns if not c.endswith("\x00text")]
    texts = [c.removesuffix("\x00text") for c in columns if c.endswith("\x00text")]
    weights = digests.column_weights(KEY, table, fixed)
    terms = [f"hash({c})::hugeint * {w}" for c, w in zip(fixed, weights, strict=True)]
    if texts:
        text_key = hmac.new(KEY, f"ldm text digest v2\x1f{table}".encode(), hashlib.sha256).hexdigest()
        (text_weight,) = digests.column_weights(KEY, table, ["\x00text"])
        pieces = " || ".join(
            f"coalesce(length(cast({c} as varchar))::varchar || ':' || cast({c} as varchar), '-')"
            for c in texts
        )
        terms.append(f"md5_number_lower('{text_key}' || {pieces})::hugeint * {text_weight}")
    part = digests.partition_column(columns)
    key = f"coalesce(cast({part} as varchar), 'null')" if part else "'*'"
    where = f"where {part} = {batch}" if batch is not None and part else ""
    rows = con.execute(
        f"select {key}, count(*), cast(sum(hash({' + '.join(terms)})) as varchar) from {table} {where} group by 1"
    ).fetchall()
    return {part: [count, digest] for part, count, digest in rows}


@pytest.fixture
def con():
    con = duckdb.connect()
    con.execute("create schema main_test")
    yield con
    con.close()


def covered(con, table: str) -> list[str]:
    return digests.covered_tables(con, table)[table]


ROWS = [
    (1, 10, "A", "x", 1.5),
    (1, 11, "A", "x", 2.5),  # the same texts as the row before
    (1, 12, "x", "A", None),  # the same texts in the other columns
    (1, 13, None, "Ax", 3.0),
    (1, 14, "Ax", None, 3.0),  # would run together with the row before without the length prefixes
    (2, 15, None, None, None),
    (2, 16, "", "", 0.0),  # empty, not NULL
    (None, 17, "A", "x", 1.5),
]


@pytest.mark.parametrize(
    "table, text_type",
    [
        ("main_test.events", "varchar"),  # digested once per distinct combination of texts
        ("main_test.events_token", "varchar"),  # a table of tokens: row by row
        ("main_test.amounts", "decimal(38, 2)"),  # a wide decimal enters through its text
    ],
)
def test_each_partition_is_the_sum_of_its_rows_values_as_defined(con, table, text_type):
    second = "code_token" if table.endswith("_token") else "code2"
    con.execute(
        f"create table {table} (batch_id bigint, row_number bigint, code {text_type}, {second} varchar, value double)"
    )
    rows = ROWS
    if text_type.startswith("decimal"):
        rows = [(b, n, n * 1.25 if n % 3 else None, d, v) for b, n, _, d, v in ROWS]
    con.executemany(f"insert into {table} values (?, ?, ?, ?, ?)", rows)
    columns = covered(con, table)
    assert sum(c.endswith("\x00text") for c in columns) == 2
    assert digests.table_digests(con, {table: columns}, KEY)[table] == reference(con, table, columns)
    assert digests.table_digests(con, {table: columns}, KEY, 1)[table] == reference(con, table, columns, 1)
    assert digests.table_digests(con, {table: columns}, KEY, 3)[table] == {"3": [0, "0"]}


def test_a_table_without_texts_or_batches(con):
    con.execute("create table main_test.plain (a bigint, b date)")
    con.execute("insert into main_test.plain values (1, date '2024-01-31'), (2, null)")
    columns = covered(con, "main_test.plain")
    assert digests.table_digests(con, {"main_test.plain": columns}, KEY)["main_test.plain"] == reference(
        con, "main_test.plain", columns
    )


text = st.one_of(st.none(), st.sampled_from(["", "A", "x", "Ax", "1:A", "-"]), st.text(max_size=4))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(
        st.tuples(st.sampled_from([1, 2]), st.integers(-3, 3), text, text), min_size=1, max_size=25
    ),
    edit=st.data(),
)
def test_digests_follow_the_definition_and_any_edited_text_changes_them(con, rows, edit):
    con.execute("create or replace table main_test.t (batch_id bigint, n bigint, a varchar, b varchar)")
    con.executemany("insert into main_test.t values (?, ?, ?, ?)", rows)
    columns = covered(con, "main_test.t")
    before = digests.table_digests(con, {"main_test.t": columns}, KEY)["main_test.t"]
    assert before == reference(con, "main_test.t", columns)
    # Edit one text of one row to a value no row has in that column: its partition's digest changes.
    index = edit.draw(st.integers(0, len(rows) - 1))
    column = edit.draw(st.sampled_from(["a", "b"]))
    con.execute(
        f"""update main_test.t set {column} = 'edited' where rowid = (select rowid from main_test.t
            order by rowid limit 1 offset {index})"""
    )
    after = digests.table_digests(con, {"main_test.t": columns}, KEY)["main_test.t"]
    part = str(rows[index][0])
    assert after[part] != before[part]
    assert after == reference(con, "main_test.t", columns)


def test_texts_that_a_collation_calls_equal_keep_their_own_values(con):
    """'A' and 'a' under NOCASE are one value to the column's collation, not to the digest: each row
    keeps the value of its own bytes (otherwise an edit of 'A' to 'a' could go unseen), and a column
    named like the digest's own working names (x0) is no trouble."""
    con.execute("create table main_test.coded (batch_id bigint, code varchar collate nocase, x0 varchar)")
    con.executemany(
        "insert into main_test.coded values (?, ?, ?)", [(1, "A", "x"), (1, "a", "x"), (1, "b", None)]
    )
    columns = covered(con, "main_test.coded")
    before = digests.table_digests(con, {"main_test.coded": columns}, KEY)["main_test.coded"]
    assert before == reference(con, "main_test.coded", columns)
    con.execute("update main_test.coded set code = 'a' where rowid = 0")  # the row with 'A'
    after = digests.table_digests(con, {"main_test.coded": columns}, KEY)["main_test.coded"]
    assert after == reference(con, "main_test.coded", columns) and after != before
