"""build_marts_spark(): the marts of a DuckDB store, built again by the same dbt project on Spark.

The steps, each in its own module: start a local SparkSession whose state lives in the work folder
(session.py); copy the store's tables into it (tables.py: its analyst and governance schemas, dbt's
sources among them); register ldm.stats' interval functions on it (udfs.py) and the way to run the
project's Python models on it (python_models.py); then run `dbt build --target spark` in this
process with dbt's own runner (dbt.cli.main.dbtRunner), so that dbt-spark's `session` method, which
asks `SparkSession.builder.getOrCreate()` for its session, is given this one, UDFs included. A
subprocess could not share it: a SparkSession and its Python UDFs live in the process that made
them.

The vars are those ldm.marts.build.build_marts gives dbt (the definitions digest, and the caller's),
so that the two engines compute the same periods under the same definitions. What dbt builds on
Spark is the same set of models, seeds and data tests as on DuckDB (the unit tests run in the test
command, on both engines, not in a production build); a failure is raised as LdmError with one line
per failing node, as build_marts does.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

from ldm.config import Settings
from ldm.errors import LdmError
from ldm.marts.build import (
    DBT_PROJECT,
    PARSE_FILE,
    RUN_RESULTS,
    _cache_folder,
    _keep_parse,
    _listed,
    _parse_key,
    _restore_parse,
    dbt_problems,
    definitions_digest,
)
from ldm.spark import python_models, udfs
from ldm.spark.session import require_spark, start_session
from ldm.spark.tables import copy_store
from ldm.spark.warehouse import MARTS_SCHEMA, WAREHOUSE_SCHEMAS

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import SparkSession

SERIES_TABLE = "mart_periods"
SESSION_FOLDER = "spark"  # the session's warehouse and metastore, under the work folder


@dataclass
class SparkMarts:
    """The marts built on Spark, readable while the session runs; close() (or `with`) stops it."""

    session: SparkSession
    summary: str
    sources: dict[str, int]  # rows copied from the store (dbt's sources and the rest), per "schema.table"
    variables: dict  # the vars dbt built with
    seconds: dict[str, float] = field(default_factory=dict)  # wall time of each step

    def tables(self) -> list[str]:
        """The tables of the marts database (schema `marts` on DuckDB)."""
        tables = self.session.catalog.listTables(MARTS_SCHEMA)  # and the session's temporary views
        return sorted(table.name for table in tables if not table.isTemporary)

    def read(self, table: str) -> pa.Table:
        """A mart's rows as an Arrow table (types as Spark holds them)."""
        return self.session.table(f"{MARTS_SCHEMA}.{table}").toArrow()

    def read_all(self) -> dict[str, pa.Table]:
        """Every mart's rows, by name."""
        return {table: self.read(table) for table in self.tables()}

    def warehouse_files(self) -> dict[str, list[str] | pa.Table]:
        """Each table of the warehouse that the audit covers (the store's copied tables and the marts),
        by "schema.table": the Parquet files that hold its rows, as the metastore names them, read
        where they lie so that a city's tables never pass through Python; or its rows, for a table
        with no file, a view, or a table partitioned by its values (the marts: by period), whose
        partition columns are in its folders' names rather than in its files."""
        found: dict[str, list[str] | pa.Table] = {}
        for database in WAREHOUSE_SCHEMAS:
            if not self.session.catalog.databaseExists(database):
                continue
            for table in self.session.catalog.listTables(database):
                if table.isTemporary:
                    continue
                name = f"{database}.{table.name}"
                frame = self.session.table(name)
                partitioned = any(column.isPartition for column in self.session.catalog.listColumns(name))
                plain = table.tableType != "VIEW" and not partitioned
                files = sorted(_local_path(uri) for uri in frame.inputFiles()) if plain else []
                found[name] = files or frame.toArrow()
        return found

    def close(self) -> None:
        self.session.stop()

    def __enter__(self) -> SparkMarts:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _local_path(uri: str) -> str:
    """The path of a warehouse file Spark names by its URI (the warehouse is on a local or mounted file
    system: docs/spark.md)."""
    parsed = urlparse(uri)
    if parsed.scheme not in ("", "file"):
        raise LdmError(f"the Spark warehouse file {uri} is not on a file system this machine can read")
    return unquote(parsed.path)


def _summary(target: Path) -> str:
    """dbt's closing counts, from its run_results.json: "PASS=n WARN=n ERROR=n SKIP=n TOTAL=n"."""
    results = json.loads((target / RUN_RESULTS).read_text())["results"]
    counts = Counter(result["status"] for result in results)
    passed = counts["success"] + counts["pass"]
    errors = counts["error"] + counts["fail"] + counts["runtime error"]
    return f"PASS={passed} WARN={counts['warn']} ERROR={errors} SKIP={counts['skipped']} TOTAL={len(results)}"


