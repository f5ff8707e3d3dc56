"""The store's tables that dbt reads as sources, copied from a DuckDB store to Parquet tables in Spark.

Which tables: exactly those the dbt project declares as sources
(dbt_project/models/staging/store/_store__sources.yml), in Spark databases named like the store's
schemas (`main`, `governance`), so that the project's `source()` calls resolve on both engines. The
rest of the store, the linkage schema's tokens above all, is not copied: the marts do not read it,
and a copy that is not needed is one more place to protect. Nothing identifying is in the store to
begin with (only pseudonymous ids and coarse areas).

Column types come from the store's one definition, the SQLAlchemy models (models/), mapped to Spark
types below; a column type without a mapping stops the copy rather than being guessed. Each table
goes through a Parquet file that DuckDB writes (COPY streams it, so a city-scale table never sits in
Python's memory), which Spark reads in parallel, casts to the models' types and saves as a managed
Parquet table in its warehouse; the file is removed afterwards.
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
from ldm.sql import backquoted, literal, quoted
from ldm.store import connect
from models import ANALYST_SCHEMA, metadata

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

SOURCES_FILE = DBT_PROJECT / "models" / "staging" / "store" / "_store__sources.yml"

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
class SourceTable:
    """One table dbt reads: its schema (a Spark database of the same name) and its model's columns."""

    schema: str
    name: str
    columns: tuple[tuple[str, str], ...]  # (column, Spark type), in the model's order

    @property
    def spark_name(self) -> str:
        return f"{backquoted(self.schema)}.{backquoted(self.name)}"


def spark_type(column: sa.Column) -> str:
    for sa_type, name in SPARK_TYPES:
        if isinstance(column.type, sa_type):
            return name
    raise LdmError(
        f"column {column.table.name}.{column.name} has type {column.type!r}, which has no Spark type in "
        "ldm.spark.tables.SPARK_TYPES: add one"
    )


def source_tables(sources_file: Path = SOURCES_FILE) -> list[SourceTable]:
    """The tables of the dbt project's sources, each with its columns and types from models/."""
    document = yaml.safe_load(sources_file.read_text())
    tables = []
    for source in document["sources"]:
        schema = source.get("schema", source["name"])
        for table in source["tables"]:
            key = table["name"] if schema == ANALYST_SCHEMA else f"{schema}.{table['name']}"
            if key not in metadata.tables:
                raise LdmError(f"dbt source {schema}.{table['name']} is not a table of the store (models/)")
            model = metadata.tables[key]
            columns = tuple((column.name, spark_type(column)) for column in model.columns)
            tables.append(SourceTable(schema, table["name"], columns))
    return tables


def copy_sources(store: Path, spark: SparkSession, work: Path) -> dict[str, int]:
    """Copy every source table of the dbt project from the DuckDB `store` into Spark; return the rows
    copied per table ("schema.table")."""
    from pyspark.sql.functions import col

    staging = Path(work).resolve() / "sources"
    staging.mkdir(parents=True, exist_ok=True)
    con = connect(store, read_only=True)
    copied = {}
    try:
        for table in source_tables():
            if not spark.catalog.databaseExists(table.schema):
                spark.sql(f"create database {backquoted(table.schema)}")
            exported = staging / f"{table.schema}.{table.name}.parquet"
            names = ", ".join(quoted(name) for name, _ in table.columns)
            try:
                (rows,) = con.execute(
                    f"copy (select {names} from {quoted(table.schema)}.{quoted(table.name)}) "
                    f"to {literal(exported)} (format parquet)"
                ).fetchall()[0]
            except duckdb.Error as error:
                raise LdmError(
                    f"cannot read {table.schema}.{table.name} from {store} (is it an ldm store at the "
                    f"latest revision? `ldm db upgrade` brings it there): {error}"
                ) from None
            frame = spark.read.parquet(str(exported)).select(
                *[col(name).cast(kind).alias(name) for name, kind in table.columns]
            )
            frame.write.format("parquet").mode("overwrite").saveAsTable(table.spark_name)
            copied[f"{table.schema}.{table.name}"] = rows
            exported.unlink()
    finally:
        con.close()
        shutil.rmtree(staging, ignore_errors=True)
    return copied
