"""Where the linkage engine's working tables live and its statements run: one small class per engine.

The engine's builders write SQL (in the current dialect, ldm.dialects); a workspace runs it and
keeps its results as the working tables ldm.linkage.working names. The engine asks only for what
both engines can do: make a table of a query's rows, add a query's rows to one, drop one, read rows
back, and hand Splink its database API. DuckDB does each in one statement on a connection
(`DuckDBWorkspace`); Spark, whose temporary views cannot be written to, adds the new rows as one
more part of the table's files instead of inserting (ldm.spark.workspace). A connection passed where a
workspace is expected is taken as a DuckDB workspace on it (`workspace`), so that DuckDB callers keep
passing their connection.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from ldm.dialects import DIALECTS, using
from ldm.linkage.columns import columns_of
from ldm.sql import quoted


class Workspace(ABC):
    """An engine's place for the working tables of a linkage run."""

    dialect: str  # the name of the dialect its SQL is written in (ldm.dialects)

    @abstractmethod
    def create(self, table: str, query: str) -> None:
        """Make (or replace) the working table `table` holding the rows of `query`."""

    @abstractmethod
    def append(self, table: str, query: str) -> None:
        """Add the rows of `query` to the working table `table` (columns by position)."""

    @abstractmethod
    def drop(self, table: str) -> None:
        """Drop the working table `table`."""

    @abstractmethod
    def rows(self, query: str) -> list[tuple]:
        """The rows of `query`, as tuples (for counts and small results only)."""

    @abstractmethod
    def arrow(self, query: str) -> pa.Table:
        """The rows of `query` as an Arrow table."""

    @abstractmethod
    def register(self, table: str, data: pa.Table | Path) -> None:
        """Make Arrow rows, or a Parquet file or folder, readable as `table`."""

    @abstractmethod
    def write_parquet(self, query: str, path: Path) -> None:
        """Write the rows of `query` as Parquet at `path` (a file, or on Spark a folder of parts)."""

    @abstractmethod
    def splink_api(self) -> Any:
        """Splink's database API over this workspace's tables."""

    @abstractmethod
    def columns(self, relation: str) -> list[str]:
        """Column names of a table, view or table function, in their order."""

    @contextmanager
    def exchange(self, folder: Path) -> Iterator[Path]:
        """A folder for the files passed between the caller and this workspace (`register`,
        `write_parquet`), while the context lasts: `folder`, the caller's own, where the workspace
        runs in the caller's process. A workspace whose tasks run elsewhere gives a folder they see."""
        yield folder

    def value(self, query: str) -> Any:
        """The first column of the first row of `query`."""
        return self.rows(query)[0][0]

    def sql_dialect(self):
        """A context in which ldm's builders write this workspace's dialect."""
        return using(self.dialect)


class DuckDBWorkspace(Workspace):
    """Working tables as temporary tables of a DuckDB connection."""

    dialect = "duckdb"

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self._registered: set[str] = set()

    def create(self, table: str, query: str) -> None:
        self.con.execute(f"create or replace temp table {quoted(table)} as {query}")

    def append(self, table: str, query: str) -> None:
        self.con.execute(f"insert into {quoted(table)} {query}")

    def drop(self, table: str) -> None:
        if table in self._registered:
            self._registered.discard(table)
            self.con.unregister(table)
        else:
            self.con.execute(f"drop table {quoted(table)}")

    def rows(self, query: str) -> list[tuple]:
        return self.con.execute(query).fetchall()

    def columns(self, relation: str) -> list[str]:
        return columns_of(self.con, relation)

    def arrow(self, query: str) -> pa.Table:
        return self.con.sql(query).to_arrow_table()

    def register(self, table: str, data: pa.Table | Path) -> None:
        if isinstance(data, Path):
            data = self.con.read_parquet(str(data))
        self.con.register(table, data)
        self._registered.add(table)

    def write_parquet(self, query: str, path: Path) -> None:
        self.con.execute(DIALECTS[self.dialect].write_parquet(query, path))

    def splink_api(self) -> Any:
        from splink import DuckDBAPI

        return DuckDBAPI(connection=self.con)


def workspace(con: Workspace | duckdb.DuckDBPyConnection) -> Workspace:
    """`con` if it is a workspace, else a DuckDB workspace on the connection `con`."""
    return con if isinstance(con, Workspace) else DuckDBWorkspace(con)
