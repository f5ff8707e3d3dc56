"""Seal a change to the store that no load made (a migration, a dbt build) in the keyed audit chain."""

from __future__ import annotations

import getpass
from pathlib import Path

from ldm.governance import audit, digests
from ldm.pseudonymise.keys import AUDIT, MasterKey
from ldm.store.connection import connect


def seal(store: Path, key: MasterKey, action: str, subject: str, detail: dict, scope: str) -> audit.Head:
    """Append an entry recording every table in `scope` as it now is; update the anchor file."""
    con = connect(store)
    try:
        con.begin()
        head = audit.append(
            con,
            key.purpose_key(AUDIT),
            getpass.getuser(),
            action,
            subject,
            detail,
            audit.full_state(con, scope),
        )
        con.commit()
    finally:
        con.close()
    audit.write_anchor(store, head)
    return head


def seal_upgrade(store: Path, key: MasterKey, before: str | None, after: str | None) -> None:
    """A migration rewrites tables: once a store has an audit chain, seal it as it now is."""
    if before is None or before == after:
        return
    con = connect(store, read_only=True)
    try:
        entries = con.execute(f"select count(*) from {audit.AUDIT_TABLE}").fetchall()[0][0]
    finally:
        con.close()
    if entries:
        seal(store, key, "upgrade", f"revision {after}", {"from": before, "to": after}, digests.EVERY_TABLE)


def seal_marts(store: Path, key: MasterKey, summary: str) -> None:
    """Record what dbt built (every table outside the load schemas)."""
    seal(store, key, "marts", "dbt build", {"dbt": summary}, digests.DBT_TABLES)
