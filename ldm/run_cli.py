"""`ldm run`, `ldm doctor` and `ldm bench`: the monthly job, its health check and its benchmark."""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import tempfile
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from ldm import dialects
from ldm.benchmark import cached_sample, duckdb_floor, peak_memory_mb
from ldm.config import load_settings
from ldm.errors import LdmError
from ldm.feeds.spec import load_specs
from ldm.files import shown
from ldm.marts.build import DBT_PROJECT, build_marts
from ldm.pipeline import RunReport, run_pipeline
from ldm.progress import Progress
from ldm.pseudonymise.batch import BatchResult
from ldm.pseudonymise.keys import init_key, load_key
from ldm.store import current_revision, head_revision

ENGINES = tuple(dialects.DIALECTS)  # the engines that can build the marts
CONSTRAINTS = Path(__file__).resolve().parent.parent / "constraints.txt"
CHECKED_PACKAGES = ("duckdb", "dbt-core", "dbt-duckdb", "sqlalchemy", "duckdb-engine", "alembic",
                    "great-expectations", "pyarrow", "splink", "cryptography")  # fmt: skip


def register(subparsers: argparse._SubParsersAction) -> None:
    run = subparsers.add_parser(
        "run",
        help="the monthly job: validate, pseudonymise, load, link, opt-outs, marts, audit",
        description="Run every stage on a folder of extracts. The store changes only if every stage succeeds; "
        "extracts already pseudonymised or loaded (same checksum) are not processed again.",
    )
    run.add_argument("--extracts", type=Path, required=True, help="folder of extracts (identifiable zone)")
    run.add_argument("--store", type=Path, help="the store (default: setting store / LDM_STORE)")
    run.add_argument(
        "--key-file", type=Path, help="master key file (default: setting key_file / LDM_KEY_FILE)"
    )
    run.add_argument("--config", type=Path, help="settings file (default: ldm.toml or LDM_CONFIG)")
    run.add_argument("--today", type=datetime.date.fromisoformat, help="dates after this are in the future")
    run.add_argument(
        "--specs", type=Path, help="folder of feed specs (default: setting specs / LDM_SPECS, else built in)"
    )
    run.add_argument(
        "--engine",
        choices=ENGINES,
        help="the engine that links and builds the marts (default: setting engine / LDM_ENGINE, else duckdb); "
        "spark links each batch on a Spark session (--spark-master), builds the marts with dbt-spark in the warehouse "
        "--spark-dir and copies them into the store",
    )
    run.add_argument(
        "--spark-dir", type=Path, help="the Spark warehouse (default: setting spark_dir, else <store>_spark)"
    )
    run.add_argument(
        "--spark-master",
        help="the Spark master of --engine spark (default: setting spark_master / LDM_SPARK_MASTER, else "
        "local[N] on this machine's cores), e.g. spark://host:7077; the executors must see --spark-dir",
    )
    run.add_argument(
        "--full-refresh",
        action="store_true",
        help="compute every period of the marts again (a run otherwise adds the periods not yet built, "
        "and those whose definitions or records changed, and keeps the others)",
    )
    run.set_defaults(handler=run_run)

    doctor = subparsers.add_parser(
        "doctor", help="check the key, the store and the installed versions, and say what to fix"
    )
    doctor.add_argument("--store", type=Path, help="the store to check")
    doctor.add_argument("--key-file", type=Path, help="master key file to check")
    doctor.add_argument("--config", type=Path, help="settings file")
    doctor.set_defaults(handler=run_doctor)

    bench = subparsers.add_parser(
        "bench",
        help="time the whole pipeline on generated data against the DuckDB floor",
        description="Generate N persons once (cached), run the pipeline into a new store, and print per-stage "
        "wall time, rows per second, peak memory, the floor (DuckDB reading the same extracts into plain "
        "tables) and the ratio pipeline / floor.",
    )
    bench.add_argument("--persons", type=int, default=10_000)
    bench.add_argument("--seed", type=int, default=1)
    bench.add_argument(
        "--engine", choices=ENGINES, default="duckdb", help="the engine that links and builds the marts"
    )
    bench.set_defaults(handler=run_bench)


