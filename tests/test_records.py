"""Records recognised inside one seam file (ldm.load.records.in_file_sql), on tiny hand-made files:
the last row of each record is kept, every earlier one is a duplicate, and a missing key is a key."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from ldm.dialects import current as dialect
from ldm.load import records

COLUMNS = ["row_number", "practice_code", "record_id", "value"]


def recognised(tmp_path: Path, rows: list[tuple], record_key: tuple[str, ...]) -> dict[int, bool]:
    con = duckdb.connect()
    try:
        con.execute(
            "create table seam (row_number bigint, practice_code varchar, record_id bigint, value double)"
        )
        con.executemany("insert into seam values (?, ?, ?, ?)", rows)
        path = tmp_path / "seam.parquet"
        con.execute(dialect().write_parquet("select * from seam", path))
        sql = records.in_file_sql(dialect().parquet(path), COLUMNS, record_key)
        return dict(con.execute(f"select row_number, duplicate from ({sql})").fetchall())
    finally:
        con.close()


KEYED = [
    (1, "P1", 10, 1.0),
    (2, "P1", 11, 1.0),
    (3, "P1", 10, 2.0),  # record (P1, 10) again: row 1 is a duplicate
    (4, "P2", 10, 1.0),  # another practice's record 10: its own record
    (5, None, 12, 1.0),
    (6, None, 12, 1.0),  # a missing practice code is a key like any other: row 5 is a duplicate
    (7, "P1", None, 3.0),
    (8, "P1", 10, 2.0),  # record (P1, 10) a third time: rows 1 and 3 are duplicates
]


@pytest.mark.parametrize(
    ("rows", "record_key", "duplicates"),
    [
        (KEYED, ("practice_code", "record_id"), {1, 3, 5}),
        # No record key: a record is its content (the digest of every column but the row number).
        (KEYED, (), {3, 5}),
        ([(1, "P1", 10, 1.0)], ("practice_code", "record_id"), set()),
        ([(1, None, None, None), (2, None, None, None)], ("practice_code", "record_id"), {1}),
    ],
)
def test_each_record_keeps_its_last_row(tmp_path, rows, record_key, duplicates):
    found = recognised(tmp_path, rows, record_key)
    assert sorted(found) == [row[0] for row in rows]  # one row per seam row
    assert {row for row, duplicate in found.items() if duplicate} == duplicates
