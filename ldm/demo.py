"""`ldm demo`: the main job (`ldm run`) on the committed sample data.

It checks that the committed sample is exactly what its documented `ldm sample` call produces, then
runs every stage on a working copy of it (the committed files are never written to). A demo key is
created outside the repository unless LDM_KEY_FILE names one.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from ldm.config import load_settings
from ldm.errors import LdmError
from ldm.pipeline import run_pipeline
from ldm.progress import Progress
from ldm.pseudonymise.keys import KEY_FILE_ENV, init_key, load_key
from ldm.run_cli import print_summary
from ldm.synthetic.config import SampleConfig
from ldm.synthetic.generate import generate

REPO = Path(__file__).resolve().parent.parent
SAMPLE_DIR = REPO / "sample_data"
SAMPLE_PERSONS, SAMPLE_SEED = 2000, 1  # the documented call: ldm sample --persons 2000 --seed 1
SAMPLE_TODAY = datetime.date(2025, 4, 1)  # the day after the sample's extract date
DEMO_KEY = Path.home() / ".ldm" / "demo.key"


def register(subparsers: argparse._SubParsersAction) -> None:
    demo = subparsers.add_parser(
        "demo",
        help="run the main job on the committed sample data",
        description="Check the committed sample in sample_data/ against a fresh generation, then run every "
        "stage (validate, pseudonymise, load, link, opt-outs, marts, audit) on a working copy of it into "
        "OUT/store.duckdb (default out/demo).",
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


def demo_key_file() -> Path:
    """The key file named by LDM_KEY_FILE, or a demo key kept in ~/.ldm (created on first use)."""
    if os.environ.get(KEY_FILE_ENV):
        return Path(os.environ[KEY_FILE_ENV])
    if not DEMO_KEY.exists():
        DEMO_KEY.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = init_key(DEMO_KEY)
        print(f"created a demo key in {DEMO_KEY} (key id {key.key_id}); real runs use their own key")
    return DEMO_KEY


def run_demo(args: argparse.Namespace) -> int:
    check_sample(args.sample)
    key_file = demo_key_file()
    print(f"key id {load_key(key_file).key_id}")
    if args.out.exists():
        shutil.rmtree(args.out)
    shutil.copytree(args.sample / "extracts", args.out / "extracts")
    settings = load_settings(
        None, store=args.out / "store.duckdb", key_file=key_file, today=SAMPLE_TODAY,
        pseudonymised=args.out / "pseudonymised",
    )  # fmt: skip
    report = run_pipeline(args.out / "extracts", settings, Progress())
    print_summary(report)
    print(f"\nstore: {settings.store}\nquery it read-only, e.g.: duckdb -readonly {settings.store} "
          "\"select condition, numerator, denominator, crude_rate from marts.mart_prevalence "
          "where geography_level = 'city'\"")  # fmt: skip
    return 0
