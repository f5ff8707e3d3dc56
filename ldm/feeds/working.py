"""The intake's working tables, named once: what each holds while one extract is read, validated
and pseudonymised (ldm.feeds.read, ldm.validate.run, ldm.pseudonymise.extract), each extract on a
connection of its own.
"""

from __future__ import annotations

from ldm.sql import WorkingTable

RAW = WorkingTable("raw", "the extract as text, one column per header name (row number: the row id + 1)")
FAILURES = WorkingTable(
    "failures", "each row failing a critical rule: row_number, rule (a row may fail several)"
)
FAILING_KEYS = WorkingTable("failing_keys", "the failing values of one rule's check column")
ACCEPTED = WorkingTable("accepted", "the rows no critical rule failed, with their row_number")
TEXTS = WorkingTable("texts", "the distinct texts of one date column, to parse once each")


def lookup(column: str) -> WorkingTable:
    """A column's distinct raw values with their tokens or derived values, joined to the rows."""
    return WorkingTable(f"lk_{column}", f"raw {column} -> its tokens or derived values")
