"""`ldm load`, `ldm audit verify` and `ldm audit report`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ldm.errors import LdmError
from ldm.governance import audit
from ldm.governance.report import audit_report
from ldm.load.loader import load_folder
from ldm.store import connect


def register(subparsers: argparse._SubParsersAction) -> None:
    load = subparsers.add_parser(
        "load",
        help="load pseudonymised extracts into the store, linking every record to a person",
        description=(
            "Load every pseudonymised extract in DIR (the OUT of `ldm pseudonymise`) that the store does not "
            "hold yet: the opt-out list first, then GP registrations (the spine), then activity. Each extract "
            "is one transaction; a failure leaves the store as it was."
        ),
    )
    load.add_argument("--pseudonymised", type=Path, required=True, help="folder of pseudonymised extracts")
    load.add_argument("--store", type=Path, required=True, help="the store (DuckDB file)")
    load.add_argument("--replace", action="store_true", help="reload extracts already loaded (same checksum)")
    load.set_defaults(handler=run_load)

    audit_parser = subparsers.add_parser("audit", help="verify the audit chain or report on batches for IG")
    actions = audit_parser.add_subparsers(dest="audit_command", metavar="ACTION")
    verify = actions.add_parser(
        "verify",
        help="check the hash chain of the audit log",
        description="Exit 1 and name the entry when any audit entry was edited, deleted or inserted.",
    )
    verify.add_argument("--store", type=Path, required=True, help="the store (DuckDB file)")
    verify.set_defaults(handler=run_verify)
    report = actions.add_parser(
        "report",
        help="write a Markdown account of batches for an IG lead",
        description="What came in, what was quarantined and why, links by step, opt-outs removed, link rates "
        "by deprivation, and the state of the audit chain.",
    )
    report.add_argument("--store", type=Path, required=True, help="the store (DuckDB file)")
    report.add_argument("--batch", type=int, action="append", help="only this batch (repeatable)")
    report.add_argument("--out", type=Path, help="write to this file instead of standard output")
    report.set_defaults(handler=run_report)
    audit_parser.set_defaults(handler=lambda args: audit_parser.print_help() or 2)


def run_load(args: argparse.Namespace) -> int:
    summary = load_folder(
        args.pseudonymised, args.store, args.replace, progress=lambda m: print(f"  {m}", file=sys.stderr)
    )
    for load in summary.loaded:
        links = ", ".join(f"{c.step} {c.linked:,}" for c in load.steps if c.linked)
        print(
            f"batch {load.batch_id:>3} {load.feed:<20} {load.rows_accepted:>10,} accepted {load.rows_loaded:>10,} "
            f"loaded {load.withheld_by_opt_out:>7,} withheld/removed by opt-out"
            + (f"; linked: {links}" if links else "")
        )
    for name, batch_id in summary.already_loaded:
        print(f"{name}: already loaded as batch {batch_id} (same checksum); use --replace to reload")
    print(f"audit head {summary.audit_head}")
    return 0


def run_verify(args: argparse.Namespace) -> int:
    anchor = audit.read_anchor(args.store)
    con = connect(args.store, read_only=True)
    try:
        problems = audit.verify(con, anchor)
        entries = con.execute(f"select count(*) from {audit.AUDIT_TABLE}").fetchone()[0]
    finally:
        con.close()
    if problems:
        for problem in problems:
            print(f"audit log broken: {problem}", file=sys.stderr)
        return 1
    where = "and ends at the anchor" if anchor else "(no anchor file found beside the store)"
    print(f"audit log intact: {entries} entries, hash chain unbroken {where}")
    return 0


def run_report(args: argparse.Namespace) -> int:
    con = connect(args.store, read_only=True)
    try:
        text = audit_report(con, args.batch, audit.read_anchor(args.store))
    finally:
        con.close()
    if args.out:
        args.out.write_text(text)
        print(f"wrote {args.out}")
    else:
        print(text)
    return 0


__all__ = ["LdmError", "register"]
