"""Create and evolve the store with Alembic, configured from Python so it works from any folder.

The Alembic environment lives in the top-level `migrations` package (env.py, alembic.ini,
versions/); this module finds it through the import system, hands Alembic an open connection,
and turns Alembic's failures on a user's store into LdmError.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.ddl.impl import DefaultImpl
from alembic.script import ScriptDirectory
from alembic.util import CommandError

import migrations
from ldm.errors import LdmError
from ldm.store.connection import (
    VERSION_SCHEMA,
    VERSION_TABLE,
    check_is_store,
    connect,
    engine,
    has_version_table,
    store_path,
)

MIGRATIONS_DIR = Path(next(iter(migrations.__path__)))


class DuckDBImpl(DefaultImpl):
    """Teach Alembic the `duckdb` dialect (duckdb-engine ships none).

    DuckDB runs DDL inside transactions, so a revision that fails leaves the store as it was.
    """

    __dialect__ = "duckdb"
    transactional_ddl = True


def alembic_config() -> Config:
    """Alembic's configuration for the store, from migrations/alembic.ini."""
    config = Config(str(MIGRATIONS_DIR / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str:
    """The newest revision this version of ldm knows."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "migrations/versions holds no revision"
    return head


def known_revisions() -> list[str]:
    """Every revision this version of ldm knows, oldest first."""
    scripts = ScriptDirectory.from_config(alembic_config())
    return [script.revision for script in reversed(list(scripts.walk_revisions()))]


def _check_store(path: Path, read_only: bool) -> str | None:
    """Open the store with DuckDB, refuse foreign databases, and return its revision."""
    con = connect(path, read_only=read_only)
    try:
        check_is_store(path, con)
        if not has_version_table(con):
            return None
        rows = con.execute(f"select version_num from {VERSION_SCHEMA}.{VERSION_TABLE}").fetchall()
    finally:
        con.close()
    if len(rows) > 1:
        raise LdmError(f"{path} records {len(rows)} revisions at once; it was not written by ldm")
    revision = rows[0][0] if rows else None
    if revision is not None and revision not in known_revisions():
        raise LdmError(
            f"{path} is at revision {revision}, which this version of ldm does not know "
            "(was it written by a newer ldm?)"
        )
    return revision


def current_revision(path: Path | str) -> str | None:
    """The store's Alembic revision; None for an empty database that no migration has touched."""
    return _check_store(store_path(path, must_exist=True), read_only=True)


def _run(path: Path, action: str, revision: str) -> None:
    config = alembic_config()
    store = engine(path)
    try:
        with store.connect() as connection:
            config.attributes["connection"] = connection
            getattr(command, action)(config, revision)
    except CommandError as error:
        raise LdmError(f"cannot {action} {path} to {revision}: {error}") from None
    finally:
        store.dispose()


def upgrade(path: Path | str, revision: str = "head") -> str | None:
    """Bring the store at `path` up to `revision`, creating it when missing; return the new revision."""
    path = store_path(path, must_exist=False)
    _check_store(path, read_only=False)
    _run(path, "upgrade", revision)
    return current_revision(path)


def downgrade(path: Path | str, revision: str) -> str | None:
    """Take the store back to `revision` ("base" empties it); return the new revision."""
    path = store_path(path, must_exist=True)
    _check_store(path, read_only=False)
    _run(path, "downgrade", revision)
    return current_revision(path)
