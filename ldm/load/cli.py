"""`ldm load`, `ldm audit verify` and `ldm audit report`."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from ldm.errors import LdmError
from ldm.governance import audit
from ldm.governance.report import audit_report
from ldm.governance.seal import adopt
from ldm.load.batches import check_store_key
from ldm.load.loader import load_folder
from ldm.pseudonymise.keys import AUDIT, KEY_FILE_ENV, load_key
from ldm.store import connect
from ldm.store.lock import store_lock


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
    load.add_argument("--key-file", type=Path, help=f"the store's master key file (default: ${KEY_FILE_ENV})")
    load.set_defaults(handler=run_load)

    audit_parser = subparsers.add_parser("audit", help="verify the audit chain or report on batches for IG")
    actions = audit_parser.add_subparsers(dest="audit_command", metavar="ACTION")
    verify = actions.add_parser(
        "verify",
        help="check the keyed audit chain and the data it records",
        description="Exit 1, naming each problem, when an audit entry was edited, deleted or inserted, entries "
        "were cut from the end, or a row of a governance, linkage, analyst or mart table differs from what "
        "the chain recorded. The chain is keyed, so the store's key file is needed.",
    )
    verify.add_argument("--store", type=Path, required=True, help="the store (DuckDB file)")
    verify.add_argument(
        "--key-file", type=Path, help=f"the store's master key file (default: ${KEY_FILE_ENV})"
    )
    verify.add_argument(
        "--expect-head",
        type=audit.Head.parse,
        metavar="SEQ:HASH",
        help="an audit head kept from an earlier run: the chain must still hold it",
    )
    verify.add_argument(
        "--spark-dir",
        type=Path,
        help="also check this Spark warehouse (`ldm run --engine spark`) against the store: its marts, and the "
        "store's tables and audit chain copied beside them, under the same keyed digest (needs the spark extra)",
    )
    verify.set_defaults(handler=run_verify)
    seal = actions.add_parser(
        "seal",
        help="take over, under the store's key, a store whose audit chain predates keyed audit",
        description="A store written before keyed audit has an unkeyed chain and no record of its data. Check "
        "its chain (against --expect-head, the head kept from its last run, when you have it), then seal the "
        "store as it is now under the key. This is deliberate: `ldm run` never does it, because a chain "
        "rewritten without the key looks the same.",
    )
    seal.add_argument("--store", type=Path, required=True, help="the store (DuckDB file)")
    seal.add_argument("--key-file", type=Path, help=f"the store's master key file (default: ${KEY_FILE_ENV})")
    seal.add_argument(
        "--expect-head", type=audit.Head.parse, metavar="SEQ:HASH", help="the head kept from its last run"
    )
    seal.set_defaults(handler=run_seal)
    report = actions.add_parser(
        "report",
        help="write a Markdown account of batches for an IG lead",
        description="What came in, what was quarantined and why, links by step, opt-outs removed, link rates "
        "by deprivation, the probabilistic linkage models (with --out, their charts as PNG files beside the "
        "report), and the state of the audit chain.",
    )
    report.add_argument("--store", type=Path, required=True, help="the store (DuckDB file)")
    report.add_argument("--batch", type=int, action="append", help="only this batch (repeatable)")
    report.add_argument("--out", type=Path, help="write to this file instead of standard output")
    report.add_argument("--key-file", type=Path, help="the store's master key file, to verify the chain")
    report.set_defaults(handler=run_report)
    audit_parser.set_defaults(handler=lambda args: audit_parser.print_help() or 2)


def run_load(args: argparse.Namespace) -> int:
    summary = load_folder(
        args.pseudonymised,
        args.store,
        load_key(args.key_file),
        args.replace,
        progress=lambda m: print(f"  {m}", file=sys.stderr),
    )
    for load in summary.loaded:
        links = ", ".join(f"{c.step} {c.linked:,}" for c in load.steps if c.linked)
        print(
            f"batch {load.batch_id:>3} {load.feed:<20} {load.rows_accepted:>10,} accepted {load.rows_loaded:>10,} "
            f"loaded {load.withheld_by_opt_out:>7,} withheld/removed by opt-out {load.rows_duplicate:>7,} "
            f"duplicates {load.rows_resent:>7,} already loaded {load.rows_revised:>7,} revised"
            + (f"; linked: {links}" if links else "")
        )
    for name, batch_id in summary.already_loaded:
        print(f"{name}: already loaded as batch {batch_id} (same checksum); use --replace to reload")
    for name, first in summary.duplicates:
        print(f"{name}: the same bytes as {first}; loaded once")
    print(f"audit head {summary.audit_head} (keep it: ldm audit verify --expect-head {summary.audit_head})")
    return 0


def run_verify(args: argparse.Namespace) -> int:
    anchor = audit.read_anchor(args.store)
    key = load_key(args.key_file).purpose_key(AUDIT)
    con = connect(args.store, read_only=True)
    try:
        result = audit.verify(con, key, anchor, args.expect_head)
        problems = [str(problem) for problem in result.problems]
        if args.spark_dir is not None and not problems:
            problems, marts, copied = _check_warehouse(con, args.spark_dir, key)
    finally:
        con.close()
    if problems:
        for problem in problems:
            print(f"audit check failed: {problem}", file=sys.stderr)
        return 1
    where = "ends at the anchor file" if anchor else "no anchor file beside the store"
    chain = "keyed chain unbroken" if result.keyed else "no keyed entry yet"
    data = "every table and the catalog as the chain recorded" if result.data_checked else "no data"
    print(f"audit intact: {result.entries} entries, {chain}, {where}; {data}; head {result.head}")
    if args.spark_dir is not None:
        print(
            f"Spark warehouse {args.spark_dir}: its {marts} marts and the store's {copied} tables beside them, "
            "the audit chain among them, hold the rows the chain recorded"
        )
    return 0


def _check_warehouse(con, folder: Path, key: bytes) -> tuple[list[str], int, int]:
    """How the tables of the Spark warehouse in `folder` differ from the store's, and how many marts
    and copied tables of the store it holds."""
    from ldm.spark.build import open_marts
    from ldm.spark.warehouse import MARTS_SCHEMA, warehouse_differences

    with (
        open_marts(folder) as spark,
        tempfile.TemporaryDirectory(prefix=".ldm-verify-", dir=folder.parent) as scratch,
    ):
        tables = spark.warehouse_files()
        problems = warehouse_differences(con, tables, key, scratch=Path(scratch))
    marts = sum(name.startswith(f"{MARTS_SCHEMA}.") for name in tables)
    return problems, marts, len(tables) - marts


def run_seal(args: argparse.Namespace) -> int:
    key = load_key(args.key_file)
    with store_lock(args.store):
        check_store_key(args.store, key)
        head = adopt(args.store, key, args.expect_head)
    print(f"sealed {args.store} under key id {key.key_id}; audit head {head} (keep it)")
    return 0


def run_report(args: argparse.Namespace) -> int:
    given = args.key_file or os.environ.get(KEY_FILE_ENV)
    key = load_key(args.key_file).purpose_key(AUDIT) if given else None
    con = connect(args.store, read_only=True)
    try:
        charts = args.out.resolve().parent if args.out else None  # the models' charts go beside the report
        text = audit_report(con, args.batch, audit.read_anchor(args.store), key, charts)
    finally:
        con.close()
    if args.out:
        try:
            args.out.write_text(text)
        except OSError as error:  # a full disk shows only when the text is written out
            error.filename = error.filename or str(args.out)
            raise
        print(f"wrote {args.out}")
    else:
        print(text)
    return 0


__all__ = ["LdmError", "register"]
