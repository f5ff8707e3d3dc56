"""The append-only, hash-chained audit log of the store.

Each entry's hash covers its own content and the previous entry's hash:

    entry_hash = sha256(previous_hash + canonical JSON of [seq, logged_at, operator, action, subject, detail])

so editing, deleting or inserting an entry breaks the chain at that entry, and `verify` names it.
The chain alone cannot tell that entries were cut from the end, or that the whole log was rewritten
by someone who recomputed every hash; for that the newest hash is also written to an anchor file
beside the store (and printed in every run summary), and `verify` checks the chain ends there.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import duckdb

AUDIT_TABLE = "governance.audit_log"
GENESIS = "0" * 64  # stands for the previous hash of the first entry (stored as NULL)


def anchor_path(store: Path) -> Path:
    return store.with_name(store.name + ".audit-head")


def read_anchor(store: Path) -> str | None:
    """The chain head recorded beside the store, or None when there is no anchor file."""
    anchor = anchor_path(store)
    return anchor.read_text().strip() if anchor.exists() else None


def canonical_detail(detail: dict) -> str:
    return json.dumps(detail, sort_keys=True, separators=(",", ":"), default=str)


def entry_hash(
    previous_hash: str, seq: int, at: datetime.datetime, operator: str, action: str, subject: str, detail: str
) -> str:
    if at.tzinfo is not None:  # hash the UTC wall time, however the driver hands the timestamp back
        at = at.astimezone(datetime.UTC).replace(tzinfo=None)
    content = json.dumps([seq, at.isoformat(), operator, action, subject, detail], separators=(",", ":"))
    return hashlib.sha256((previous_hash + content).encode("utf-8")).hexdigest()


def append(con: duckdb.DuckDBPyConnection, operator: str, action: str, subject: str, detail: dict) -> str:
    """Add one entry at the end of the chain (inside the caller's transaction); return its hash."""
    last = con.execute(f"select seq, entry_hash from {AUDIT_TABLE} order by seq desc limit 1").fetchone()
    seq, previous = (last[0] + 1, last[1]) if last else (1, None)
    at = datetime.datetime.now(datetime.UTC)
    text = canonical_detail(detail)
    digest = entry_hash(previous or GENESIS, seq, at, operator, action, subject, text)
    con.execute(
        f"""insert into {AUDIT_TABLE} (seq, logged_at, operator, action, subject, detail, previous_hash, entry_hash)
            values (?, ?, ?, ?, ?, ?, ?, ?)""",
        [seq, at, operator, action, subject, text, previous, digest],
    )
    return digest


def head(con: duckdb.DuckDBPyConnection) -> str:
    last = con.execute(f"select entry_hash from {AUDIT_TABLE} order by seq desc limit 1").fetchone()
    return last[0] if last else GENESIS


def write_anchor(store: Path, digest: str) -> None:
    anchor_path(store).write_text(digest + "\n")


@dataclass(frozen=True)
class Problem:
    seq: int | None
    message: str

    def __str__(self) -> str:
        return f"entry {self.seq}: {self.message}" if self.seq is not None else self.message


def verify(con: duckdb.DuckDBPyConnection, anchor: str | None = None) -> list[Problem]:
    """Every break in the chain, naming the entry where it shows; empty when the log is intact."""
    rows = con.execute(
        f"""select seq, logged_at, operator, action, subject, detail, previous_hash, entry_hash
            from {AUDIT_TABLE} order by seq"""
    ).fetchall()
    problems: list[Problem] = []
    expected_seq, expected_previous = 1, GENESIS
    for seq, at, operator, action, subject, detail, stored_previous, stored_hash in rows:
        previous_hash = stored_previous or GENESIS
        if seq != expected_seq:
            kind = "missing before it (deleted?)" if seq > expected_seq else "repeated (inserted?)"
            problems.append(Problem(seq, f"sequence number out of order: entry {expected_seq} is {kind}"))
        if previous_hash != expected_previous:
            problems.append(
                Problem(seq, "does not follow the entry before it (an entry was deleted or inserted)")
            )
        if entry_hash(previous_hash, seq, at, operator, action, subject, detail) != stored_hash:
            problems.append(Problem(seq, "content does not match its hash (edited)"))
        expected_seq, expected_previous = seq + 1, stored_hash
    if anchor is not None and anchor != expected_previous:
        problems.append(
            Problem(
                None,
                "the last entry is not the one recorded in the anchor file "
                "(entries removed from the end, or the log rewritten)",
            )
        )
    return problems
