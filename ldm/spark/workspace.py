"""The linkage engine's workspace on Spark: working tables as temporary views over Parquet files.

A Spark temporary view cannot be inserted into, so adding rows to a working table writes them as one
more part of its files and its view reads every part (rows are never written twice). Every working
table is written to Parquet when it is made and its view reads the files back, as Splink's Spark
backend does with its own intermediate tables (its `break_lineage_method` "parquet"): each later
step reads the table again, and the steps read the decisions so far to make the next ones, so a lazy
or cached view would carry the whole history of steps in its plan, doubling it at every step
(measured on a 1,000-row extract: 1.6 s, 2.4, 3.7, 8.6, 14.3 s for successive steps, then out of
memory). Spark's local checkpoint would cut the plan without files, but Spark 4.0's optimiser fails
on a union of two checkpointed frames ("key not found"). The files live under the session's
checkpoint folder and go when the workspace closes, with those Splink wrote there.

Splink gets its Spark API on the same session; the model compares tokens for equality only, so none
of Splink's Java similarity functions is needed.

The builders write ANSI SQL with double-quoted names (ldm.sql.quoted), as DuckDB reads them: the
workspace turns on Spark's `spark.sql.ansi.doubleQuotedIdentifiers` for as long as it is open, and
puts the setting back when it closes (dbt-spark's SQL is written for the default).
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from ldm.linkage.workspace import Workspace
from ldm.sql import backquoted

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType

DOUBLE_QUOTED = "spark.sql.ansi.doubleQuotedIdentifiers"
SPLINK_PREFIX = "__splink__"


class SparkWorkspace(Workspace):
    """Working tables as materialised temporary views of a SparkSession; use it with `with`."""

    dialect = "spark"

    def __init__(self, session: SparkSession) -> None:
        self.session = session
        self._files: dict[str, list[Path]] = {}  # each table's parts
        self._registered: set[str] = set()
        self._versions = itertools.count()
        self._setting: str | None = None
        self._folder: Path | None = None
        self._checkpoints: Path | None = None

    def __enter__(self) -> SparkWorkspace:
        self._setting = self.session.conf.get(DOUBLE_QUOTED, "false")
        self.session.conf.set(DOUBLE_QUOTED, "true")
        checkpoints = self.session.sparkContext.getCheckpointDir()
        self._checkpoints = Path(checkpoints.removeprefix("file:")) if checkpoints else None
        self._folder = Path(tempfile.mkdtemp(prefix="ldm-linkage-", dir=self._checkpoints))
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            for table in list(self._files):
                self.drop(table)
            # Views registered here, and those Splink's Spark backend leaves (its blocked pairs): a later
            # listing of the session's tables (the marts built on it next) must not find them.
            for table in self.session.catalog.listTables():
                if table.isTemporary and (
                    table.name in self._registered or table.name.startswith(SPLINK_PREFIX)
                ):
                    self.session.catalog.dropTempView(table.name)
        finally:
            # The files hold keyed tokens: removed whatever happened above. Splink writes its own
            # intermediate tables (blocked pairs, predictions) to the checkpoint folder and drops only
            # their views.
            if self._folder is not None:
                shutil.rmtree(self._folder, ignore_errors=True)
            if self._checkpoints is not None and self._checkpoints.is_dir():
                for leftover in self._checkpoints.glob(f"{SPLINK_PREFIX}*"):
                    shutil.rmtree(leftover, ignore_errors=True)
            self.session.conf.set(DOUBLE_QUOTED, self._setting or "false")

    def _write(self, table: str, frame: DataFrame) -> Path:
        if self._folder is None:
            raise RuntimeError("a SparkWorkspace is used inside `with`")
        path = self._folder / f"{table}.{next(self._versions)}"
        frame.write.parquet(str(path))
        return path

    def _show(self, table: str, schema: StructType, parts: list[Path]) -> None:
        # The schema is given, not read back from the files' footers: one Spark job less per step.
        self.session.read.schema(schema).parquet(*map(str, parts)).createOrReplaceTempView(table)

    def create(self, table: str, query: str) -> None:
        frame = self.session.sql(query)
        path = self._write(table, frame)
        self._show(table, frame.schema, [path])
        self._remove_files(table)
        self._files[table] = [path]

    def append(self, table: str, query: str) -> None:
        """Write only the new rows, as one more part of the table's files: a step's decisions are
        added without writing again the decisions before them. The rows take the table's column
        names and types by position, as an insert does (Spark's cast truncates a fraction put into
        an integer column where DuckDB's insert rounds it; no builder does that)."""
        from pyspark.sql.functions import col

        if table not in self._files:
            raise ValueError(f"{table} is not a working table of this workspace (made by create)")
        schema = self.session.table(backquoted(table)).schema
        frame = self.session.sql(query)
        if len(frame.columns) != len(schema.fields):
            raise ValueError(
                f"{len(frame.columns)} columns to append to {table}, which has {len(schema.fields)}"
            )
        positions = [f"_{i}" for i in range(len(schema.fields))]  # the query's own names may repeat
        aligned = frame.toDF(*positions).select(
            *(
                col(position).cast(field.dataType).alias(field.name)
                for position, field in zip(positions, schema.fields, strict=True)
            )
        )
        parts = [*self._files[table], self._write(table, aligned)]
        self._show(table, schema, parts)
        self._files[table] = parts

    def drop(self, table: str) -> None:
        self.session.catalog.dropTempView(table)
        self._remove_files(table)

    def _remove_files(self, table: str) -> None:
        for part in self._files.pop(table, []):
            shutil.rmtree(part, ignore_errors=True)

    def rows(self, query: str) -> list[tuple]:
        return [tuple(row) for row in self.session.sql(query).collect()]

    def columns(self, relation: str) -> list[str]:
        return self.session.sql(f"select * from {relation}").columns

    def arrow(self, query: str) -> pa.Table:
        return self.session.sql(query).toArrow()

    def register(self, table: str, data: pa.Table | Path) -> None:
        frame = (
            self.session.read.parquet(str(data))
            if isinstance(data, Path)
            else self.session.createDataFrame(data)
        )
        frame.createOrReplaceTempView(table)
        self._registered.add(table)

    def write_parquet(self, query: str, path: Path) -> None:
        self.session.sql(query).write.mode("overwrite").parquet(str(path))

    @contextmanager
    def exchange(self, folder: Path) -> Iterator[Path]:
        """A new folder beside the working tables (under the session's checkpoint folder, in the
        warehouse): a cluster's executors see it, where they would not see the caller's temporary
        folder. Removed with what it holds (keyed tokens) when the context ends."""
        if self._folder is None:
            raise RuntimeError("a SparkWorkspace is used inside `with`")
        shared = self._folder / f"exchange.{next(self._versions)}"
        shared.mkdir()
        try:
            yield shared
        finally:
            shutil.rmtree(shared, ignore_errors=True)

    def splink_api(self) -> Any:
        from splink import SparkAPI

        return SparkAPI(spark_session=self.session, register_udfs_automatically=False)
