"""The monthly run, end to end: validate and pseudonymise, load and link, build the marts, verify.

The store is changed only if every stage succeeds: loading and dbt work on a copy of the store,
which replaces the original at the end. A failure anywhere leaves the store exactly as it was.
"""

from __future__ import annotations

import datetime
import os
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ldm.config import Settings
from ldm.errors import LdmError
from ldm.feeds.spec import builtin_specs
from ldm.governance import audit
from ldm.linkage.engine import LinkageConfig
from ldm.linkage.probabilistic import ProbabilisticConfig
from ldm.load.loader import LoadSummary, load_folder
from ldm.marts.build import build_marts
from ldm.marts.expectations import validate_marts
from ldm.progress import Progress
from ldm.pseudonymise.batch import BatchResult, pseudonymise_folder
from ldm.pseudonymise.keys import load_key
from ldm.store import connect, upgrade
from ldm.validate.report import write_report


@dataclass
class RunReport:
    seconds: dict[str, float] = field(default_factory=dict)
    pseudonymised: BatchResult | None = None
    loaded: LoadSummary | None = None
    marts: str = ""
    audit_entries: int = 0

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


def run_pipeline(extracts: Path, settings: Settings, progress: Progress | None = None) -> RunReport:
    if settings.store is None:
        raise LdmError("no store given: pass --store FILE or set LDM_STORE")
    store = settings.store.resolve()
    if not store.parent.is_dir():
        raise LdmError(f"folder {store.parent} for the store does not exist")
    key = load_key(settings.key_file)
    progress = progress or Progress(bars=False)
    report = RunReport()
    today = settings.today or datetime.date.today()
    seam = settings.pseudonymised_dir()
    with _stage(report, progress, "validate and pseudonymise", unit="B", bar=True):
        report.pseudonymised = pseudonymise_folder(
            extracts,
            seam,
            key,
            builtin_specs(),
            today,
            settings.max_quarantined_share,
            progress=progress,
            advance=progress.advance,
        )
        write_report(report.pseudonymised, seam)
    if report.pseudonymised.failed:
        _, message = report.pseudonymised.failed[0]
        raise LdmError(f"{message} (store unchanged)")

    work = store.with_name(store.name + ".run")
    for stale in _working_files(work):
        stale.unlink(missing_ok=True)
    if store.exists():
        _check_not_busy(store)
        shutil.copy2(store, work)
        if audit.anchor_path(store).exists():
            shutil.copy2(audit.anchor_path(store), audit.anchor_path(work))
    try:
        with _stage(report, progress, "migrate store"):
            upgrade(work)
        with _stage(report, progress, "load, link and apply opt-outs", unit="row", bar=True):
            linkage = LinkageConfig(scoring=ProbabilisticConfig(threshold=settings.link_threshold))
            report.loaded = load_folder(
                seam, work, progress=progress, linkage=linkage, advance=progress.advance
            )
        with _stage(report, progress, "build and test marts (dbt)", unit="node", bar=True):
            variables = {"reporting_period_end": settings.reporting_period_end.isoformat()}
            report.marts = build_marts(work, store.parent / ".ldm-dbt", variables, progress.advance)
        with _stage(report, progress, "check marts (Great Expectations)"):
            failures = validate_marts(work)
            if failures:
                raise LdmError(f"{len(failures)} mart expectation(s) failed, first: {failures[0]}")
        with _stage(report, progress, "verify audit chain"):
            con = connect(work, read_only=True)
            try:
                problems = audit.verify(con, audit.read_anchor(work))
                report.audit_entries = con.execute(f"select count(*) from {audit.AUDIT_TABLE}").fetchall()[0][
                    0
                ]
            finally:
                con.close()
            if problems:
                raise LdmError(f"audit chain broken: {problems[0]}")
    except BaseException as error:
        for leftover in _working_files(work):
            leftover.unlink(missing_ok=True)
        if isinstance(error, LdmError):
            raise LdmError(f"{error} (store unchanged)") from None
        raise
    _swap_in(work, store)
    return report


def _check_not_busy(store: Path) -> None:
    """Refuse to start while another process has the store open for writing."""
    connect(store).close()
