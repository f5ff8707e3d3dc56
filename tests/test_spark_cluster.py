"""ldm on a cluster's master, on one machine: Spark's `local-cluster` master starts a standalone
master and a worker whose executor is a separate JVM with its own Python workers, as a cluster's
are. The linkage workspace's files (written by one JVM, read by others), Splink's model on Spark
(trained on a sample of the anchor records that both engines must choose alike) and
the statistics functions (Python UDFs in the executors) are run there and compared with DuckDB and
ldm.stats.

A SparkContext is one per process and the marts' test module keeps one open in its worker, so the
session runs in a child process (`main` below), which prints what it found as JSON.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyspark
import pytest
from test_probabilistic import KEY, febrl

from ldm import stats
from ldm.linkage.engine import LinkageConfig
from ldm.linkage.fellegi_sunter import ProbabilisticConfig
from ldm.linkage.tables import link_tables

pytestmark = pytest.mark.slow

# One worker with two cores and 1 GB: its executor is a JVM of its own (measured on 2 cores: the
# link takes 49 s here, 62 s with two one-core workers, whose shuffles then cross JVMs too).
MASTER = "local-cluster[1,2,1024]"
PEOPLE = 600  # FEBRL4's first originals, their duplicates and as many other records
# Fewer anchor records than these data have (between 150 and 300), so that the model is trained on a
# sample of them: the engines must choose the same one (on DuckDB, 21 records are decided otherwise
# with this sample than with all of them).
CONFIG = LinkageConfig(scoring=ProbabilisticConfig(anchor_records=150))
TESTS = Path(__file__).resolve().parent


def sample() -> tuple[pa.Table, pa.Table]:
    originals, duplicates = febrl("dataset4a.csv.gz"), febrl("dataset4b.csv.gz")
    spine = originals.slice(0, PEOPLE)
    known = {record.split("-")[1] for record in spine["id"].to_pylist()}
    ours = [i for i, record in enumerate(duplicates["id"].to_pylist()) if record.split("-")[1] in known]
    others = [i for i, record in enumerate(duplicates["id"].to_pylist()) if record.split("-")[1] not in known]
    return spine, duplicates.take(ours + others[:PEOPLE])


def main(work: str) -> None:
    """In the child process: link on the cluster, call the statistics functions in its executors."""
    from ldm.spark import udfs
    from ldm.spark.session import start_session
    from ldm.spark.workspace import SparkWorkspace

    session = start_session(Path(work), memory="1g", master=MASTER)
    try:
        context = session.sparkContext
        spine, records = sample()
        with SparkWorkspace(session) as ws:
            linked = link_tables(spine, records, KEY, config=CONFIG, workspace=ws)
        udfs.register(session)
        rows = session.sql(
            "select id, wilson_lower(id, 40, 0.95) as lower, byar_upper(id, 0.95) as upper "
            "from range(0, 40, 1, 4)"
        ).collect()
        executors = context._jsc.sc().getExecutorIds().size()  # the driver is not among them
        print(
            json.dumps(
                {
                    "master": context.master,
                    "executors": executors,
                    "shuffle_partitions": session.conf.get("spark.sql.shuffle.partitions"),
                    "linked": linked.to_pylist(),
                    "intervals": [[row["id"], row["lower"], row["upper"]] for row in rows],
                }
            )
        )
    finally:
        session.stop()


def test_linkage_and_statistics_run_in_a_clusters_executors(tmp_path):
    # A local-cluster worker keeps its executors' logs in pyspark's own folder (SPARK_HOME/work; its
    # work folder cannot be set for local-cluster): what this run adds there is removed after it.
    logs = Path(pyspark.__file__).parent / "work"
    before = set(logs.iterdir()) if logs.is_dir() else set()
    try:
        command = [
            sys.executable,
            "-c",
            f"import test_spark_cluster as t; t.main({str(tmp_path / 'work')!r})",
        ]
        done = subprocess.run(
            command, cwd=TESTS, capture_output=True, text=True, timeout=900,
            env={
                **os.environ,
                "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
            },
        )  # fmt: skip
    finally:
        for added in (set(logs.iterdir()) if logs.is_dir() else set()) - before:
            shutil.rmtree(added, ignore_errors=True)
        if logs.is_dir() and not before and not any(logs.iterdir()):
            logs.rmdir()
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["master"] == MASTER and found["executors"] == 1
    assert found["shuffle_partitions"] == "200"  # Spark's own, not twice this machine's cores

    spine, records = sample()
    on_duckdb = link_tables(spine, records, KEY, config=CONFIG).to_pylist()
    assert link_tables(spine, records, KEY).to_pylist() != on_duckdb  # the sample is a sample
    assert found["linked"] == on_duckdb
    steps = {row["step"] for row in on_duckdb}
    assert "probabilistic" in steps and len(steps) > 2  # the trace steps and Splink's model both decided

    assert len(found["intervals"]) == 40
    for x, lower, upper in found["intervals"]:
        assert (lower, upper) == (stats.wilson_lower(x, 40, 0.95), stats.byar_upper(x, 0.95))