def run_dbt_spark(
    variables: dict,
    work: Path,
    full_refresh: bool,
    threads: int | None = None,
    select: list[str] | None = None,
    unit_tests: bool = False,
    command: str = "build",
) -> str:
    """`dbt build --target spark` (or another dbt `command`; of the `select`ed nodes, or all) in this
    process, on the session that is running; dbt's closing counts, or LdmError naming what failed.
    dbt's unit tests are left out unless `unit_tests`, as on DuckDB (ldm.marts.build.build_marts)."""
    from dbt.cli.main import dbtRunner

    target = work / "target"
    (target / RUN_RESULTS).unlink(missing_ok=True)  # an earlier run's results must not be read as this one's
    # --quiet: dbt prints its errors only (in this process, its output is ldm's); the full log is in logs/.
    args = [
        "--quiet", command, "--target", "spark", "--vars", json.dumps(variables), "--no-use-colors",
        "--project-dir", str(DBT_PROJECT), "--profiles-dir", str(DBT_PROJECT),
        "--target-path", str(target), "--log-path", str(work / "logs"),
    ]  # fmt: skip
    if full_refresh:
        args.append("--full-refresh")
    if threads:
        args += ["--threads", str(threads)]
    if select:
        args += ["--select", *select]
    if not unit_tests:
        args += ["--exclude-resource-type", "unit_test"]
    # dbt's parse of the project is kept as build_marts keeps it (ldm.marts.build), under a key of its
    # own for the Spark target; dbt checks a restored parse and parses in full if anything differs.
    cached = _cache_folder() / f"{_parse_key(tuple(args), 'spark target')}-{PARSE_FILE}"
    _restore_parse(cached, target)
    outcome = dbtRunner().invoke(args)
    if outcome.success:
        _keep_parse(target, cached)
    failed, warned = dbt_problems(target)
    if not outcome.success:
        if failed:
            raise LdmError(f"dbt build on Spark failed:\n{_listed(failed)}")
        cause = outcome.exception or "see dbt's log in " + str(work / "logs")
        raise LdmError(f"dbt build on Spark failed: {cause}")
    summary = _summary(target)
    return summary + ("; " + "; ".join(warned) if warned else "")


def open_marts(work: Path, cores: int | None = None, memory: str = "2g") -> SparkMarts:
    """The marts a build left in the work folder `work`, on a new local session (close it when done):
    what an analyst's pyspark session reads, and what `ldm audit verify --spark-dir` checks."""
    require_spark()
    work = Path(work).resolve()
    if not (work / SESSION_FOLDER / "metastore").is_dir():
        raise LdmError(f"{work} holds no Spark warehouse (`ldm run --engine spark` builds one)")
    session = start_session(work / SESSION_FOLDER, cores=cores, memory=memory)
    if not session.catalog.databaseExists(MARTS_SCHEMA):
        session.stop()
        raise LdmError(f"the Spark warehouse in {work} holds no marts (`ldm run --engine spark` builds them)")
    udfs.register(session)  # the marts' interval functions, for queries beside them
    return SparkMarts(session, "", {}, {})


def build_marts_spark(
    store: Path,
    work: Path,
    variables: dict | None = None,
    full_refresh: bool = False,
    cores: int | None = None,
    memory: str = Settings.spark_memory,
    threads: int | None = None,
    session: SparkSession | None = None,
    master: str | None = None,
) -> SparkMarts:
    """Build the dbt project's marts on a Spark session from the DuckDB `store` (read only): a local
    one unless `master` names a cluster's (ldm.spark.session.start_session).

    Spark's warehouse, metastore, dbt's target/ and logs/ all go under `work`. The session is left
    running in the returned SparkMarts, to read the marts; close it when done. A work folder whose
    warehouse holds no marts yet (or `full_refresh`) builds every period, as a new DuckDB store does.
    A `session` already running (one that `start_session` started on `work`'s session folder, as
    `ldm run --engine spark` does to link on it first) is used instead of starting one.
    """
    require_spark()
    work = Path(work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    variables = {"definitions_digest": definitions_digest(), **(variables or {})}
    seconds = {}
    started = time.perf_counter()
    session = session or start_session(work / SESSION_FOLDER, cores=cores, memory=memory, master=master)
    seconds["start session"] = time.perf_counter() - started
    try:
        started = time.perf_counter()
        sources = copy_store(store, session, work)
        seconds["copy the store"] = time.perf_counter() - started
        udfs.register(session)
        python_models.install()
        full_refresh = full_refresh or not session.catalog.tableExists(f"{MARTS_SCHEMA}.{SERIES_TABLE}")
        started = time.perf_counter()
        summary = run_dbt_spark(variables, work, full_refresh, threads)
        seconds["dbt build"] = time.perf_counter() - started
    except BaseException:
        session.stop()
        raise
    return SparkMarts(session, summary, sources, variables, seconds)
