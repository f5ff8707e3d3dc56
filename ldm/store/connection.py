"""Open the store: one DuckDB file, checked so that a user's mistake gives one clear line.

Every way into the store (the loader, Alembic, analysts' helpers) goes through `open_database`,
so the checks for a wrong path, a file that is not DuckDB, or a file in use live in one place.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import sqlalchemy as sa

from ldm.errors import LdmError

VERSION_SCHEMA = "governance"
VERSION_TABLE = "alembic_version"


def store_path(path: Path | str, must_exist: bool) -> Path:
    """The absolute path of a store file, or LdmError when it cannot be one."""
    path = Path(path).expanduser().absolute()
    if path.is_dir():
        raise LdmError(f"{path} is a folder; give the path of the store file, e.g. {path / 'ldm.duckdb'}")
    if not path.parent.is_dir():
        raise LdmError(f"folder {path.parent} does not exist; create it first or choose another --store")
    if must_exist and not path.exists():
        raise LdmError(f"no store at {path}; create one with `ldm db upgrade --store {path}`")
    return path


def _explain(path: Path, error: duckdb.Error) -> LdmError:
    message = str(error)
    # DuckDB 2.0 opens some paths (e.g. *.csv) as an in-memory database, which read-only refuses.
    if "not a valid DuckDB database file" in message or "in-memory database" in message:
        return LdmError(f"{path} is not a DuckDB database file")
    if "Could not set lock" in message or "Conflicting lock" in message:
        return LdmError(
            f"store is busy: {path} is open in another process (another ldm run?); try again when it ends"
        )
    if "version number" in message:
        return LdmError(f"{path} was written by an incompatible DuckDB version: {message.splitlines()[0]}")
    return LdmError(f"cannot open {path}: {message.splitlines()[0]}")


def connect(path: Path | str, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection to the store file at `path` (created when missing and not read-only)."""
    path = store_path(path, must_exist=read_only)
    try:
        con = duckdb.connect(str(path), read_only=read_only)
    except duckdb.Error as error:
        raise _explain(path, error) from None
    # DuckDB 2.0 opens some paths (e.g. *.csv) as an in-memory database instead of failing.
    found = con.execute(
        "select path from duckdb_databases() where database_name = current_database()"
    ).fetchall()  # fetchone would leave the result unfinished, and the next registration would fail
    opened = found[0] if found else None
    if not opened or not opened[0] or Path(opened[0]).absolute() != path:
        con.close()
        raise LdmError(f"{path} is not a DuckDB database file")
    # DuckDB draws a bar on stdout for any query that runs over two seconds, terminal or not: at city
    # scale a run's log (what an operator keeps) filled with them between ldm's own lines.
    con.execute("set enable_progress_bar = false")
    return con


def has_tables(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the database holds any table or view of its own (an ldm store or anything else)."""
    row = con.execute(
        "select count(*) from duckdb_tables() where database_name = current_database() and not internal"
    ).fetchone()
    views = con.execute(
        "select count(*) from duckdb_views() where database_name = current_database() and not internal"
    ).fetchone()
    return bool(row and row[0]) or bool(views and views[0])


def has_version_table(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether Alembic's version table exists, i.e. ldm created this database."""
    row = con.execute(
        "select count(*) from duckdb_tables() where database_name = current_database() "
        "and schema_name = ? and table_name = ?",
        [VERSION_SCHEMA, VERSION_TABLE],
    ).fetchone()
    return bool(row and row[0])


def check_is_store(path: Path, con: duckdb.DuckDBPyConnection) -> None:
    """Refuse a DuckDB file that holds tables but was not created by ldm's migrations."""
    if has_tables(con) and not has_version_table(con):
        raise LdmError(
            f"{path} is a DuckDB database but not an ldm store (it has no "
            f"{VERSION_SCHEMA}.{VERSION_TABLE} table); ldm will not change it"
        )


def engine(path: Path | str, read_only: bool = False) -> sa.Engine:
    """A SQLAlchemy engine on the store (duckdb-engine), after the same checks as `connect`.

    NullPool: each `engine.connect()` opens the file and closing it releases DuckDB's file lock,
    so the CLI never leaves the store locked for the next process.
    """
    path = store_path(path, must_exist=read_only)
    connect(path, read_only=read_only).close()
    return sa.create_engine(
        f"duckdb:///{path}", poolclass=sa.pool.NullPool, connect_args={"read_only": read_only}
    )
