"""The validation report of a batch: readable by an IG lead, free of identifiers.

Examples of failing values are shown only for non-identifying columns (codes, dates of events);
for identifiers the report gives counts alone.
"""

from __future__ import annotations

import datetime
from pathlib import Path

from ldm.files import shown
from ldm.pseudonymise.batch import BatchResult


def write_report(result: BatchResult, out: Path) -> Path:
    """Write the batch's report as `out/reports/validation-<UTC time>.md`; return its path."""
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    report = out / "reports" / f"validation-{stamp}.md"
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(markdown(result))
    return report


def markdown(result: BatchResult) -> str:
    lines = ["# Validation report", ""]
    lines += [
        "| extract | feed | rows in | accepted | quarantined | key id |",
        "|---|---|---:|---:|---:|---|",
    ]
    for manifest, _ in result.done:
        lines.append(
            f"| {manifest.input_file} | {manifest.feed} | {manifest.rows_in:,} | {manifest.rows_accepted:,} "
            f"| {manifest.rows_quarantined:,} | {manifest.key_id} |"
        )
    for manifest, outcome in result.done:
        lines += ["", f"## {manifest.input_file}", ""]
        lines.append(
            f"SHA-256 `{manifest.input_sha256}`; spec version {manifest.spec_version}; "
            f"rows in {manifest.rows_in:,} = accepted {manifest.rows_accepted:,} + quarantined "
            f"{manifest.rows_quarantined:,}."
        )
        if manifest.nhs_numbers:
            n = manifest.nhs_numbers
            lines.append(
                f"NHS numbers among accepted rows: {n['valid']:,} valid, {n['invalid']:,} invalid "
                f"(kept, not used to link), {n['missing']:,} missing."
            )
        failing = [rule for rule in outcome.rules if rule.rows]
        if failing:
            lines += ["", "| severity | rule | rows | examples |", "|---|---|---:|---|"]
            for rule in sorted(failing, key=lambda r: (r.severity != "critical", -r.rows)):
                examples = ", ".join(rule.examples) if rule.examples else "(identifier: not shown)"
                lines.append(f"| {rule.severity} | {rule.rule} | {rule.rows:,} | {examples} |")
        if manifest.quarantine_file:
            lines += [
                "",
                f"Quarantined rows, with their row numbers and reasons: `{manifest.quarantine_file}`",
            ]
    if result.resent:
        lines += ["", "## Already pseudonymised (same SHA-256), skipped", ""]
        lines += [f"- {shown(path.name)}: see {earlier.name}" for path, earlier in result.resent]
    if result.duplicates:
        lines += ["", "## The same bytes as another extract of this run (pseudonymised once)", ""]
        lines += [
            f"- {shown(path.name)}: the same as {shown(first.name)}" for path, first in result.duplicates
        ]
    if result.failed:
        lines += ["", "## Failed", ""] + [
            f"- {shown(path.name)}: {message}" for path, message in result.failed
        ]
    if result.unrecognised:
        lines += ["", "## Not recognised by any feed spec", ""] + [
            f"- {shown(p.name)}" for p in result.unrecognised
        ]
    return "\n".join(lines) + "\n"
