"""Pseudonymise every extract in a folder, each on its own, and report what happened.

One extract's structural fault or excess of quarantined rows does not stop the others, but the
run ends in failure and names it. A file whose bytes were already pseudonymised is recognised by
its SHA-256 and skipped.
"""

from __future__ import annotations

import datetime
import fnmatch
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ldm.errors import LdmError
from ldm.feeds.spec import FeedSpec
from ldm.pseudonymise.extract import Manifest, previous_manifest, pseudonymise_extract
from ldm.pseudonymise.keys import MasterKey
from ldm.validate.run import ValidationOutcome
from ldm.validate.suites import EXPECTATIONS_DIR, load_suite_document, suite_document


@dataclass
class BatchResult:
    done: list[tuple[Manifest, ValidationOutcome]] = field(default_factory=list)
    resent: list[tuple[Path, Path]] = field(default_factory=list)  # (extract, earlier manifest)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    unrecognised: list[Path] = field(default_factory=list)


def match_extracts(
    folder: Path, specs: dict[str, FeedSpec]
) -> tuple[list[tuple[Path, FeedSpec]], list[Path]]:
    """Pair each file in `folder` with the spec whose pattern it matches."""
    if not folder.is_dir():
        raise LdmError(f"extract folder {folder} does not exist")
    matched, unrecognised = [], []
    for path in sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")):
        spec = next((s for s in specs.values() if fnmatch.fnmatch(path.name, s.file_pattern)), None)
        if spec:
            matched.append((path, spec))
        elif path.suffix not in (".md", ".json"):
            unrecognised.append(path)
    return matched, unrecognised


def _suite(spec: FeedSpec, expectations_dir: Path | None) -> dict:
    """The committed suite of a built-in feed; a provider's own spec brings its derived suite."""
    return (
        suite_document(spec) if expectations_dir is None else load_suite_document(spec.feed, expectations_dir)
    )


def pseudonymise_folder(
    extracts: Path,
    out: Path,
    key: MasterKey,
    specs: dict[str, FeedSpec],
    today: datetime.date,
    max_quarantined_share: float = 0.05,
    expectations_dir: Path | None = EXPECTATIONS_DIR,
    progress: Callable[[str], None] | None = None,
    advance: Callable[[int, int], None] | None = None,
    workers: int = 2,
) -> BatchResult:
    """Pseudonymise the folder's extracts, `workers` at a time, largest first.

    Two at a time keeps both cores busy: while one extract is in single-threaded Python (Great
    Expectations, HMAC), DuckDB works on the other. Results are reported in file-name order.
    `progress` gets a line as each extract starts and ends; `advance(size, total)` its size in bytes
    when it is done or skipped, with the bytes of all extracts as the total.
    """
    result = BatchResult()
    matched, result.unrecognised = match_extracts(extracts, specs)
    total_bytes = sum(path.stat().st_size for path, _ in matched)
    jobs = []
    for path, spec in matched:
        earlier, sha256 = previous_manifest(out, spec.feed, path)
        if earlier:
            result.resent.append((path, earlier))
            if advance:
                advance(path.stat().st_size, total_bytes)
        else:
            jobs.append((path, spec, sha256))

    def run(path: Path, spec: FeedSpec, sha256: str | None) -> tuple[Manifest, ValidationOutcome] | str:
        if progress:
            progress(f"{spec.feed}: {path.name}")
        try:
            suite = _suite(spec, expectations_dir)
            done = pseudonymise_extract(
                path, spec, key, out, suite, today, max_quarantined_share, sha256=sha256
            )
            manifest = done[0]
            if progress:
                progress(
                    f"{spec.feed}: {path.name} done: {manifest.rows_in:,} rows, "
                    f"{manifest.rows_quarantined:,} quarantined, {manifest.seconds:.1f} s"
                )
            return done
        except LdmError as error:
            if progress:
                progress(f"{spec.feed}: {path.name} FAILED")
            return str(error)
        finally:
            if advance:
                advance(path.stat().st_size, total_bytes)

    largest_first = sorted(jobs, key=lambda job: job[0].stat().st_size, reverse=True)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = {job[0]: pool.submit(run, *job) for job in largest_first}
    for path, _, _ in jobs:
        outcome = futures[path].result()
        if isinstance(outcome, str):
            result.failed.append((path, outcome))
        else:
            result.done.append(outcome)
    return result
