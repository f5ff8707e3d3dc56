"""The linked store: one DuckDB file whose tables are defined in models/ and built by migrations/.

    connect(path, read_only=False)     a DuckDB connection, after checking the path and the file
    engine(path, read_only=False)      the same as a SQLAlchemy engine (duckdb-engine)
    upgrade(path, revision="head")     create the store or apply the migrations it lacks
    downgrade(path, revision)          take it back (for development and tests)
    current_revision(path)             its revision, None for an empty database
    head_revision()                    the newest revision this ldm knows
    register(subparsers)               `ldm db upgrade` and `ldm db current`

The functions are imported on first use, so that `ldm` commands that never touch the store do not
pay for importing Alembic and SQLAlchemy.
"""

from __future__ import annotations

import importlib
from typing import Any

from ldm.store.cli import register

_HOMES = {
    "connect": "ldm.store.connection",
    "engine": "ldm.store.connection",
    "upgrade": "ldm.store.migrate",
    "downgrade": "ldm.store.migrate",
    "current_revision": "ldm.store.migrate",
    "head_revision": "ldm.store.migrate",
}

__all__ = ["connect", "current_revision", "downgrade", "engine", "head_revision", "register", "upgrade"]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'ldm.store' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)
