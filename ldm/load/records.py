"""Recognising a record the store already holds, so that nothing is loaded twice.

A file checksum recognises only the same bytes; providers re-send the same records in new files
(next month's extract with one more blank line, two overlapping files, a full snapshot). So each
record is recognised by the feed's record key (the provider's own id, from the feed spec) where it
has one, and by a digest of its whole pseudonymised content otherwise:

- same key, same content: re-sent, counted and not loaded again;
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
    """Rows of the seam file (a `read_parquet(...)` relation) that match a record already in `table`.

    One row per matching seam row: its row_number, `same` (an earlier version has the same content)
    and `earlier`, the (batch_id, row_number) of the stored versions it matches.
    """
    if record_key:
        on = " and ".join(f"x.{quoted(name)} is not distinct from s.{quoted(name)}" for name in record_key)
    else:
        on = "x.record_digest = s.record_digest"
    keys = "".join(f", {quoted(name)}" for name in record_key)
    return f"""select s.row_number, bool_or(coalesce(x.record_digest = s.record_digest, false)) as same,
                      list(struct_pack(batch_id := x.batch_id, row_number := x.row_number)) as earlier
               from (select row_number, {digest_sql(columns)} as record_digest{keys} from {seam}) s
               join {table} x on {on}
               group by s.row_number"""
