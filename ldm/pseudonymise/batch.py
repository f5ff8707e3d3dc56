"""Pseudonymise every extract in a folder, each on its own, and report what happened.

One extract's structural fault or excess of quarantined rows does not stop the others, but the
run ends in failure and names it. A file whose bytes were already pseudonymised is recognised by
its SHA-256 and skipped.
"""

from __future__ import annotations

import datetime
import fnmatch
from dataclasses import dataclass, field
from pathlib import Path

from ldm.errors import LdmError
from ldm.feeds.spec import FeedSpec
from ldm.pseudonymise.extract import Manifest, file_sha256, previous_manifest, pseudonymise_extract
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


def pseudonymise_folder(
    extracts: Path,
    out: Path,
    key: MasterKey,
    specs: dict[str, FeedSpec],
    today: datetime.date,
    max_quarantined_share: float = 0.05,
    expectations_dir: Path | None = EXPECTATIONS_DIR,
    progress=None,
) -> BatchResult:
    result = BatchResult()
    matched, result.unrecognised = match_extracts(extracts, specs)
    for path, spec in matched:
        sha256 = file_sha256(path)
        earlier = previous_manifest(out, spec.feed, sha256)
        if earlier:
            result.resent.append((path, earlier))
            continue
        if progress:
            progress(f"{spec.feed}: {path.name}")
        try:
            # Committed suites for the built-in specs; a provider's own spec brings its derived suite.
            if expectations_dir is None:
                suite = suite_document(spec)
            else:
                suite = load_suite_document(spec.feed, expectations_dir)
            result.done.append(
                pseudonymise_extract(path, spec, key, out, suite, today, max_quarantined_share, sha256=sha256)
            )
        except LdmError as error:
            result.failed.append((path, str(error)))
    return result
