"""The declarative base, schema names and sequences shared by every table of the store.

The store has three schemas with three audiences: `main` for analysts (person-level tables, no
tokens), `linkage` for the pipeline and IG only (the tokens that keep person ids stable), and
`governance` for IG audit (batches, rejections, link rates, opt-outs, key ids, the audit chain).

Foreign keys are deliberately not declared anywhere. DuckDB checks a foreign key against the
parent's index as it stood at the start of the transaction, so deleting a child row and then its
parent in one transaction fails (measured on DuckDB 2.0). The loader does exactly that when it
applies opt-outs or re-links a batch in its one transaction, so references between tables are
documented in column comments and checked by tests and dbt relationship tests instead.

Nor are the keys of the large record tables and linkage.record_links declared (a primary key is an
index in DuckDB). A record's key, (batch_id, row_number), is unique by construction: row_number is
the record's row in its batch's extract, and a batch is loaded once. On a city's worth of rows (17
million GP events, 23 million record links) the indexes doubled the CPU time of inserting into those
tables and took 430 MB of a 990 MB store file, so the ORM keeps the key at the mapper
(`__mapper_args__`, `mapper_key`) and the loader checks it for every batch (ldm.load.unique_keys);
`unindexed_keys` lists them. Small tables keep theirs.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ldm.sql import literal

ANALYST_SCHEMA = "main"  # DuckDB's default schema: analyst tables are declared without a schema
LINKAGE_SCHEMA = "linkage"
GOVERNANCE_SCHEMA = "governance"
SCHEMAS = (LINKAGE_SCHEMA, GOVERNANCE_SCHEMA)  # created by the first migration; main always exists

NAMING_CONVENTION = {
    "pk": "pk_%(table_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
}


class Base(DeclarativeBase):
    """Every table of the store; `Base.metadata` is what the migrations are checked against."""

    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


def unindexed_keys() -> dict[str, tuple[str, ...]]:
    """`schema.table` -> key columns, for each table whose key the ORM maps but the store does not index
    (no primary key constraint): the keys the loader checks instead."""
    mappers = {mapper.local_table: mapper for mapper in Base.registry.mappers}
    return {
        f"{table.schema or ANALYST_SCHEMA}.{table.name}": tuple(
            column.name for column in mappers[table].primary_key
        )
        for table in Base.metadata.tables.values()  # in the order the models define them: analyst tables first
        if table in mappers and not table.primary_key.columns
    }


def sequence(name: str, schema: str) -> sa.Sequence:
    """A sequence registered on the store's metadata (DuckDB has no SERIAL or IDENTITY)."""
    return sa.Sequence(name, schema=schema, metadata=Base.metadata)


def next_value(seq: sa.Sequence) -> sa.TextClause:
    """A server default drawing from `seq`, so that plain SQL inserts (not only the ORM) get ids."""
    return sa.text(f"nextval({literal(f'{seq.schema}.{seq.name}')})")


def sequence_key(seq: sa.Sequence, comment: str) -> Mapped[int]:
    """A BIGINT primary key whose values `seq` issues (by the ORM and by plain SQL inserts alike)."""
    return mapped_column(
        sa.BigInteger, seq, primary_key=True, server_default=next_value(seq), comment=comment
    )


def mapper_key(*columns: str) -> dict[str, list[str]]:
    """`__mapper_args__` for a table whose key the store does not index: the ORM maps rows by `columns`."""
    return {"primary_key": list(columns)}


def table_args(comment: str, schema: str | None = None) -> dict[str, str]:
    """`__table_args__` for a table: its comment (which analysts see in DuckDB) and its schema."""
    return {"comment": comment} | ({"schema": schema} if schema else {})
