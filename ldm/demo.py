"""`ldm demo`: the main job on the committed sample data.

For now it checks that the committed sample is exactly what its documented `ldm sample` call
produces and prints what it holds; later stages (pseudonymise, link, marts) join this command.
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
from pathlib import Path

from ldm.errors import LdmError
from ldm.synthetic.config import SampleConfig
from ldm.synthetic.generate import generate

SAMPLE_DIR = Path(__file__).resolve().parent.parent / "sample_data"
SAMPLE_PERSONS, SAMPLE_SEED = 2000, 1  # the documented call: ldm sample --persons 2000 --seed 1


def register(subparsers: argparse._SubParsersAction) -> None:
    demo = subparsers.add_parser(
        "demo",
        help="run the main job on the committed sample data",
        description="Check the committed sample in sample_data/ against a fresh generation and summarise it.",
    )
    demo.add_argument("--sample", type=Path, default=SAMPLE_DIR, help="sample folder")
    demo.set_defaults(handler=run_demo)


def file_digests(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for part in ("extracts", "ground_truth")
        for path in sorted((folder / part).glob("*"))
    }


def run_demo(args: argparse.Namespace) -> int:
    if not (args.sample / "extracts").is_dir():
        raise LdmError(
            f"no sample extracts in {args.sample}; run: ldm sample --persons "
            f"{SAMPLE_PERSONS} --seed {SAMPLE_SEED} --out {args.sample}"
        )
    committed = file_digests(args.sample)
    with tempfile.TemporaryDirectory() as folder:
        summary = generate(SampleConfig(persons=SAMPLE_PERSONS, seed=SAMPLE_SEED), Path(folder))
        fresh = file_digests(Path(folder))
    if committed != fresh:
        changed = sorted(set(committed.items()) ^ set(fresh.items()))
        raise LdmError(f"the committed sample differs from a fresh generation: {changed[0][0]} ...")
    print(f"sample_data/ matches `ldm sample --persons {SAMPLE_PERSONS} --seed {SAMPLE_SEED}` byte for byte")
    for feed, rows in summary.rows.items():
        print(f"  {feed:<20} {rows:>8,} rows")
    return 0