def file_lines(result: BatchResult) -> list[str]:
    """Every file of the extracts folder and what the run did with it, in name order."""
    handled = [
        *((manifest.input_file, f"read: {manifest.rows_accepted:,} rows accepted, {manifest.rows_quarantined:,} "
           f"quarantined") for manifest, _ in result.done),
        *((path.name, f"already pseudonymised (same bytes): {earlier.name}") for path, earlier in result.resent),
        *((path.name, f"the same bytes as {shown(first.name)}: read once") for path, first in result.duplicates),
        *((path.name, "matches no feed spec: left alone (an ignore pattern)") for path in result.unrecognised),
    ]  # fmt: skip
    width = min(40, max((len(shown(name)) for name, _ in handled), default=0))
    return [f"  {shown(name):<{width}}  {what}" for name, what in sorted(handled)]


def print_summary(report: RunReport) -> None:
    if report.pseudonymised:
        print("files:")
        print("\n".join(file_lines(report.pseudonymised)))
    print(f"rows in {report.rows_in:,}; quarantined {report.quarantined:,}")
    if report.loaded:
        for load in report.loaded.loaded:
            linked = sum(c.linked for c in load.steps)
            steps = ", ".join(f"{c.step} {c.linked:,}" for c in load.steps if c.linked)
            again = (f"  duplicates {load.rows_duplicate:,}" if load.rows_duplicate else "") + (
                f"  already loaded {load.rows_resent:,}" if load.rows_resent else "") + (
                f"  revised {load.rows_revised:,}" if load.rows_revised else "")  # fmt: skip
            print(f"  {load.feed:<20} loaded {load.rows_loaded:>11,}  linked {linked:>11,}  opted out "
                  f"{load.withheld_by_opt_out:>8,}" + again + (f"  [{steps}]" if steps else ""))  # fmt: skip
        if report.loaded.already_loaded:
            print(f"batches already in the store: {len(report.loaded.already_loaded)}")
        for name, first in report.loaded.duplicates:
            print(f"{name}: the same bytes as {first}; loaded once")
    print(f"marts: {report.marts}; mart expectations passed")
    if report.warehouse is not None:
        print(f"Spark warehouse: {report.warehouse} (the marts as tables of its database `marts`)")
    print(f"audit: {report.audit_entries} entries, keyed chain intact")
    print(f"audit head {report.audit_head} (keep it: ldm audit verify --expect-head {report.audit_head})")
    for stage, seconds in report.seconds.items():
        print(f"  {stage:<32} {seconds:8.1f} s")


def run_run(args: argparse.Namespace) -> int:
    settings = load_settings(
        args.config, store=args.store, key_file=args.key_file, today=args.today, specs=args.specs,
        engine=args.engine, spark_dir=args.spark_dir, spark_master=args.spark_master,
    )  # fmt: skip
    report = run_pipeline(args.extracts, settings, Progress(), full_refresh=args.full_refresh)
    print_summary(report)
    return 0


def _pinned() -> dict[str, str]:
    pins = {}
    if CONSTRAINTS.exists():
        for line in CONSTRAINTS.read_text().splitlines():
            if "==" in line:
                name, pinned = line.split("==", 1)
                pins[name.strip().lower().replace("_", "-")] = pinned.strip()
    return pins


def run_doctor(args: argparse.Namespace) -> int:
    problems = 0

    def report(ok: bool, what: str, fix: str = "") -> None:
        nonlocal problems
        problems += not ok
        print(f"{'ok ' if ok else 'FIX'}  {what}" + ("" if ok else f"\n     {fix}"))

    report(sys.version_info >= (3, 11), f"Python {sys.version.split()[0]}", "use Python 3.11 or newer")
    pins = _pinned()
    for package in CHECKED_PACKAGES:
        try:
            installed = version(package)
        except PackageNotFoundError:
            report(False, f"{package} not installed", "run: python3 tasks.py test (installs the pinned set)")
            continue
        wanted = pins.get(package)
        report(wanted in (None, installed), f"{package} {installed}" + (f" (pinned {wanted})" if wanted else ""),
               "reinstall from constraints.txt: python3 tasks.py test")  # fmt: skip
    try:
        settings = load_settings(args.config, store=args.store, key_file=args.key_file)
    except LdmError as error:
        report(False, "settings", str(error))
        return 1
    key = None
    try:
        key = load_key(settings.key_file)
        report(True, f"key file readable, key id {key.key_id}")
    except LdmError as error:
        report(False, "key", str(error))
    if settings.store is None:
        report(False, "no store configured", "pass --store FILE, set LDM_STORE or store in ldm.toml")
    elif not settings.store.exists():
        report(
            False, f"store {settings.store} does not exist", f"run: ldm db upgrade --store {settings.store}"
        )
    else:
        try:
            revision = current_revision(settings.store)
            report(revision == head_revision(), f"store {settings.store} at revision {revision}",
                   f"run: ldm db upgrade --store {settings.store}")  # fmt: skip
        except LdmError as error:
            report(False, f"store {settings.store}", str(error))
        else:
            _doctor_store_key(settings.store, key, report)
    if settings.specs is not None:
        try:
            specs = load_specs(settings.specs)
            report(True, f"feed specs {settings.specs}: {len(specs)} specs, no problems")
        except LdmError as error:
            report(False, f"feed specs {settings.specs}", f"{error}")
    report((DBT_PROJECT / "dbt_project.yml").exists(), f"dbt project {DBT_PROJECT}", "restore dbt_project/")
    print("all good" if not problems else f"{problems} thing(s) to fix")
    return 1 if problems else 0


