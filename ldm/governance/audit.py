"""The append-only audit log of the store: a keyed hash chain that commits to the data it describes.

Each entry is sealed with an HMAC-SHA256 under the audit purpose key (derived from the master key,
ldm.pseudonymise.keys.AUDIT), over its own content and the previous entry's seal:

    entry_hash = HMAC(audit key, previous_hash + canonical JSON of [seq, logged_at, operator, action,
                                                                   subject, detail, scheme])

so editing, deleting or inserting an entry breaks the chain at that entry, and recomputing the
chain needs the key. An entry that changes data records, in `detail.state`, the row counts and
digests of the partitions it wrote (ldm.governance.digests): a load commits to its batch's rows in
every table and to its governance rows; a dbt build commits to the marts. Replaying the chain gives
what the store should hold, and `verify` recomputes it from the tables and names each difference.

The newest entry is kept three ways, so that cutting entries from the end shows: in the store
(`governance.audit_head`, under its own MAC), in the anchor file beside the store, and in every
run's summary for the IG lead to keep and pass back as `ldm audit verify --expect-head`.

Entries written before keyed audit (scheme NULL) keep their unkeyed SHA-256 and are checked as
such; the first keyed entry after them seals the whole store.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import json
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from ldm.errors import LdmError
from ldm.files import write_atomically
from ldm.governance import digests

AUDIT_TABLE = "governance.audit_log"
HEAD_TABLE = "governance.audit_head"
GENESIS = "0" * 64  # stands for the previous hash of the first entry (stored as NULL)
SCHEME = "hmac-sha256"


@dataclass(frozen=True)
class Head:
    """The newest entry of the chain: what an IG lead keeps to check the chain later."""

    seq: int
    entry_hash: str

    def __str__(self) -> str:
        return f"{self.seq}:{self.entry_hash}"

    @classmethod
    def parse(cls, text: str) -> Head:
        """`SEQ:HASH` (as printed), or a bare hash from an anchor file of an earlier version (seq 0)."""
        seq, _, digest = text.strip().rpartition(":")
        if not (len(digest) == 64 and all(c in "0123456789abcdef" for c in digest)) or (
            seq and not seq.isdigit()
        ):
            raise LdmError(f"{text.strip()!r} is not an audit head: expected SEQ:HASH as ldm printed it")
        return cls(int(seq) if seq else 0, digest)


EMPTY = Head(0, GENESIS)


def anchor_path(store: Path) -> Path:
    return store.with_name(store.name + ".audit-head")


def read_anchor(store: Path) -> Head | None:
    """The chain head recorded beside the store, or None when there is no anchor file."""
    anchor = anchor_path(store)
    return Head.parse(anchor.read_text()) if anchor.exists() else None


def write_anchor(store: Path, head: Head) -> None:
    write_atomically(anchor_path(store), f"{head}\n".encode())


def canonical_detail(detail: dict) -> str:
    return json.dumps(detail, sort_keys=True, separators=(",", ":"), default=str)


def _utc(at: datetime.datetime) -> datetime.datetime:
    """The UTC wall time, however the driver hands the timestamp back."""
    return at.astimezone(datetime.UTC).replace(tzinfo=None) if at.tzinfo is not None else at


def entry_hash(
    key: bytes | None,
    previous_hash: str,
    seq: int,
    at: datetime.datetime,
    operator: str,
    action: str,
    subject: str,
    detail: str,
    scheme: str | None = SCHEME,
) -> str:
    """The seal of one entry: HMAC under the audit key, or the unkeyed SHA-256 of earlier versions."""
    if scheme is None:
        content = json.dumps(
            [seq, _utc(at).isoformat(), operator, action, subject, detail], separators=(",", ":")
        )
        return hashlib.sha256((previous_hash + content).encode("utf-8")).hexdigest()
    if scheme != SCHEME:
        return ""  # an unknown scheme never verifies
    if key is None:
        raise LdmError(
            "the audit chain is keyed: give the key file (--key-file or LDM_KEY_FILE) to verify it"
        )
    content = json.dumps(
        [seq, _utc(at).isoformat(), operator, action, subject, detail, scheme], separators=(",", ":")
    )
    return hmac.new(key, (previous_hash + content).encode("utf-8"), hashlib.sha256).hexdigest()


def head_mac(key: bytes, head: Head) -> str:
    return hmac.new(key, f"audit head {head}".encode(), hashlib.sha256).hexdigest()


def _has_table(con: duckdb.DuckDBPyConnection, qualified: str) -> bool:
    schema, name = qualified.split(".")
    return bool(
        con.execute(
            "select count(*) from duckdb_tables() where database_name = current_database() "
            "and schema_name = ? and table_name = ?",
            [schema, name],
        ).fetchall()[0][0]
    )


def _has_column(con: duckdb.DuckDBPyConnection, qualified: str, column: str) -> bool:
    schema, name = qualified.split(".")
    return bool(
        con.execute(
            "select count(*) from duckdb_columns() where database_name = current_database() "
            "and schema_name = ? and table_name = ? and column_name = ?",
            [schema, name, column],
        ).fetchall()[0][0]
    )


def head(con: duckdb.DuckDBPyConnection) -> Head:
    last = con.execute(f"select seq, entry_hash from {AUDIT_TABLE} order by seq desc limit 1").fetchall()
    return Head(*last[0]) if last else EMPTY


def has_keyed_entries(con: duckdb.DuckDBPyConnection) -> bool:
    if not _has_column(con, AUDIT_TABLE, "scheme"):
        return False
    return bool(con.execute(f"select count(*) from {AUDIT_TABLE} where scheme is not null").fetchall()[0][0])


def append(
    con: duckdb.DuckDBPyConnection,
    key: bytes,
    operator: str,
    action: str,
    subject: str,
    detail: dict,
    state: dict | None = None,
    adopt: bool = False,
) -> Head:
    """Add one keyed entry at the end of the chain (inside the caller's transaction); return the new head.

    `state` is the data change the entry commits to (ldm.governance.digests); every entry also
    records the whole catalog. The first entry of a new store seals every table. An unkeyed chain
    (from before keyed audit) is taken over only deliberately (`adopt`, `ldm audit seal`): a chain
    rewritten in the old format by someone without the key must never be sealed over.
    """
    previous = head(con)
    if not has_keyed_entries(con):
        if previous.seq and not adopt:
            raise LdmError(
                "the store's audit chain is unkeyed (written before keyed audit, or rewritten without the key); "
                "check it and take it over deliberately with `ldm audit seal`"
            )
        state = full_state(con, key, digests.EVERY_TABLE)
    state = dict(state or {"replace": [], "tables": {}})
    state["replace"] = [*state["replace"], digests.CATALOG]
    state["tables"] = state["tables"] | {digests.CATALOG: digests.catalog_digest(con)}
    detail = detail | {"state": state, "engine": digests.engine_version(), "digest": digests.SCHEME}
    seq = previous.seq + 1
    at = datetime.datetime.now(datetime.UTC)
    text = canonical_detail(detail)
    digest = entry_hash(key, previous.entry_hash, seq, at, operator, action, subject, text)
    con.execute(
        f"""insert into {AUDIT_TABLE} (seq, logged_at, operator, action, subject, detail, previous_hash, entry_hash,
                                      scheme)
            values (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        [seq, at, operator, action, subject, text, None if seq == 1 else previous.entry_hash, digest, SCHEME],
    )
    new = Head(seq, digest)
    con.execute(f"delete from {HEAD_TABLE}")
    con.execute(
        f"insert into {HEAD_TABLE} (head_id, seq, entry_hash, head_mac) values (1, ?, ?, ?)",
        [new.seq, new.entry_hash, head_mac(key, new)],
    )
    return new


def full_state(con: duckdb.DuckDBPyConnection, key: bytes, scope: str) -> dict:
    """A change that replaces the recorded state of every table in `scope` (`*`, `load:*` or `dbt:*`)."""
    tables = digests.table_digests(con, digests.covered_tables(con, scope), key)
    return {"replace": [scope], "tables": tables}


def batch_state(
    con: duckdb.DuckDBPyConnection, key: bytes, batches: list[int], rewritten: Collection[str] | None = None
) -> dict:
    """What a load wrote: the given batches' partitions of batch-cut tables, every other load table whole.

    Tables cut by `batch_id` change only in the partitions of the batch being loaded and of any
    batch it removed rows from (revisions, replacement); the others (persons, the spine, key ids)
    are re-summarised whole.

    With `rewritten`, the load says which tables it may have updated or deleted rows of in place
    (a registration batch refreshes `main.persons` and `linkage.person_keys`), and only those are
    re-summarised whole; a table cut by `first_batch_id` only gained rows in the batches' own
    partitions, and one cut by `last_batch_id` that is not rewritten is unchanged. At city scale
    this is most of the audit's cost per batch (the spine and its evidence are millions of rows).
    Said wrongly, `ldm audit verify` names the partition that differs: the chain never vouches for
    a state it did not compute.
    """
    tables = digests.covered_tables(con, digests.LOAD_TABLES)
    if rewritten is None:
        cut = {t: c for t, c in tables.items() if digests.partition_column(c) == "batch_id"}
        whole = {t: c for t, c in tables.items() if t not in cut}
    else:
        by = {t: digests.partition_column(c) for t, c in tables.items()}
        cut = {
            t: c for t, c in tables.items() if t not in rewritten and by[t] in ("batch_id", "first_batch_id")
        }
        whole = {t: c for t, c in tables.items() if t in rewritten or by[t] is None}
    recorded = digests.table_digests(con, whole, key)
    for batch_id in sorted(set(batches)):
        for table, parts in digests.table_digests(con, cut, key, batch_id).items():
            recorded.setdefault(table, {}).update(parts)
    return {"replace": sorted(whole), "tables": recorded}


@dataclass(frozen=True)
class Problem:
    seq: int | None
    message: str

    def __str__(self) -> str:
        return f"entry {self.seq}: {self.message}" if self.seq is not None else self.message


@dataclass
class Verification:
    problems: list[Problem] = field(default_factory=list)
    entries: int = 0
    head: Head = EMPTY
    keyed: bool = False
    data_checked: bool = False


def _chain(
    con: duckdb.DuckDBPyConnection, key: bytes | None, result: Verification
) -> tuple[digests.State | None, str | None]:
    """Check every entry's seal and order; return the data state the chain records (None before keyed
    audit) and the DuckDB version that computed it."""
    scheme = "scheme" if _has_column(con, AUDIT_TABLE, "scheme") else "cast(null as varchar)"
    rows = con.execute(
        f"""select seq, logged_at, operator, action, subject, detail, previous_hash, entry_hash, {scheme}
            from {AUDIT_TABLE} order by seq"""
    ).fetchall()
    expected_state: digests.State = {}
    expected_seq, expected_previous, keyed, engine = 1, GENESIS, False, None
    for seq, at, operator, action, subject, detail, stored_previous, stored_hash, entry_scheme in rows:
        problems = result.problems
        previous_hash = stored_previous or GENESIS
        if seq != expected_seq:
            kind = "missing before it (deleted?)" if seq > expected_seq else "repeated (inserted?)"
            problems.append(Problem(seq, f"sequence number out of order: entry {expected_seq} is {kind}"))
        if previous_hash != expected_previous:
            problems.append(
                Problem(seq, "does not follow the entry before it (an entry was deleted or inserted)")
            )
        if keyed and entry_scheme is None:
            problems.append(Problem(seq, "an unkeyed entry after keyed ones (written without the key)"))
        if (
            entry_hash(key, previous_hash, seq, at, operator, action, subject, detail, entry_scheme)
            != stored_hash
        ):
            problems.append(
                Problem(seq, "content does not match its seal (edited, or sealed without the key)")
            )
        if entry_scheme is not None:
            keyed = True
            recorded = json.loads(detail or "{}")
            if "state" in recorded:
                digests.apply(expected_state, recorded["state"])
                engine = recorded.get("engine")
        expected_seq, expected_previous = seq + 1, stored_hash
        result.head = Head(seq, stored_hash)
    result.entries, result.keyed = len(rows), keyed
    return expected_state if keyed else None, engine


def _head_row(con: duckdb.DuckDBPyConnection, key: bytes | None, result: Verification) -> None:
    """The head kept in the store must be the chain's last entry, under a valid MAC."""
    if not _has_table(con, HEAD_TABLE):
        return  # a store from before keyed audit
    rows = con.execute(f"select seq, entry_hash, head_mac from {HEAD_TABLE}").fetchall()
    if not rows:
        if result.entries and has_keyed_entries(con):
            result.problems.append(
                Problem(None, f"{HEAD_TABLE} is empty although the chain is keyed (deleted?)")
            )
        return
    seq, digest, mac = rows[0]
    kept = Head(seq, digest)
    if key is None or len(rows) > 1 or not hmac.compare_digest(head_mac(key, kept), mac or ""):
        result.problems.append(Problem(None, f"{HEAD_TABLE} was edited: its MAC does not match (seq {seq})"))
    elif kept.seq > result.head.seq:
        result.problems.append(
            Problem(
                None,
                f"entries {result.head.seq + 1}-{kept.seq} were cut from the end of the chain "
                f"({HEAD_TABLE} records entry {kept.seq})",
            )
        )
    elif kept != result.head:
        result.problems.append(
            Problem(
                None,
                f"the chain does not end at the head kept in {HEAD_TABLE} (entry {kept.seq}): rewritten?",
            )
        )


def _store_holds_data(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether any load table holds a row (Alembic's version row aside)."""
    tables = digests.covered_tables(con, digests.LOAD_TABLES)
    tables.pop("governance.alembic_version", None)
    return any(
        con.execute(f"select exists (from {digests.qualified(name)})").fetchall()[0][0] for name in tables
    )


def verify(
    con: duckdb.DuckDBPyConnection,
    key: bytes | None,
    anchor: Head | None = None,
    expect: Head | None = None,
    check_data: bool = True,
) -> Verification:
    """Every break in the chain, in its head and in the data it records; no problems when all is intact."""
    result = Verification()
    functions = digests.user_functions(con)
    if functions:
        result.problems.append(
            Problem(
                None,
                f"the store defines function(s) {', '.join(functions)}: an ldm store defines none, and "
                "a macro can replace a built-in function in every query on the store",
            )
        )
        return result
    expected_state, engine = _chain(con, key, result)
    _head_row(con, key, result)
    last = result.head
    if anchor is not None and not (
        anchor == last or (anchor.seq == 0 and anchor.entry_hash == last.entry_hash)
    ):
        result.problems.append(
            Problem(
                None,
                f"the chain ends at entry {last.seq}, not at the entry recorded in the anchor file "
                f"({anchor.seq}): entries removed from the end, or the log rewritten",
            )
        )
    if expect is not None:
        found = con.execute(
            f"select seq from {AUDIT_TABLE} where entry_hash = ?", [expect.entry_hash]
        ).fetchall()
        if not found or (expect.seq and found[0][0] != expect.seq):
            result.problems.append(
                Problem(
                    None,
                    f"the head you kept ({expect.seq}) is not in the chain: entries were removed "
                    "or the chain rewritten",
                )
            )
    if not check_data:
        return result
    if expected_state is None:
        if _store_holds_data(con):
            result.problems.append(
                Problem(
                    None,
                    "the store holds data that no keyed audit entry records: the chain was emptied or "
                    "rewritten without the key, or the store predates keyed audit (then check it with "
                    "--expect-head and take it over with `ldm audit seal`)",
                )
            )
        return result
    if engine != digests.engine_version():
        result.problems.append(
            Problem(
                None,
                f"the data digests were made by DuckDB {engine}; this is DuckDB "
                f"{digests.engine_version()}, so the data cannot be checked against them",
            )
        )
        return result
    actual = digests.table_digests(con, digests.covered_tables(con), key)
    actual[digests.CATALOG] = digests.catalog_digest(con)
    result.problems += [Problem(None, text) for text in digests.differences(expected_state, actual)]
    result.data_checked = True
    return result
