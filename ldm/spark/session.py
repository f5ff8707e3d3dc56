"""The SparkSession that links and builds the marts, with everything it writes under one work folder.

Spark's defaults scatter state into the current directory (spark-warehouse/, metastore_db/,
derby.log), which is often the repository (the tests run there). Here the warehouse (the Parquet
files of every table), the embedded Derby metastore (the catalogue of databases and tables), Hive's
scratch space, RDD checkpoints and the logging settings all live under `work`, so that a build
leaves nothing behind it but that folder.

The session is a local one by default (`local[N]`, one worker thread per core; a cluster's master is
the setting `spark_master`) with Hive support, as dbt-spark's `session` method expects: dbt-spark
asks `SparkSession.builder.getOrCreate()` for a session on every statement, and gets this one.
Nothing is fetched at run time: pyspark's wheel carries every jar used here (Hive, Derby, Parquet);
Delta or Iceberg would need more.

Settings that make the two engines agree:

- the session time zone is UTC, so that no date or timestamp moves between the store and Spark;
- ANSI mode stays on (Spark 4's default): a failed cast, an overflow or a division by zero stops the
  build loudly, as DuckDB stops on the first two (DuckDB gives inf or NaN for the third, Spark
  without ANSI a silent NULL; the marts guard their denominators, so neither happens in them);
- shuffles on a local master use a few partitions (twice its threads) rather than Spark's 200: the
  marts' queries are many, and 200 tasks per shuffle of a few thousand rows is overhead (pass
  `shuffle_partitions` for a city's or a region's data); a cluster's master keeps Spark's own.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from ldm.config import LOCAL_MASTER
from ldm.errors import LdmError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

APP_NAME = "ldm-marts"
# Errors only, as one plain line each (Spark 4 logs JSON by default): dbt reports what failed.
LOG4J2 = """\
rootLogger.level = error
rootLogger.appenderRef.console.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{HH:mm:ss} spark %p %c{1}: %m%n
# pyspark starts Spark as a shell, whose logger would otherwise reset the level to WARN (and say so).
logger.repl.name = org.apache.spark.repl.Main
logger.repl.level = error
# Hive's metastore logs an error with its stack trace for every `create database if not exists` of a
# database that exists (dbt-spark says it for each schema); a failure that matters reaches Spark's caller.
logger.hms.name = org.apache.hadoop.hive.metastore.RetryingHMSHandler
logger.hms.level = off
"""


GARBAGE_COLLECTOR = "-XX:+UseParallelGC"  # the driver's; a cluster's executors keep their own settings
# Java options that every JVM started by the `java` launcher reads, Spark's driver among them.
JAVA_OPTION_VARIABLES = ("JDK_JAVA_OPTIONS", "JAVA_TOOL_OPTIONS")
CHOSEN_COLLECTOR = re.compile(r"-XX:[+-]Use\w+GC\b")


def collector_options(environment: Mapping[str, str]) -> list[str]:
    """GARBAGE_COLLECTOR, unless the environment's Java options choose a collector already: a JVM
    given two refuses to start."""
    chosen = " ".join(environment.get(name, "") for name in JAVA_OPTION_VARIABLES)
    return [] if CHOSEN_COLLECTOR.search(chosen) else [GARBAGE_COLLECTOR]


def _java_option(name: str, value: Path) -> str:
    """`-Dname="value"` for spark.driver.extraJavaOptions, which Spark's launcher splits on spaces
    outside double quotes (a backslash escapes a quote or a backslash inside them)."""
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'-D{name}="{escaped}"'


def require_spark() -> None:
    """Raise LdmError unless pyspark and a Java runtime are installed."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise LdmError(
            "the Spark engine is an optional extra: install it with `pip install -e '.[spark]'` "
            "(python3 tasks.py test does)"
        ) from None
    if not (os.environ.get("JAVA_HOME") or shutil.which("java")):
        raise LdmError(
            "Spark needs a Java runtime (17 or 21) and none was found: install one (on Debian, "
            "`apt-get install default-jre-headless`) or set JAVA_HOME"
        )


METASTORE_DB = "metastore_db"


