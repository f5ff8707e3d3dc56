"""`ldm specs check` and `ldm specs init`: onboard a provider's extract with a spec, checked before use."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from ldm.errors import LdmError
from ldm.feeds.read import StructuralError, check_structure
from ldm.feeds.spec import SPEC_DIR, FeedSpec, check_specs, specs_matching


def register(subparsers: argparse._SubParsersAction) -> None:
    specs = subparsers.add_parser(
        "specs", help="check a folder of feed specs; start one from the built-in specs"
    )
    actions = specs.add_subparsers(dest="specs_command", required=True)
    check = actions.add_parser(
        "check",
        help="list every problem in a folder of feed specs (and in sample extracts' headers)",
        description="Checks each spec (unknown keys, types, code systems, columns that point nowhere or have "
        "no place in the store) and the folder (two specs whose file patterns can match one file, two specs "
        "for one feed and provider). With --sample, the extract's header is read as its spec says and every "
        "source column it lacks is named with the closest name it has. Exit 0 when nothing is wrong.",
    )
    check.add_argument("folder", type=Path, help="folder of feed spec YAML files")
    check.add_argument(
        "--sample", type=Path, action="append", default=[], help="an extract to check (repeatable)"
    )
    check.set_defaults(handler=run_check)
    init = actions.add_parser(
        "init", help="copy the built-in specs into a new folder, to add a provider's beside them"
    )
    init.add_argument("folder", type=Path, help="folder to create")
    init.set_defaults(handler=run_init)


def sample_problems(sample: Path, specs: dict[str, FeedSpec]) -> tuple[list[str], list[str]]:
    """Problems reading a sample extract with the spec its name matches, and notes (columns left unread)."""
    matching = specs_matching(sample.name, specs)
    if not matching:
        patterns = ", ".join(sorted(spec.file_pattern for spec in specs.values()))
        return [f"{sample.name}: matches no spec's file pattern ({patterns})"], []
    if len(matching) > 1:
        return [f"{sample.name}: matches {' and '.join(s.path.name for s in matching)}"], []
    spec = matching[0]
    try:
        header = check_structure(sample, spec)
    except StructuralError as error:
        return [f"{sample.name} (read with {spec.path.name}): {str(error).removeprefix(f'{sample}: ')}"], []
    unread = [name for name in header if name not in spec.sources]
    notes = [
        f"{sample.name}: read with {spec.path.name}; {len(spec.sources)} of its {len(header)} columns are mapped"
    ]
    if unread:
        notes.append(f"{sample.name}: not read (no spec column maps them): {', '.join(unread)}")
    return [], notes


def run_check(args: argparse.Namespace) -> int:
    if not args.folder.is_dir():
        raise LdmError(f"feed spec folder {args.folder} does not exist")
    specs, problems = check_specs(args.folder)
    notes = []
    for sample in args.sample:
        found, said = sample_problems(sample, specs)
        problems += found
        notes += said
    for note in notes:
        print(note)
    for problem in problems:
        print(f"problem: {problem}", file=sys.stderr)
    if problems:
        print(f"{len(problems)} problem(s) in {args.folder}", file=sys.stderr)
        return 1
    names = ", ".join(f"{s.path.name} ({s.feed}, provider {s.provider})" for s in specs.values())
    print(f"{len(specs)} specs, no problems: {names}")
    return 0


def run_init(args: argparse.Namespace) -> int:
    if args.folder.exists() and any(args.folder.iterdir()):
        raise LdmError(f"{args.folder} exists and is not empty; choose a new folder")
    args.folder.mkdir(parents=True, exist_ok=True)
    for path in sorted(SPEC_DIR.glob("*.yaml")):
        shutil.copy2(path, args.folder / path.name)
    print(f"copied the built-in specs into {args.folder}; add a provider's spec beside them and run: "
          f"ldm specs check {args.folder}")  # fmt: skip
    return 0
