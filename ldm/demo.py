"""`ldm demo`: the main job on the committed sample data.

It checks that the committed sample is exactly what its documented `ldm sample` call produces,
then runs the pipeline stages that exist on a working copy of it (the committed files are never
written to). A demo key is created outside the repository unless LDM_KEY_FILE names one.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from ldm.errors import LdmError
from ldm.feeds.spec import builtin_specs
from ldm.governance import audit
from ldm.load.loader import load_folder
from ldm.marts.build import build_marts
from ldm.pseudonymise.batch import pseudonymise_folder
from ldm.pseudonymise.bench import SAMPLE_AS_OF
from ldm.pseudonymise.keys import KEY_FILE_ENV, init_key, load_key
from ldm.store import connect, upgrade
from ldm.synthetic.config import SampleConfig
from ldm.synthetic.generate import generate
from ldm.validate.report import markdown

REPO = Path(__file__).resolve().parent.parent
SAMPLE_DIR = REPO / "sample_data"
SAMPLE_PERSONS, SAMPLE_SEED = 2000, 1  # the documented call: ldm sample --persons 2000 --seed 1
DEMO_KEY = Path.home() / ".ldm" / "demo.key"


def register(subparsers: argparse._SubParsersAction) -> None:
    demo = subparsers.add_parser(
        "demo",
        help="run the main job on the committed sample data",
        description="Check the committed sample in sample_data/ against a fresh generation, then "
        "validate and pseudonymise a working copy of it, and load and link it into OUT/store.duckdb "
        "(default out/demo).",
    )
    demo.add_argument("--sample", type=Path, default=SAMPLE_DIR, help="sample folder")
    demo.add_argument("--out", type=Path, default=REPO / "out" / "demo", help="working folder for outputs")
    demo.set_defaults(handler=run_demo)


def file_digests(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for part in ("extracts", "ground_truth")
        for path in sorted((folder / part).glob("*"))
        if path.is_file()
    }


def check_sample(sample: Path) -> None:
    if not (sample / "extracts").is_dir():
        raise LdmError(
            f"no sample extracts in {sample}; run: ldm sample --persons "
            f"{SAMPLE_PERSONS} --seed {SAMPLE_SEED} --out {sample}"
        )
    with tempfile.TemporaryDirectory() as folder:
        generate(SampleConfig(persons=SAMPLE_PERSONS, seed=SAMPLE_SEED), Path(folder))
        fresh = file_digests(Path(folder))
    committed = file_digests(sample)
    if committed != fresh:
        changed = sorted(
            {name for name in committed.keys() | fresh.keys() if committed.get(name) != fresh.get(name)}
        )
        raise LdmError(f"the committed sample differs from a fresh generation: {', '.join(changed)}")
    print(f"sample_data/ matches `ldm sample --persons {SAMPLE_PERSONS} --seed {SAMPLE_SEED}` byte for byte")


def demo_key():
    """The key named by LDM_KEY_FILE, or a demo key kept in ~/.ldm (created on first use)."""
    if os.environ.get(KEY_FILE_ENV):
        return load_key()
    if DEMO_KEY.exists():
        return load_key(DEMO_KEY)
    DEMO_KEY.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = init_key(DEMO_KEY)
    print(f"created a demo key in {DEMO_KEY} (key id {key.key_id}); real runs use their own key")
    return key


def run_demo(args: argparse.Namespace) -> int:
    check_sample(args.sample)
    key = demo_key()
    if args.out.exists():
        shutil.rmtree(args.out)
    incoming = args.out / "extracts"
    shutil.copytree(args.sample / "extracts", incoming)
    result = pseudonymise_folder(incoming, args.out / "pseudonymised", key, builtin_specs(), SAMPLE_AS_OF)
    report = args.out / "validation_report.md"
    report.write_text(markdown(result))
    print(f"\nvalidated and pseudonymised with key id {key.key_id}:")
    for manifest, _ in result.done:
        print(
            f"  {manifest.feed:<20} {manifest.rows_in:>7,} rows in = {manifest.rows_accepted:>7,} accepted "
            f"+ {manifest.rows_quarantined:>4,} quarantined"
        )
    print(f"pseudonymised extracts: {args.out / 'pseudonymised'}")
    print(f"validation report:      {report}")
    print(f"quarantined rows:       {incoming / 'quarantine'} (identifiable zone)")
    if result.failed:
        raise LdmError("; ".join(message for _, message in result.failed))

    store = args.out / "store.duckdb"
    upgrade(store)
    summary = load_folder(args.out / "pseudonymised", store)
    print(f"\nloaded and linked into {store}:")
    for load in summary.loaded:
        linked = sum(count.linked for count in load.steps)
        detail = f"{linked:>7,} linked" if load.steps else f"{load.persons_removed:>7,} persons removed"
        print(f"  {load.feed:<20} {load.rows_loaded:>7,} rows loaded {detail} "
              f"{load.withheld_by_opt_out:>5,} withheld by opt-out")  # fmt: skip
    con = connect(store, read_only=True)
    try:
        problems = audit.verify(con, summary.audit_head)
        persons = con.execute("select count(*) from main.persons where registered").fetchall()[0][0]
    finally:
        con.close()
    if problems:
        raise LdmError(f"audit chain broken: {problems[0]}")
    print(f"registered persons: {persons:,}; audit chain intact, head {summary.audit_head[:16]}")
    print("\nbuilding the marts with dbt ...")
    print(f"  {build_marts(store, args.out / 'dbt')}")
    print(f"query it: duckdb -readonly {store}")
    return 0
