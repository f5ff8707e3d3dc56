"""The monthly run, end to end: validate and pseudonymise, load and link, build the marts, verify.

The store is changed only if every stage succeeds: loading and dbt work on a copy of the store,
which replaces the original at the end. A failure anywhere leaves the store exactly as it was.
The run holds the store's lock from start to end (ldm.store.lock), so a second run is refused
instead of both working on copies; before anything is written it checks that the key is the
store's and that the store passes its audit check.
"""

from __future__ import annotations

import datetime
import fnmatch
import os
import shutil
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from ldm import dialects
from ldm.config import Settings
from ldm.errors import LdmError, system_error
from ldm.feeds.spec import load_specs
from ldm.files import shown
from ldm.governance import audit
from ldm.governance.seal import seal_marts, seal_upgrade
from ldm.linkage.engine import LinkageConfig
from ldm.linkage.fellegi_sunter import ProbabilisticConfig
from ldm.load.batches import LoadSummary, check_audit, check_store_key
from ldm.load.loader import load_folder
from ldm.marts.build import build_marts
from ldm.marts.expectations import validate_marts
from ldm.progress import Progress
from ldm.pseudonymise.batch import BatchResult, pseudonymise_folder
from ldm.pseudonymise.keys import AUDIT, MasterKey, load_key
from ldm.store import connect, current_revision, head_revision, upgrade
from ldm.store.lock import store_lock
from ldm.validate.report import write_report
from ldm.validate.suites import EXPECTATIONS_DIR


@dataclass
class RunReport:
    seconds: dict[str, float] = field(default_factory=dict)
    pseudonymised: BatchResult | None = None
    loaded: LoadSummary | None = None
    marts: str = ""
    audit_entries: int = 0
    audit_head: audit.Head = audit.EMPTY
    engine: str = dialects.DEFAULT  # the engine that built the marts
    warehouse: Path | None = None  # where Spark built them (engine spark)
    mart_warnings: list[str] = field(default_factory=list)  # expectations broken within their stated share

    @property
    def rows_in(self) -> int:
        return sum(m.rows_in for m, _ in self.pseudonymised.done) if self.pseudonymised else 0

    @property
    def quarantined(self) -> int:
        return sum(m.rows_quarantined for m, _ in self.pseudonymised.done) if self.pseudonymised else 0


@contextmanager
def _stage(report: RunReport, progress: Progress, name: str, total: int | None = None, unit: str = "it",
           bar: bool = False):  # fmt: skip
    """A timed stage of the run, shown as a step (with a bar when `total` is or will be known)."""
    started = time.perf_counter()
    try:
        with progress.step(name, total, unit, bar):
            yield
    finally:
        report.seconds[name] = time.perf_counter() - started


def _working_files(work: Path) -> tuple[Path, ...]:
    """The working copy of the store and what DuckDB and the audit keep beside it."""
    return work, audit.anchor_path(work), Path(str(work) + ".wal")


def _swap_in(work: Path, store: Path) -> None:
    """Replace the store (and its audit anchor) by the finished working copy."""
    os.replace(work, store)
    anchor = audit.anchor_path(work)
    if anchor.exists():
        os.replace(anchor, audit.anchor_path(store))


def enough_space(free_bytes: int, store_bytes: int, extracts_bytes: int) -> bool:
    """Whether a folder has room for a run: a copy of the store, and what the extracts may add to it.

    A loaded extract takes well under its CSV size in the store and the seam; twice the extracts
    plus the copy and 64 MB of working room is a margin, not a measurement of each run.
    """
    return free_bytes >= store_bytes + 2 * extracts_bytes + (64 << 20)


def _manifests_of(result: BatchResult, seam: Path) -> list[Path]:
    """The seam manifests of this run's extracts: those made now and those made for the same bytes before."""
    made = [seam / m.feed / f"{m.output_file.removesuffix('.parquet')}.manifest.json" for m, _ in result.done]
    return made + [earlier for _, earlier in result.resent]


def _migrate(work: Path, store: Path, key: MasterKey) -> None:
    """Bring the working copy to the newest revision; a migration of a store with data is checked
    against its audit first (on the copy itself, so nothing can change between check and use) and
    sealed after. Without a migration the load checks the copy, holding it open until it is done."""
    before = current_revision(work) if work.exists() else None
    if before is not None and before != head_revision():
        con = connect(work, read_only=True)
        try:
            check_audit(con, work, key, shown=store)
        finally:
            con.close()
    seal_upgrade(work, key, before, upgrade(work))


