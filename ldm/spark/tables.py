"""The store's tables, copied from a DuckDB store to Parquet tables in Spark: the pseudonymised
data the marts are built from, and the governance records (the audit chain among them) beside it.

Which tables: every table of the store's analyst and governance schemas (COPIED_SCHEMAS), in Spark
databases named like the store's schemas (`main`, `governance`), so that the dbt project's
`source()` calls resolve on both engines (its sources, dbt_project/models/staging/store/
_store__sources.yml, must all be among them) and analysts on Spark find the person-level tables they
find in the store. The linkage schema is never copied: it holds the keyed tokens of every
identifier, which the marts do not read, and a copy that is not needed is one more place to protect.
Nothing identifying is in the copied tables (only pseudonymous ids, coarse areas and codes).

Column types come from the store's one definition, the SQLAlchemy models (models/), mapped to Spark
types below; a column type without a mapping stops the copy rather than being guessed. Each table
goes through a Parquet file that DuckDB writes (COPY streams it, so a city-scale table never sits in
Python's memory), which Spark reads in parallel, casts to the models' types and writes into a
managed Parquet table that `create table` made from the model, comments included (`describe` shows
an analyst on Spark the store's documentation); the file is removed afterwards. `ldm audit verify
--spark-dir` checks every copied table against the store under the audit's keyed digest
(warehouse.py).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import sqlalchemy as sa
import yaml

from ldm.errors import LdmError
from ldm.marts.build import DBT_PROJECT
from ldm.sql import backquoted, escaped_literal, literal, quoted
from ldm.store import connect
from models import ANALYST_SCHEMA, GOVERNANCE_SCHEMA, metadata

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

SOURCES_FILE = DBT_PROJECT / "models" / "staging" / "store" / "_store__sources.yml"
COPIED_SCHEMAS = (ANALYST_SCHEMA, GOVERNANCE_SCHEMA)  # never the linkage schema: it holds the tokens

# SQLAlchemy type of a store column -> Spark SQL type; the most specific class first (BigInteger and
# SmallInteger are Integers). DuckDB's TIMESTAMP has no time zone, as Spark's TIMESTAMP_NTZ.
SPARK_TYPES: list[tuple[type, str]] = [
    (sa.BigInteger, "bigint"),
    (sa.SmallInteger, "smallint"),
    (sa.Integer, "int"),
    (sa.Double, "double"),
    (sa.Boolean, "boolean"),
    (sa.Date, "date"),
    (sa.DateTime, "timestamp_ntz"),
    (sa.String, "string"),
]


@dataclass(frozen=True)
class StoreTable:
    """One table of the store: its schema (a Spark database of the same name) and its model's columns."""

    schema: str
    name: str
    columns: tuple[tuple[str, str], ...]  # (column, Spark type), in the model's order
    comment: str | None = None  # the model's comment on the table
    column_comments: tuple[str | None, ...] = ()  # the model's comment on each column, in order

    @property
    def spark_name(self) -> str:
        return f"{backquoted(self.schema)}.{backquoted(self.name)}"

    def create_sql(self) -> str:
        """Spark's `create table` of this table, from the model: its columns' types and comments (the
        store's documentation, which `describe` shows an analyst on Spark as on DuckDB)."""
        comments = self.column_comments or (None,) * len(self.columns)
        columns = ", ".join(
            f"{backquoted(name)} {kind}" + (f" comment {escaped_literal(comment)}" if comment else "")
            for (name, kind), comment in zip(self.columns, comments, strict=True)
        )
        described = f" comment {escaped_literal(self.comment)}" if self.comment else ""
        return f"create table {self.spark_name} ({columns}) using parquet{described}"

    @property
    def key(self) -> str:
        """ "schema.table", as the audit's digests name it."""
        return f"{self.schema}.{self.name}"


def spark_type(column: sa.Column) -> str:
    for sa_type, name in SPARK_TYPES:
        if isinstance(column.type, sa_type):
            return name
    raise LdmError(
        f"column {column.table.name}.{column.name} has type {column.type!r}, which has no Spark type in "
        "ldm.spark.tables.SPARK_TYPES: add one"
    )


def _store_table(model: sa.Table) -> StoreTable:
    columns = tuple((column.name, spark_type(column)) for column in model.columns)
    comments = tuple(column.comment for column in model.columns)
    return StoreTable(model.schema or ANALYST_SCHEMA, model.name, columns, model.comment, comments)


def store_tables(schemas: tuple[str, ...] = COPIED_SCHEMAS) -> list[StoreTable]:
    """The tables of the store's `schemas` (all that are copied, by default), from models/."""
    return [
        _store_table(model) for model in metadata.sorted_tables if (model.schema or ANALYST_SCHEMA) in schemas
    ]


def source_tables(sources_file: Path = SOURCES_FILE) -> list[StoreTable]:
    """The tables of the dbt project's sources, each with its columns and types from models/; each must
    be a table of the store that is copied."""
    document = yaml.safe_load(sources_file.read_text())
    tables = []
    for source in document["sources"]:
        schema = source.get("schema", source["name"])
        for table in source["tables"]:
            key = table["name"] if schema == ANALYST_SCHEMA else f"{schema}.{table['name']}"
            if key not in metadata.tables:
                raise LdmError(f"dbt source {schema}.{table['name']} is not a table of the store (models/)")
            if schema not in COPIED_SCHEMAS:
                raise LdmError(
                    f"dbt source {schema}.{table['name']} is in a schema that is not copied to Spark"
                )
            tables.append(_store_table(metadata.tables[key]))
    return tables


def copy_store(
    store: Path, spark: SparkSession, work: Path, only: tuple[str, ...] | None = None
) -> dict[str, int]:
    """Copy every table of the DuckDB `store` that is copied (or `only` those, by "schema.table") into
    Spark, replacing what it held; return the rows copied per table."""
    from pyspark.sql.functions import col

    staging = Path(work).resolve() / "sources"
    staging.mkdir(parents=True, exist_ok=True)
    con = connect(store, read_only=True)
    copied = {}
    try:
        for table in [table for table in store_tables() if only is None or table.key in only]:
            if not spark.catalog.databaseExists(table.schema):
                spark.sql(f"create database {backquoted(table.schema)}")
            exported = staging / f"{table.key}.parquet"
            names = ", ".join(quoted(name) for name, _ in table.columns)
            try:
                (rows,) = con.execute(
                    f"copy (select {names} from {quoted(table.schema)}.{quoted(table.name)}) "
                    f"to {literal(exported)} (format parquet)"
                ).fetchall()[0]
            except duckdb.Error as error:
                raise LdmError(
                    f"cannot read {table.key} from {store} (is it an ldm store at the "
                    f"latest revision? `ldm db upgrade` brings it there): {error}"
                ) from None
            frame = spark.read.parquet(str(exported)).select(
                *[col(name).cast(kind).alias(name) for name, kind in table.columns]
            )
            spark.sql(f"drop table if exists {table.spark_name}")  # made again as the models define it now
            spark.sql(table.create_sql())
            frame.write.insertInto(table.spark_name, overwrite=True)  # by position: the model's order
            copied[table.key] = rows
            exported.unlink()
    finally:
        con.close()
        shutil.rmtree(staging, ignore_errors=True)
    return copied
