"""`ldm db upgrade` and `ldm db current`: create, evolve and inspect the store file.

Alembic is imported inside the handlers, so other commands start without it.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    db = subparsers.add_parser(
        "db",
        help="create, upgrade and inspect the store (a DuckDB file)",
        description="Create the store, bring it up to date with this version of ldm, or show its revision. "
        "The store's tables are defined in models/ and built by the Alembic revisions in migrations/.",
    )
    actions = db.add_subparsers(dest="action", metavar="ACTION", required=True)

    up = actions.add_parser(
        "upgrade",
        help="create the store or apply the migrations it lacks",
        description="Apply every migration the store lacks, up to --revision (default: the newest). A "
        "missing store file is created. Each migration runs in its own transaction and keeps every row. "
        "A DuckDB file that ldm did not create is refused, never changed.",
    )
    up.add_argument("--store", type=Path, required=True, help="store file, e.g. ldm.duckdb")
    up.add_argument("--revision", default="head", help="revision to reach (default: head)")
    up.add_argument(
        "--key-file",
        type=Path,
        help="the store's master key file (default: $LDM_KEY_FILE); needed once the store has an audit chain, "
        "which records the upgrade",
    )
    up.set_defaults(handler=run_upgrade)

    current = actions.add_parser(
        "current",
        help="print the store's migration revision",
        description="Print the revision the store is at, and whether it is the newest this ldm knows. "
        "Opens the store read-only.",
    )
    current.add_argument("--store", type=Path, required=True, help="store file, e.g. ldm.duckdb")
    current.set_defaults(handler=run_current)


def _describe(revision: str | None) -> str:
    from ldm.store.migrate import head_revision

    if revision is None:
        return "(empty: no migration applied)"
    return f"{revision} (head)" if revision == head_revision() else revision


def run_upgrade(args: argparse.Namespace) -> int:
    from ldm.store.lock import store_lock
    from ldm.store.migrate import current_revision, upgrade

    with store_lock(args.store):
        before = current_revision(args.store) if args.store.is_file() else None
        key = _key_for_upgrade(args) if before is not None else None
        after = upgrade(args.store, args.revision)
        if key is not None:
            from ldm.governance.seal import seal_upgrade

            seal_upgrade(args.store, key, before, after)
    if before == after:
        print(f"{args.store}: already at {_describe(after)}")
    else:
        print(f"{args.store}: upgraded from {_describe(before)} to {_describe(after)}")
    return 0


def _key_for_upgrade(args: argparse.Namespace):
    """The key when the store already has an audit chain (the upgrade is sealed in it), checked first:
    the store must be under this key and pass its audit check, so an upgrade never seals over tampering."""
    import os

    from ldm.errors import LdmError
    from ldm.governance.audit import AUDIT_TABLE
    from ldm.load.batches import check_audit, check_key
    from ldm.pseudonymise.keys import KEY_FILE_ENV, load_key
    from ldm.store.connection import connect

    con = connect(args.store, read_only=True)
    try:
        if not con.execute(f"select count(*) from {AUDIT_TABLE}").fetchall()[0][0]:
            return None
        if not (args.key_file or os.environ.get(KEY_FILE_ENV)):
            raise LdmError(
                f"{args.store} has an audit chain, which records the upgrade under the store's key: "
                f"pass --key-file FILE or set {KEY_FILE_ENV}"
            )
        key = load_key(args.key_file)
        check_key(con, args.store, key)
        check_audit(con, args.store, key)
    finally:
        con.close()
    return key


def run_current(args: argparse.Namespace) -> int:
    from ldm.store.migrate import current_revision

    print(_describe(current_revision(args.store)))
    return 0