def run_pipeline(
    extracts: Path, settings: Settings, progress: Progress | None = None, full_refresh: bool = False
) -> RunReport:
    """Every stage on a folder of extracts; `full_refresh` computes every period of the marts again
    (otherwise a run adds the periods not yet built and keeps the others)."""
    if settings.store is None:
        raise LdmError("no store given: pass --store FILE or set LDM_STORE")
    # The one place a run chooses its SQL dialect. Every stage up to the marts runs on the DuckDB store
    # whichever engine builds the marts (`engine`; docs/spark.md says why and what is left to port).
    dialects.use(dialects.DEFAULT)
    if settings.engine == "spark":
        from ldm.spark.session import require_spark

        require_spark()  # before any work: pyspark (an optional extra) and a Java runtime
    store = settings.store.resolve()
    if not store.parent.is_dir():
        raise LdmError(f"folder {store.parent} for the store does not exist")
    key = load_key(settings.key_file)
    progress = progress or Progress(bars=False)
    with store_lock(store, progress):
        try:
            return _run(extracts, settings, store, key, progress, full_refresh)
        except OSError as error:
            raise system_error(error, "(store unchanged)") from None


def _run(
    extracts: Path, settings: Settings, store: Path, key: MasterKey, progress: Progress, full_refresh: bool
) -> RunReport:
    check_store_key(store, key)  # before anything is written
    specs = load_specs(
        settings.specs
    )  # checked as `ldm specs check` does; refused whole before any file is read
    report = RunReport(engine=settings.engine)
    today = settings.today or datetime.date.today()
    seam = settings.pseudonymised_dir()
    with _stage(report, progress, "validate and pseudonymise", unit="B", bar=True):
        report.pseudonymised = pseudonymise_folder(
            extracts,
            seam,
            key,
            specs,
            today,
            settings.max_quarantined_share,
            # The committed suites are the built-in specs'; a folder's specs bring their derived suites.
            expectations_dir=EXPECTATIONS_DIR if settings.specs is None else None,
            progress=progress,
            advance=progress.advance,
        )
        write_report(report.pseudonymised, seam)
    if report.pseudonymised.failed:
        raise LdmError(f"{report.pseudonymised.failure_message()} (store unchanged)")
    unread = [
        p
        for p in report.pseudonymised.unrecognised
        if not any(fnmatch.fnmatch(p.name, i) for i in settings.ignore)
    ]
    if unread:
        names = ", ".join(shown(path.name) for path in unread)
        raise LdmError(
            f"{len(unread)} file(s) in {extracts} match no feed spec: {names}; add a spec for them, move them "
            "out, or list them under `ignore` in the settings (store unchanged)"
        )

    work = store.with_name(store.name + ".run")
    for stale in _working_files(work):
        stale.unlink(missing_ok=True)  # left by a killed run: the lock says no other run is using it
    extracts_bytes = sum(path.stat().st_size for path in extracts.iterdir() if path.is_file())
    store_bytes = store.stat().st_size if store.exists() else 0
    free = shutil.disk_usage(store.parent).free
    if not enough_space(free, store_bytes, extracts_bytes):
        raise LdmError(
            f"not enough free space in {store.parent}: {free / 1e9:.1f} GB free, a run needs about "
            f"{(store_bytes + 2 * extracts_bytes) / 1e9:.1f} GB (a copy of the store and room to load); store unchanged"
        )
    spark = None  # the Spark session of a run on Spark: it links, then builds the marts
    if settings.engine == "spark":
        from ldm.spark import warehouse  # an optional extra: imported only when it is asked for

        report.warehouse = settings.spark_warehouse()
        warehouse.set_aside(report.warehouse)  # put back if the run fails; a killed run's copy first
    try:
        if store.exists():
            shutil.copy2(store, work)
            if audit.anchor_path(store).exists():
                shutil.copy2(audit.anchor_path(store), audit.anchor_path(work))
        with _stage(report, progress, "migrate store"):
            _migrate(work, store, key)
        if report.warehouse is not None:  # one Spark session links, then builds the marts
            spark = _spark_session(report.warehouse, settings.spark_memory, settings.spark_master)
        with _stage(report, progress, "load, link and apply opt-outs", unit="row", bar=True):
            workspace = _spark_workspace(spark) if spark is not None else None
            linkage = LinkageConfig(
                scoring=ProbabilisticConfig(threshold=settings.link_threshold), workspace=workspace
            )
            with workspace or nullcontext():
                report.loaded = load_folder(
                    seam, work, key, progress=progress, linkage=linkage, advance=progress.advance,
                    only=_manifests_of(report.pseudonymised, seam), shown=store,
                )  # fmt: skip
        with _stage(report, progress, "build and test marts (dbt)", unit="node", bar=True):
            variables = {"reporting_period_end": settings.reporting_period_end.isoformat()}
            if report.warehouse is not None:
                report.marts = _build_marts_on_spark(
                    work, report.warehouse, variables, full_refresh, spark, key
                )
            else:
                report.marts = build_marts(
                    work, store.parent / ".ldm-dbt", variables, progress.advance, full_refresh=full_refresh
                )
                seal_marts(work, key, report.marts)
        with _stage(report, progress, "check marts (Great Expectations)"):
            checked = validate_marts(work)
            failures = [failure for failure in checked if not failure.tolerated]
            report.mart_warnings = [str(failure) for failure in checked if failure.tolerated]
            for warning in report.mart_warnings:
                progress(f"mart expectation warning (within its stated share): {warning}")
            if failures:
                raise LdmError(f"{len(failures)} mart expectation(s) failed, first: {failures[0]}")
        with _stage(report, progress, "verify audit chain"):
            # The copy's data was checked before the load and every change since is sealed: the chain and its head.
            con = connect(work, read_only=True)
            try:
                verification = audit.verify(
                    con, key.purpose_key(AUDIT), audit.read_anchor(work), check_data=False
                )
            finally:
                con.close()
            if verification.problems:
                raise LdmError(f"audit check failed: {verification.problems[0]}")
            report.audit_entries, report.audit_head = verification.entries, verification.head
    except BaseException as error:
        if spark is not None:
            spark.stop()
        for leftover in _working_files(work):
            leftover.unlink(missing_ok=True)
        if report.warehouse is not None:
            warehouse.put_back(report.warehouse)
        if isinstance(error, LdmError):
            unchanged = "store and Spark warehouse unchanged" if report.warehouse else "store unchanged"
            raise LdmError(f"{error} ({unchanged})") from None
        raise
    _swap_in(work, store)
    if report.warehouse is not None:
        warehouse.release(report.warehouse)
    return report


