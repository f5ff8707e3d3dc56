"""Pseudonymise every extract in a folder, each on its own, and report what happened.

One extract's structural fault or excess of quarantined rows does not stop the others, but the
run ends in failure and names it. A file whose bytes were already pseudonymised under the same key
is recognised by its SHA-256 and skipped, and so is a second copy of the same bytes in one folder.
A file whose name or link could make ldm read or write somewhere else is refused.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ldm.errors import LdmError
from ldm.feeds.spec import FeedSpec, specs_matching
from ldm.files import FileScan, scan_file, shown
from ldm.pseudonymise.extract import QUARANTINE_DIR, Manifest, previous_manifest, pseudonymise_extract
from ldm.pseudonymise.keys import MasterKey
from ldm.validate.run import ValidationOutcome
from ldm.validate.suites import EXPECTATIONS_DIR, load_suite_document, suite_document

NAME_CONTROL = frozenset(map(chr, [*range(0x20), 0x7F]))
NAME_GLOB = frozenset("*?[]")


@dataclass
class BatchResult:
    done: list[tuple[Manifest, ValidationOutcome]] = field(default_factory=list)
    resent: list[tuple[Path, Path]] = field(default_factory=list)  # (extract, earlier manifest)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    unrecognised: list[Path] = field(default_factory=list)
    duplicates: list[tuple[Path, Path]] = field(default_factory=list)  # (extract, the file it repeats)

    def failure_message(self) -> str:
        """One line naming every failed extract and why ("" when none failed), for the run's error."""
        if not self.failed:
            return ""
        count = f"{len(self.failed)} extract{'s' if len(self.failed) > 1 else ''}"
        return f"{count} failed: {'; '.join(_failure(path, message) for path, message in self.failed)}"


def _failure(path: Path, message: str) -> str:
    """'<name>: <reason>' on one line; the reason loses its leading '<path>: ' as the name is given."""
    name = shown(path.name)
    reason = message.removeprefix(f"{path}: ")
    line = reason if reason.startswith(f"{name} ") else f"{name}: {reason}"
    return re.sub(r"\s*[\r\n]+\s*", " ", line)


def name_fault(name: str) -> str | None:
    """Why an extract's file name is refused, or None.

    A control character would break the one-line messages and reports that name the file; a glob
    character would make DuckDB's read_csv read every file the name matches as a pattern, even
    though the path is a bound parameter; a name that is not UTF-8 cannot be passed to DuckDB.
    """
    if NAME_CONTROL & set(name):
        return "contains a control character (such as a newline or tab); rename it"
    if NAME_GLOB & set(name):
        return "contains a glob character (* ? [ ]), which DuckDB would expand to other files; rename it"
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid UTF-8; rename it"
    return None


def link_fault(path: Path, folder: Path) -> str | None:
    """Why a symbolic link among the extracts is refused, or None (also for a file that is no link).

    A link out of the folder would let whoever can write the folder make ldm read any file it can.
    """
    if not path.is_symlink():
        return None
    target = path.resolve()
    if not target.is_relative_to(folder.resolve()):
        return f"is a symbolic link to {target} outside the extracts folder; copy the file in instead"
    if not target.is_file():
        return f"is a symbolic link to {target}, which is not a file"
    return None


def match_extracts(
    folder: Path, specs: dict[str, FeedSpec]
) -> tuple[list[tuple[Path, FeedSpec]], list[Path], list[tuple[Path, str]]]:
    """Pair each file in `folder` with the spec whose pattern it matches.

    Returns the pairs, the files no spec recognises, and the files a spec matched but that are
    refused (with the reason, one line naming the file).
    """
    if not folder.is_dir():
        raise LdmError(f"extract folder {folder} does not exist")
    matched, unrecognised, refused = [], [], []
    visible = [p for p in folder.iterdir() if not p.name.startswith(".")]
    unrecognised += sorted(
        p for p in visible if p.is_dir() and not p.is_symlink() and p.name != QUARANTINE_DIR
    )
    entries = (p for p in visible if p.is_symlink() or p.is_file())
    for path in sorted(entries):
        matching = specs_matching(path.name, specs)
        spec = matching[0] if matching else None
        fault = (name_fault(path.name) or link_fault(path, folder)) if spec else None
        if len(matching) > 1:  # never guess which provider sent it
            names = " and ".join(f"{s.name} ({s.feed}, provider {s.provider})" for s in matching)
            fault = f"matches the file patterns of {len(matching)} specs, {names}; make the patterns distinct"
        if fault:
            refused.append((path, f"{shown(path.name)} {fault}"))
        elif spec:
            matched.append((path, spec))
        elif (
            path.is_file()
        ):  # reported, never skipped in silence (`ldm run` refuses unless told to ignore it)
            unrecognised.append(path)
    return matched, unrecognised, refused


def _scan_same_sizes(matched: list[tuple[Path, FeedSpec]]) -> dict[Path, FileScan]:
    """Scan (hash) the extracts of a feed that share their size with another: only they can be copies."""
    sizes: dict[tuple[str, int], list[Path]] = {}
    for path, spec in matched:
        sizes.setdefault((spec.feed, path.stat().st_size), []).append(path)
    return {path: scan_file(path) for paths in sizes.values() if len(paths) > 1 for path in paths}


def _suite(spec: FeedSpec, expectations_dir: Path | None) -> dict:
    """The committed suite of a built-in spec; a provider's own spec (no committed suite) brings its derived one."""
    if expectations_dir is None or not (expectations_dir / f"{spec.name}.json").is_file():
        return suite_document(spec)
    return load_suite_document(spec.name, expectations_dir)


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
    matched, result.unrecognised, result.failed = match_extracts(extracts, specs)
    total_bytes = sum(path.stat().st_size for path, _ in matched)
    same_size = _scan_same_sizes(matched)
    first_of: dict[tuple[str, str], Path] = {}  # (feed, sha256) -> the first file with those bytes
    jobs = []
    for path, spec in matched:
        scan = same_size.get(path)
        first = first_of.setdefault((spec.feed, scan.sha256), path) if scan else path
        earlier = None
        if first == path:
            earlier, scan = previous_manifest(out, spec.feed, path, key.key_id, scan)
        if first != path:
            result.duplicates.append((path, first))
        elif earlier:
            result.resent.append((path, earlier))
        else:
            jobs.append((path, spec, scan))
            continue
        if advance:
            advance(path.stat().st_size, total_bytes)

    def run(path: Path, spec: FeedSpec, scan: FileScan | None) -> tuple[Manifest, ValidationOutcome] | str:
        if progress:
            progress(f"{spec.feed}: {path.name}")
        try:
            suite = _suite(spec, expectations_dir)
            done = pseudonymise_extract(path, spec, key, out, suite, today, max_quarantined_share, scan=scan)
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
    result.failed.sort(key=lambda failure: failure[0])
    return result
