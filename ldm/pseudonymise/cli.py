"""`ldm pseudonymise` and `ldm expectations`."""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path

from ldm.errors import LdmError
from ldm.feeds.spec import load_specs
from ldm.pseudonymise.batch import pseudonymise_folder
from ldm.pseudonymise.keys import load_key
from ldm.validate.report import write_report
from ldm.validate.suites import EXPECTATIONS_DIR, suite_document, write_suites


def register(subparsers: argparse._SubParsersAction) -> None:
    command = subparsers.add_parser(
        "pseudonymise",
        help="validate extracts and replace their identifiers by keyed tokens",
        description=(
            "Validate every extract in DIR against its feed spec and Great Expectations suite, move rows "
            "that fail a blocking rule to DIR/quarantine/ with their reasons, and write a pseudonymised "
            "Parquet file and a manifest per extract to OUT/<feed>/. Identifiers leave only as keyed "
            "tokens; a validation report is written to OUT/reports/."
        ),
    )
    command.add_argument(
        "--extracts", type=Path, required=True, help="folder of extracts (identifiable zone)"
    )
    command.add_argument("--out", type=Path, required=True, help="folder for pseudonymised extracts")
    command.add_argument("--key-file", type=Path, help="master key file (default: $LDM_KEY_FILE)")
    command.add_argument("--specs", type=Path, help="folder of feed spec YAML files (default: built in)")
    command.add_argument(
        "--expectations",
        type=Path,
        help="folder of suites (default: expectations/ for the built-in specs, "
        "or suites derived from --specs)",
    )
    command.add_argument(
        "--max-quarantined",
        type=float,
        default=0.05,
        help="fail an extract when more than this share of rows is quarantined (0.05)",
    )
    command.add_argument(
        "--today",
        type=datetime.date.fromisoformat,
        default=datetime.date.today(),
        help="date after which event dates are in the future (default: today)",
    )
    command.set_defaults(handler=run_pseudonymise)

    suites = subparsers.add_parser(
        "expectations",
        help="write or check the Great Expectations suites derived from the feed specs",
        description="Write expectations/<feed>.json from the feed specs, or check that they are up to date.",
    )
    suites.add_argument("--check", action="store_true", help="fail if a suite differs from its spec")
    suites.add_argument("--specs", type=Path, help="folder of feed spec YAML files (default: built in)")
    suites.add_argument("--out", type=Path, default=EXPECTATIONS_DIR, help="folder of suites")
    suites.set_defaults(handler=run_expectations)


def run_pseudonymise(args: argparse.Namespace) -> int:
    if not 0 <= args.max_quarantined <= 1:
        raise LdmError("--max-quarantined must be between 0 and 1")
    key = load_key(args.key_file)
    specs = load_specs(args.specs)
    args.out.mkdir(parents=True, exist_ok=True)
    expectations = args.expectations or (None if args.specs else EXPECTATIONS_DIR)
    result = pseudonymise_folder(
        args.extracts,
        args.out,
        key,
        specs,
        args.today,
        args.max_quarantined,
        expectations,
        progress=lambda message: print(f"  {message}", file=sys.stderr),
    )
    report = write_report(result, args.out)
    for manifest, _ in result.done:
        print(
            f"{manifest.input_file:<28} {manifest.rows_in:>11,} in {manifest.rows_accepted:>11,} accepted "
            f"{manifest.rows_quarantined:>8,} quarantined  {manifest.seconds:6.1f} s"
        )
    for path, earlier in result.resent:
        print(f"{path.name:<28} already pseudonymised (same SHA-256): {earlier}")
    for path, first in result.duplicates:
        print(f"{path.name:<28} same bytes (SHA-256) as {first.name} in this run; skipped")
    for path in result.unrecognised:
        print(f"{path.name:<28} not recognised by any feed spec; left alone", file=sys.stderr)
    print(f"key id {key.key_id}; report: {report}")
    if result.failed:
        for _, message in result.failed:
            print(f"ldm pseudonymise: error: {message}", file=sys.stderr)
        return 1
    return 0


def run_expectations(args: argparse.Namespace) -> int:
    specs = load_specs(args.specs)
    if not args.check:
        for path in write_suites(specs, args.out):
            print(path)
        return 0
    stale = []
    for name, spec in sorted(specs.items()):
        path = args.out / f"{name}.json"
        if not path.exists() or json.loads(path.read_text()) != suite_document(spec):
            stale.append(path)
    if stale:
        raise LdmError(
            f"suites out of date with their specs: {', '.join(map(str, stale))}; run: ldm expectations"
        )
    print(f"{len(specs)} suites match their specs")
    return 0
