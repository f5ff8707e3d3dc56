"""What a release writes to the store: governance rows, each change sealed in the keyed audit chain.

Nothing is written to a store that is not at the newest revision, is under another key, or fails
its audit check, so that a release never seals over tampering. Each change (a project registered or
amended, a release recorded, its outcome) is one transaction with its audit entry, which records the
table it changed whole (the governance tables of releases have no batch column), so `ldm audit
verify` stays intact. Counts, sizes and group attributes only: never a person or record id.
"""

from __future__ import annotations

import datetime
import getpass
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb

from ldm.errors import LdmError
from ldm.governance import audit
from ldm.load.batches import check_key, current_revision_of
from ldm.pseudonymise.keys import AUDIT, MasterKey
from ldm.store import head_revision

PROJECTS = "governance.projects"
RELEASES = "governance.releases"


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def check_store(con: duckdb.DuckDBPyConnection, store: Path, key: MasterKey | None) -> None:
    """Refuse a store at an older revision, under another key, or failing its audit check."""
    revision = current_revision_of(con)
    if revision != head_revision():
        raise LdmError(
            f"store {store} is at revision {revision or 'none'}; run: ldm db upgrade --store {store}"
        )
    if key is None:
        return
    check_key(con, store, key)
    problems = audit.verify(con, key.purpose_key(AUDIT), audit.read_anchor(store)).problems
    if problems:
        raise LdmError(
            f"store {store} fails its audit check ({len(problems)} problem(s), first: {problems[0]}); "
            f"nothing was released. See: ldm audit verify --store {store}"
        )


Entry = tuple[str, str, dict[str, Any]]  # the audit entry's action, subject and detail


def sealed(
    con: duckdb.DuckDBPyConnection, key: MasterKey, table: str, write: Callable[[], Entry]
) -> audit.Head:
    """Run `write` (changes to `table` only) and seal them with the audit entry it describes, in one
    transaction, so that a failure leaves neither the change nor a drawn sequence number unrecorded."""
    audit_key = key.purpose_key(AUDIT)
    con.begin()
    try:
        action, subject, detail = write()
        state = audit.full_state(con, audit_key, table)
        head = audit.append(con, audit_key, getpass.getuser(), action, subject, detail, state)
        con.commit()
    except BaseException:
        con.rollback()
        raise
    return head


def record_release(
    con: duckdb.DuckDBPyConnection,
    key: MasterKey,
    spec_record: dict[str, Any],
    spec_file: str,
    spec_sha256: str,
    out: Path,
    k_threshold: int,
) -> tuple[int, int, audit.Head]:
    """Record a release as requested (status 'recorded'), before anything is written; its id and number."""
    project = spec_record["project"]
    drawn: list[int] = []

    def write() -> Entry:
        release_id, number = con.execute(
            f"""insert into {RELEASES} (release_id, project, release_number, spec_file, spec_sha256, spec, key_id,
                                       k_threshold, status, requested_at, operator, out_folder)
                select nextval('governance.release_id_seq'), ?, count(*) + 1, ?, ?, ?, ?, ?, 'recorded', ?, ?, ?
                from {RELEASES} where project = ?
                returning release_id, release_number""",
            [
                project,
                spec_file,
                spec_sha256,
                json.dumps(spec_record, sort_keys=True),
                key.key_id,
                k_threshold,
                now(),
                getpass.getuser(),
                str(out),
                project,
            ],
        ).fetchall()[0]
        drawn.extend((release_id, number))
        detail = {
            "project": project,
            "release_number": number,
            "spec_file": spec_file,
            "spec_sha256": spec_sha256,
            "spec": spec_record,
            "key_id": key.key_id,
            "k_threshold": k_threshold,
            "out_folder": str(out),
        }
        return "release", f"release {release_id}", detail

    head = sealed(con, key, RELEASES, write)
    return drawn[0], drawn[1], head


def record_outcome(
    con: duckdb.DuckDBPyConnection, key: MasterKey, release_id: int, status: str, outcome: dict[str, Any]
) -> audit.Head:
    """Record how a release ended: written, refused or failed, with what the IG lead needs to judge it."""

    def write() -> Entry:
        con.execute(
            f"""update {RELEASES} set status = ?, k_smallest = ?, smallest_group = ?, generalised = ?, persons = ?,
                                     table_rows = ?, manifest_sha256 = ?, finished_at = ?, reason = ?
                where release_id = ?""",
            [
                status,
                outcome.get("k"),
                _json(outcome.get("smallest_group")),
                _json(outcome.get("generalised")),
                outcome.get("persons"),
                _json(outcome.get("table_rows")),
                outcome.get("manifest_sha256"),
                now(),
                outcome.get("reason"),
                release_id,
            ],
        )
        return f"release_{status}", f"release {release_id}", {"status": status, **outcome}

    return sealed(con, key, RELEASES, write)


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True, default=str)


def list_releases(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    """Every release, newest last: id, project, number, status, when, k, threshold, persons, folder."""
    return con.execute(
        f"""select release_id, project, release_number, status, requested_at, k_smallest, k_threshold, persons,
                   out_folder
            from {RELEASES} order by release_id"""
    ).fetchall()
