"""Alembic environment for the store: DuckDB through duckdb-engine.

ldm passes an open connection in `config.attributes["connection"]` (see ldm.store.migrate).
Alembic's own command line works too, with `-x store=FILE`. Each revision runs in its own
transaction, so a failure leaves the store at the last revision that completed.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

import models
from ldm.store.connection import VERSION_SCHEMA, engine
from ldm.store.migrate import DuckDBImpl  # noqa: F401 - registers the duckdb dialect with Alembic

config = context.config


def _configure(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=models.metadata,
        version_table_schema=VERSION_SCHEMA,
        transaction_per_migration=True,
        compare_type=True,
    )


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    store = context.get_x_argument(as_dictionary=True).get("store")
    if not store:
        raise SystemExit("give the store file: alembic -c migrations/alembic.ini -x store=FILE ...")
    with engine(store).connect() as connection:
        _run(connection)


def _run(connection: sa.Connection) -> None:
    # The version table lives beside the other governance tables, so its schema must exist first.
    connection.execute(sa.text(f"create schema if not exists {VERSION_SCHEMA}"))
    connection.commit()
    _configure(connection)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) mode is not supported: DuckDB migrations run against a store file")
run_online()