def _spark_session(folder: Path, memory: str, master: str | None):
    """The Spark session of a run on Spark, in the warehouse `folder` (ldm.spark.session)."""
    from ldm.spark.build import SESSION_FOLDER
    from ldm.spark.session import start_session

    return start_session(folder / SESSION_FOLDER, memory=memory, master=master)


def _spark_workspace(session):
    """The linkage engine's workspace on the run's Spark session (ldm.spark.workspace)."""
    from ldm.spark.workspace import SparkWorkspace

    return SparkWorkspace(session)


def _build_marts_on_spark(
    work: Path, folder: Path, variables: dict, full_refresh: bool, session, key: MasterKey
) -> str:
    """dbt build on the run's Spark `session` in `folder` from the working copy of the store; the marts
    then replace the copy's (ldm.spark.warehouse) and are sealed, and the audit chain, which the seal
    wrote to (and nothing else), is copied beside the data again (it was copied with the rest of the
    store before the build). dbt's closing counts, marked as Spark's. The session stops
    when this is done."""
    from ldm.spark.build import build_marts_spark
    from ldm.spark.tables import copy_store
    from ldm.spark.warehouse import replace_store_marts

    with build_marts_spark(work, folder, variables, full_refresh=full_refresh, session=session) as marts:
        replace_store_marts(work, marts.read_all())
        summary = f"{marts.summary} (on Spark)"
        seal_marts(work, key, summary)
        copy_store(work, marts.session, folder, only=(audit.AUDIT_TABLE, audit.HEAD_TABLE))
        return summary
