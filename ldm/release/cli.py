"""`ldm release`: register analysis projects, check a release spec, make and list releases."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ldm.pseudonymise.keys import KEY_FILE_ENV

KEY_HELP = f"the store's master key file (default: ${KEY_FILE_ENV})"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "release",
        help="give an approved analysis project a person-level extract under its own pseudonyms",
        description=(
            "Person-level releases to analysis projects approved by IG. Register the project from its project "
            "file (`project add`), try the release spec (`check`), then make the release (`write`): it is "
            "recorded in governance and the audit chain before anything is written, person and record ids are "
            "pseudonyms under the project's own key, dates are coarsened, and it is refused when the smallest "
            "group over the quasi-identifiers is below the spec's threshold. See governance/release.md."
        ),
    )
    parser.set_defaults(handler=lambda args: parser.print_help() or 2)
    actions = parser.add_subparsers(dest="release_command", metavar="ACTION")

    project = actions.add_parser(
        "project",
        help="register, amend or list analysis projects",
        description="Analysis projects approved by IG.",
    )
    project.set_defaults(handler=lambda args: project.print_help() or 2)
    project_actions = project.add_subparsers(dest="project_command", metavar="ACTION")
    add = project_actions.add_parser(
        "add",
        help="register a project from its project file (YAML), with an audit entry",
        description="Record the project a project file describes (project, purpose, approver, legal_basis, "
        "approved_on, expires_on) in governance.projects, sealed in the audit chain. A registered project is "
        "changed only with --amend (a renewal, a corrected purpose), which is audited too.",
    )
    add.add_argument("--store", type=Path, required=True, help="the store (DuckDB file)")
    add.add_argument(
        "--project-file", type=Path, required=True, metavar="FILE", help="the project file (YAML)"
    )
    add.add_argument("--amend", action="store_true", help="change the record of a registered project")
    add.add_argument("--key-file", type=Path, help=KEY_HELP)
    add.set_defaults(handler=run_project_add)
    listing = project_actions.add_parser(
        "list", help="list registered projects", description="Registered projects, their expiry and releases."
    )
    listing.add_argument(
        "--store", type=Path, required=True, help="the store (DuckDB file), opened read-only"
    )
    listing.set_defaults(handler=run_project_list)

    check = actions.add_parser(
        "check",
        help="build a release in memory and report its smallest group (k); records and writes nothing",
        description="Check a release spec against the store: the project must be registered and current, the "
        "tables and columns must exist, and the smallest group over the quasi-identifiers is reported before "
        "and after each generalisation step. The store is opened read-only; nothing is recorded or written.",
    )
    check.add_argument("--store", type=Path, required=True, help="the store (DuckDB file), opened read-only")
    check.add_argument("--spec", type=Path, required=True, metavar="FILE", help="the release spec (YAML)")
    check.set_defaults(handler=run_check)

    write = actions.add_parser(
        "write",
        help="make a release to a project: Parquet and DuckDB files with a checksummed manifest",
        description="Record the release in governance and the audit chain, build it under the project's key, "
        "check its smallest group over the quasi-identifiers (generalising as the spec allows), and write one "
        "Parquet file per table, a DuckDB file and manifest.json to DIR (through a hidden folder renamed on "
        "success). A release whose k stays below the threshold is refused, and recorded as refused.",
    )
    write.add_argument("--store", type=Path, required=True, help="the store (DuckDB file)")
    write.add_argument("--spec", type=Path, required=True, metavar="FILE", help="the release spec (YAML)")
    write.add_argument(
        "--out", type=Path, required=True, metavar="DIR", help="new or empty folder for the files"
    )
    write.add_argument("--key-file", type=Path, help=KEY_HELP)
    write.set_defaults(handler=run_write)

    releases = actions.add_parser(
        "list", help="list every release made from the store", description="Every release and its outcome."
    )
    releases.add_argument(
        "--store", type=Path, required=True, help="the store (DuckDB file), opened read-only"
    )
    releases.set_defaults(handler=run_list)


def run_project_add(args: argparse.Namespace) -> int:
    from ldm.pseudonymise.keys import load_key
    from ldm.release.projects import register as register_project

    project, outcome, head = register_project(
        args.store, args.project_file, load_key(args.key_file), args.amend
    )
    print(f"project {project.project}: {outcome} (expires {project.expires_on})")
    if head is not None:
        print(f"audit head {head}")
    return 0


def _read_store(store, read):
    """`read(con)` on the store opened read-only, after the checks every release command makes."""
    from ldm.release.record import check_store
    from ldm.store import connect

    con = connect(store, read_only=True)
    try:
        check_store(con, store, None)
        return read(con)
    finally:
        con.close()


def run_project_list(args: argparse.Namespace) -> int:
    from ldm.release.projects import list_projects

    rows = _read_store(args.store, list_projects)
    for name, approver, legal_basis, approved_on, expires_on, written in rows:
        print(
            f"{name:<30} expires {expires_on}  {written:>3} release(s)  approved {approved_on} by {approver}"
        )
        print(f"{'':<30} legal basis: {legal_basis}")
    if not rows:
        print("no projects registered")
    return 0


def _print_plan(plan) -> None:
    for name, rows in plan.table_rows.items():
        quasi = [r.name for r in plan.released(name) if r.quasi]
        print(f"{name:<22} {rows:>9,} rows  quasi-identifiers: {', '.join(quasi) or 'none'}")
    print(
        f"persons: {plan.persons:,} (opted-out persons left out by the cohort: {plan.opted_out_left_out:,})"
    )
    for step in plan.generalised():
        what = "; ".join(f"{c} {how}" for c, how in step["step"].items()) or "as specified"
        print(f"k = {step['k']} after {step['steps_applied']} generalisation step(s) ({what})")


def run_check(args: argparse.Namespace) -> int:
    from ldm.release.release import check

    plan = check(args.store, args.spec)
    _print_plan(plan)
    threshold = plan.spec.k_threshold
    if plan.passes:
        print(f"passes: k = {plan.k} is at least the threshold of {threshold}")
        return 0
    print(f"would be refused: {plan.refusal()}", file=sys.stderr)
    return 1


def run_write(args: argparse.Namespace) -> int:
    from ldm.pseudonymise.keys import load_key
    from ldm.release.release import release

    result = release(
        args.store,
        args.spec,
        args.out,
        load_key(args.key_file),
        progress=lambda m: print(f"  {m}", file=sys.stderr),
    )
    _print_plan(result.plan)
    print(
        f"release {result.release_id} (number {result.release_number} to project {result.plan.spec.project}) "
        f"written to {result.folder} (manifest.json lists the files and their SHA-256)"
    )
    print(f"audit head {result.head}")
    return 0


def run_list(args: argparse.Namespace) -> int:
    from ldm.release.record import list_releases

    rows = _read_store(args.store, list_releases)
    for release_id, project, number, status, requested_at, k, threshold, persons, out in rows:
        print(
            f"release {release_id:>3} {project:<30} #{number:<3} {status:<8} {requested_at:%Y-%m-%d %H:%M} "
            f"k={k if k is not None else '-'} (threshold {threshold}) persons={persons if persons is not None else '-'}"
            f" {out or ''}"
        )
    if not rows:
        print("no releases")
    return 0
