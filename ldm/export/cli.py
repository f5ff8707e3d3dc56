"""`ldm export`: the aggregate marts as CSV and Parquet for publication, disclosure-controlled."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ldm.export.export import export
from ldm.export.rules import DEFAULT_RULES


def add_publication_arguments(parser: argparse.ArgumentParser, written: str) -> None:
    """--store, --out and --rules: what every command that publishes from the marts takes (the export,
    and the dashboard, which publishes through it)."""
    parser.add_argument("--store", type=Path, required=True, help="the store (DuckDB file), opened read-only")
    parser.add_argument(
        "--out", type=Path, required=True, metavar="DIR", help=f"new or empty folder for {written}"
    )
    parser.add_argument("--rules", type=Path, default=DEFAULT_RULES, help="rules file (default: %(default)s)")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export",
        help="write the aggregate marts as CSV and Parquet with disclosure control applied",
        description=(
            "Apply the disclosure-control rules (small counts suppressed, the rest rounded, rates from "
            "suppressed counts suppressed, secondary suppression) to the aggregate marts and write each as CSV "
            "and Parquet to DIR with a manifest of checksums. Person-level tables are never exported."
        ),
    )
    add_publication_arguments(parser, "the files")
    parser.add_argument(
        "--mart",
        action="append",
        metavar="NAME",
        help="export only this mart (repeatable; default: all declared)",
    )
    parser.set_defaults(handler=run_export)


def run_export(args: argparse.Namespace) -> int:
    result = export(
        args.store, args.out, args.rules, args.mart, progress=lambda m: print(f"  {m}", file=sys.stderr)
    )
    for item in result.exported:
        tally = item.suppression
        print(
            f"{item.mart:<20} {item.rows:>7,} rows  {tally.suppressed:>6,} of {tally.cells:,} counts suppressed "
            f"({tally.small:,} small, {tally.complement:,} complement, {tally.inherited:,} inherited, "
            f"{tally.secondary:,} secondary)"
        )
    for name, reason in result.skipped.items():
        print(f"{name:<20} skipped: {reason}")
    print(f"written to {result.folder} (manifest.json lists the files and their SHA-256)")
    return 0
