"""Seal in the keyed audit chain a change to the store that no load made: a migration, a dbt build,
or the deliberate take-over of a store whose chain predates keyed audit."""

from __future__ import annotations

import getpass
from pathlib import Path

from ldm.errors import LdmError
from ldm.governance import audit, digests
from ldm.pseudonymise.keys import AUDIT, MasterKey
from ldm.store.connection import connect
from ldm.store.migrate import upgrade


def seal(
    store: Path, key: MasterKey, action: str, subject: str, detail: dict, scope: str, adopt: bool = False
) -> audit.Head:
    """Append an entry recording every table in `scope` as it now is; update the anchor file."""
    audit_key = key.purpose_key(AUDIT)
    con = connect(store)
    try:
        con.begin()
        state = audit.full_state(con, audit_key, scope)
        head = audit.append(con, audit_key, getpass.getuser(), action, subject, detail, state, adopt=adopt)
        con.commit()
    finally:
        con.close()
    audit.write_anchor(store, head)
    return head


def seal_upgrade(store: Path, key: MasterKey, before: str | None, after: str | None) -> None:
    """A migration rewrites tables: once a store has a keyed chain, seal it as it now is."""
    if before is None or before == after:
        return
    con = connect(store, read_only=True)
    try:
        keyed = audit.has_keyed_entries(con)
    finally:
        con.close()
    if keyed:
        seal(store, key, "upgrade", f"revision {after}", {"from": before, "to": after}, digests.EVERY_TABLE)


def seal_marts(store: Path, key: MasterKey, summary: str) -> None:
    """Record what dbt built (every table outside the load schemas)."""
    seal(store, key, "marts", "dbt build", {"dbt": summary}, digests.DBT_TABLES)


def adopt(store: Path, key: MasterKey, expect: audit.Head | None) -> audit.Head:
    """Take over a store whose chain predates keyed audit: check what can be checked, then seal it.

    The unkeyed chain is checked (and against the head the IG lead kept, when given); its data
    cannot be, which is why this is a deliberate step and never part of a run.
    """
    con = connect(store, read_only=True)
    try:
        if audit.has_keyed_entries(con):
            raise LdmError(f"{store}: its audit chain is keyed already; nothing to take over")
        checked = audit.verify(con, None, audit.read_anchor(store), expect, check_data=False)
    finally:
        con.close()
    if checked.problems:
        raise LdmError(f"{store}: its unkeyed audit chain is broken ({checked.problems[0]}); not taken over")
    upgrade(store)  # the seal must record the tables as the current ldm writes them
    detail = {
        "unkeyed_entries": checked.entries,
        "unkeyed_head": str(checked.head),
        "checked_against": str(expect),
    }
    return seal(store, key, "adopt", "unkeyed chain", detail, digests.EVERY_TABLE, adopt=True)
