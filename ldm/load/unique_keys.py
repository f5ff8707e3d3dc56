"""Check a batch's record keys, which the large tables keep without an index.

A record's key, (batch_id, row_number), is unique by construction: every batch gets a batch id of
its own, row_number is the record's row in the batch's extract, and each record goes in once. So
the large record tables and linkage.record_links do not index it (models/base.py): the index was
half the CPU time of inserting their rows. What construction promises is still checked where a
duplicate could first appear: in the batch being loaded, before it commits, so that a key found
twice stops the batch and the store stays as it was.

Grouping a city's batch by key (17 million GP events and as many record links) took 3 to 4 s of CPU
per table, against the 6 to 14 s its index cost. The rest of a key after batch_id is a small integer range
(row numbers from 1, positions from 0), so instead each table's keys are numbered within that range
and set as bits of one bitmap (DuckDB's `bitstring_agg`, through the dialect): the keys are unique when as many bits are
set as there are rows. That takes 0.1-0.2 s per table. Only a table that fails it, or whose range is
too wide for a bitmap (no extract ldm writes has one), is grouped by key, to name the duplicate.
Tables the batch did not write cost next to nothing: DuckDB skips their row groups by batch_id.
"""

from __future__ import annotations

import math

import models  # noqa: F401 - registers every table, so that unindexed_keys() sees them all
from ldm.dialects import current as dialect
from ldm.errors import LdmError
from ldm.sql import quoted
from models.base import unindexed_keys

BATCH = "batch_id"  # the first column of every key; one batch is checked at a time
BITMAP_BITS = 2**28  # 32 MB at most: a wider range of keys is grouped instead


def ranges_sql(keys: dict[str, tuple[str, ...]]) -> str:
    """Per table of `keys`, in order: its rows in the batch `$1`, and the lowest and highest value of
    each key column after batch_id."""
    parts = []
    for order, (table, key) in enumerate(keys.items()):
        lows = dialect().array([f"cast(min({quoted(column)}) as bigint)" for column in key[1:]])
        highs = dialect().array([f"cast(max({quoted(column)}) as bigint)" for column in key[1:]])
        parts.append(f"select {order}, count(*), {lows}, {highs} from {table} where {BATCH} = $1")
    return " union all ".join(parts)


def surplus_sql(table: str, columns: tuple[str, ...], lows: list[int], highs: list[int]) -> str:
    """The rows of the batch `$1` in `table` less its distinct keys: each key is numbered in the
    columns' ranges (mixed radix, from 0) and set in a bitmap of as many bits as the ranges allow."""
    widths = [high - low + 1 for low, high in zip(lows, highs, strict=True)]
    terms = [
        f"({quoted(column)} - {low}) * {math.prod(widths[i + 1 :])}"
        for i, (column, low) in enumerate(zip(columns, lows, strict=True))
    ]
    distinct = dialect().distinct_in_range(" + ".join(terms), 0, math.prod(widths) - 1)
    return f"select count(*) - {distinct} from {table} where {BATCH} = $1"


def duplicates_sql(table: str, key: tuple[str, ...]) -> str:
    """The first key (its values, in order) that the batch `$1` holds more than once in `table`, and
    how many times."""
    columns = ", ".join(map(quoted, key))
    key_values = dialect().array([f"cast({quoted(column)} as bigint)" for column in key])
    return f"""select {key_values} as key_values, count(*)
               from {table} where {BATCH} = $1 group by {columns} having count(*) > 1
               order by key_values limit 1"""


def check_unique_keys(con, batch_id: int) -> None:
    """Raise LdmError naming the table, the batch and the first key the batch holds twice, if any."""
    keys = unindexed_keys()
    tables = list(keys)
    for order, rows, lows, highs in con.execute(ranges_sql(keys), [batch_id]).fetchall():
        table = tables[order]
        if rows < 2:
            continue
        if math.prod(high - low + 1 for low, high in zip(lows, highs, strict=True)) <= BITMAP_BITS:
            surplus = con.execute(surplus_sql(table, keys[table][1:], lows, highs), [batch_id]).fetchall()
            if not surplus[0][0]:
                continue
        found = con.execute(duplicates_sql(table, keys[table]), [batch_id]).fetchall()
        if found:
            values, copies = found[0]
            raise LdmError(
                f"{table}: batch {batch_id} holds the key ({', '.join(keys[table])}) = "
                f"({', '.join(map(str, values))}) {copies} times; nothing of the batch was loaded (a key is "
                "unique by construction: was its seam file made by another program?)"
            )