def check_metastore_free(database: Path) -> None:
    """Raise LdmError if another process has the embedded Derby metastore `database` open.

    Embedded Derby admits one JVM at a time: it holds an exclusive lock on `dbex.lck` while the
    database is booted (a POSIX record lock, which Python's lockf sees). Without this check a second
    session fails at its first catalogue call, after pages of Hive's retries; with it, it fails at
    once and says why. A lock file left by a process that ended is free again, as Derby itself finds.
    """
    lock = database / "dbex.lck"
    if not lock.exists():
        return
    descriptor = os.open(lock, os.O_RDWR)
    try:
        fcntl.lockf(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        raise LdmError(
            f"the Spark metastore in {database.parent} is open in another Spark session (an embedded "
            "Derby metastore admits one at a time): close that session and try again; for several users "
            "at once, give Spark a metastore server (docs/spark.md)"
        ) from None
    finally:
        os.close(descriptor)  # and with it the lock just taken


def local_threads(master: str | None, cores: int) -> int | None:
    """How many threads run the tasks of a local master (`cores` for none, or for local[*]); None for
    a cluster's master."""
    if master is None:
        return cores
    found = LOCAL_MASTER.fullmatch(master)
    if found is None:
        return None
    count = (found.group(2) or "1").strip()
    return cores if count == "*" else int(count)


def start_session(
    work: Path,
    cores: int | None = None,
    memory: str = "2g",
    shuffle_partitions: int | None = None,
    master: str | None = None,
) -> SparkSession:
    """A SparkSession with Hive support whose warehouse, metastore and logs are under `work`.

    `master` is Spark's master URL: by default `local[N]`, this process's JVM running every task on
    `cores` threads (default: the cores this process may use), with `memory` as its heap. A cluster's
    master (`spark://host:7077`, `yarn`, `k8s://...`, or `local-cluster[...]` on one machine) runs the
    tasks in executors elsewhere: they read and write the working tables' and the warehouse's files
    by their paths, so `work` must be on storage every executor sees at the same path, and their
    Python must have ldm installed (the statistics functions run there). Shuffles then use Spark's
    own partition count unless `shuffle_partitions` is given. Only one SparkContext can run in a
    process: a second call while one runs is refused rather than handed a session whose folders are
    somewhere else.
    """
    require_spark()
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    if SparkContext._active_spark_context is not None:
        raise LdmError("a Spark session is already running in this process; stop it first")
    work = Path(work).resolve()
    # A ';' would end the metastore's JDBC URL, and Spark reads * ? [ ] { } in a path as a pattern.
    if awkward := sorted(set(str(work)) & set(";*?[]{}")):
        raise LdmError(
            f"the Spark work folder {work} has {' '.join(awkward)} in its path: choose another folder"
        )
    folders = {name: work / name for name in ("warehouse", "metastore", "scratch", "checkpoints", "local")}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    if SparkContext._gateway is None:
        # This process has no JVM yet, so a lock on the metastore is another process's. (A JVM this
        # process started keeps the metastore booted after its session stops, for the next session.)
        check_metastore_free(folders["metastore"] / METASTORE_DB)
    log_settings = work / "log4j2.properties"
    log_settings.write_text(LOG4J2)
    cores = cores or len(os.sched_getaffinity(0))
    java_options = " ".join(
        [
            _java_option("log4j2.configurationFile", log_settings),
            _java_option("derby.system.home", folders["metastore"]),  # derby.log goes here
            # The throughput collector, not Java 17's default G1, whose concurrent threads cost more CPU
            # than they save in pauses for a batch job: on the committed sample on 2 cores, `ldm run
            # --engine spark` used 317-331 s of CPU with it against 376-381 s with G1 (docs/spark.md).
            *collector_options(os.environ),
        ]
    )
    metastore = f"jdbc:derby:;databaseName={folders['metastore'] / METASTORE_DB};create=true"
    # The Python workers that run the UDFs must be this interpreter, which has ldm installed: pyspark
    # starts them with PYSPARK_PYTHON (the spark.pyspark.python setting is for spark-submit only).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = (
        SparkSession.builder.master(master or f"local[{cores}]")
        .appName(APP_NAME)
        .config("spark.driver.memory", memory)
        .config("spark.driver.extraJavaOptions", java_options)
        .config("spark.log.structuredLogging.enabled", "false")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.local.dir", str(folders["local"]))
        .config("spark.sql.warehouse.dir", str(folders["warehouse"]))
        .config("spark.hadoop.javax.jdo.option.ConnectionURL", metastore)
        .config("spark.hadoop.hive.exec.scratchdir", str(folders["scratch"]))
        .config("spark.hadoop.hive.exec.local.scratchdir", str(folders["scratch"]))
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.ansi.enabled", "true")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .enableHiveSupport()
    )
    threads = local_threads(master, cores)
    if shuffle_partitions or threads:  # a cluster's master: Spark's own count
        builder = builder.config("spark.sql.shuffle.partitions", str(shuffle_partitions or 2 * threads))
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    session.sparkContext.setCheckpointDir(str(folders["checkpoints"]))
    return session
