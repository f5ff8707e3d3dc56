"""Recognising a record the store already holds, so that nothing is loaded twice.

A file checksum recognises only the same bytes; providers re-send the same records in new files
(next month's extract with one more blank line, two overlapping files, a full snapshot). So each
record is recognised by the feed's record key (the provider's own id, from the feed spec) where it
has one, and by a digest of its whole pseudonymised content otherwise:

- same key, same content: re-sent, counted and not loaded again (so is a row that repeats an
  earlier row of the same file exactly: a spell sent twice);
- same key, other content: a revision (a spell discharged since, a registration ended), which
  replaces the earlier version of the record, as a SUS resubmission does;
- no key: a record with exactly the same content is re-sent.

The digest is 63 bits of DuckDB's `hash` over the record's columns as they crossed the seam, in
name order, less `row_number` (its place in the file, which a re-send may change).
"""

from __future__ import annotations

from collections.abc import Sequence

from ldm.sql import quoted

NOT_CONTENT = {"row_number", "record_digest"}


def digest_sql(columns: Sequence[str], alias: str = "") -> str:
    """The record digest over the seam's `columns` (63 bits, so it fits a BIGINT)."""
    prefix = f"{alias}." if alias else ""
    content = ", ".join(prefix + quoted(name) for name in sorted(set(columns) - NOT_CONTENT))
    return f"cast(hash({content}) & 9223372036854775807 as bigint)"


def matches_sql(seam: str, table: str, columns: Sequence[str], record_key: Sequence[str]) -> str:
    """Rows of the seam file (a `read_parquet(...)` relation) that are records ldm already has.

    One row per such seam row: its row_number, `same` (re-sent: the store holds this very record,
    or an earlier row of the same file repeats it exactly) and `earlier`, the (batch_id, row_number)
    of the stored versions it matches by key, which a revision (not `same`) replaces.
    """
    if record_key:
        on = " and ".join(f"x.{quoted(name)} is not distinct from s.{quoted(name)}" for name in record_key)
    else:
        on = "x.record_digest = s.record_digest"
    keys = "".join(f", {quoted(name)}" for name in record_key)
    return f"""with s as (select row_number, {digest_sql(columns)} as record_digest{keys} from {seam})
               select row_number, bool_or(same) as same,
                      list(earlier) filter (where earlier is not null) as earlier
               from (select s.row_number, coalesce(x.record_digest = s.record_digest, false) as same,
                            struct_pack(batch_id := x.batch_id, row_number := x.row_number) as earlier
                     from s join {table} x on {on}
                     union all
                     select unnest(repeats[2:]) as row_number, true as same, null as earlier
                     from (select list(row_number order by row_number) as repeats from s
                           group by record_digest{keys} having count(*) > 1))
               group by row_number"""