def _doctor_store_key(store: Path, key, report) -> None:
    """Whether the key file is the store's own (a run under another key is refused)."""
    from ldm.load.batches import store_key_ids
    from ldm.store import connect

    con = connect(store, read_only=True)
    try:
        key_ids = store_key_ids(con)
    finally:
        con.close()
    if not key_ids:
        report(True, "store holds no batch yet: the first run binds it to this key")
    elif key is not None:
        report(key_ids == [key.key_id], f"store built with key id {', '.join(key_ids)}",
               f"use the store's own key file (key id {key_ids[0]}); this one has key id {key.key_id}")  # fmt: skip


def run_bench(args: argparse.Namespace) -> int:
    sample = cached_sample(args.persons, args.seed)
    floor_seconds, rows = duckdb_floor(sample / "extracts")
    with tempfile.TemporaryDirectory(prefix="ldm-bench-") as folder:
        work = Path(folder)
        file_floor, _ = duckdb_floor(sample / "extracts", work / "floor.duckdb")
        (work / "floor.duckdb").unlink()
        key_file = work / "bench.key"
        init_key(key_file)
        settings = load_settings(
            None, store=work / "store.duckdb", key_file=key_file, today=datetime.date(2025, 4, 1),
            engine=args.engine,
        )  # fmt: skip
        started = time.perf_counter()
        report = run_pipeline(sample / "extracts", settings, Progress())
        total = time.perf_counter() - started
        # The next month's dbt build with no new period and no changed record: what a monthly run
        # pays for the marts once the series is built (the first build computes every period).
        variables = {"reporting_period_end": settings.reporting_period_end.isoformat()}
        started = time.perf_counter()
        if report.warehouse is not None:
            from ldm.spark.build import build_marts_spark

            build_marts_spark(
                settings.store, report.warehouse, variables, memory=settings.spark_memory,
                master=settings.spark_master,
            ).close()  # fmt: skip
        else:
            build_marts(settings.store, settings.store.parent / ".ldm-dbt", variables)
        monthly_marts = time.perf_counter() - started
    print(f"persons                {args.persons:,}   cores: {len(os.sched_getaffinity(0))}   "
          f"linkage and marts on: {args.engine}")  # fmt: skip
    print(f"rows in the extracts   {rows:,}")
    for stage, seconds in report.seconds.items():
        print(f"  {stage:<32} {seconds:8.1f} s")
    print(f"  {'marts again, nothing new (dbt)':<32} {monthly_marts:8.1f} s")
    print(f"pipeline               {total:8.1f} s  {rows / total:,.0f} rows/s")
    print(
        f"floor: DuckDB reads the extracts into memory  {floor_seconds:8.1f} s  {rows / floor_seconds:,.0f} rows/s"
    )
    print(
        f"floor: DuckDB reads them into a database file {file_floor:8.1f} s  {rows / file_floor:,.0f} rows/s"
    )
    print(f"ratio pipeline / memory floor {total / floor_seconds:8.1f}x")
    print(f"ratio pipeline / file floor   {total / file_floor:8.1f}x")
    print(f"peak memory            {peak_memory_mb():,.0f} MB")
    return 0
