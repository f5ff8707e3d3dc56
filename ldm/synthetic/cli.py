"""`ldm sample` and `ldm bench-sample`: write a synthetic extract set, or time a large one."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from ldm.benchmark import peak_memory_mb
from ldm.errors import LdmError
from ldm.synthetic import nhs_numbers
from ldm.synthetic.config import SampleConfig
from ldm.synthetic.generate import generate


def register(subparsers: argparse._SubParsersAction) -> None:
    sample = subparsers.add_parser(
        "sample",
        help="write synthetic Leeds-like extracts with ground truth",
        description=(
            "Write one extract per feed to DIR/extracts, each in its provider's own format, and the "
            "ground truth (the true person behind every record, planted conditions and faults) to "
            "DIR/ground_truth, which is never an input to the pipeline. The same seed always gives "
            "byte-identical files."
        ),
    )
    sample.add_argument("--persons", type=int, required=True, help="number of Leeds residents")
    sample.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    sample.add_argument("--out", type=Path, required=True, help="output folder")
    sample.add_argument("--overwrite", action="store_true", help="replace an existing sample in DIR")
    sample.set_defaults(handler=run_sample)

    bench = subparsers.add_parser(
        "bench-sample",
        help="time the generator and report rows per second and peak memory",
        description="Generate a sample into a temporary folder and print wall time, rows, rows per "
        "second and peak memory. Use --persons 850000 for Leeds scale.",
    )
    bench.add_argument("--persons", type=int, default=850_000, help="number of Leeds residents")
    bench.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    bench.set_defaults(handler=run_bench)


def _config(args: argparse.Namespace) -> SampleConfig:
    if args.persons < 1:
        raise LdmError("--persons must be at least 1")
    config = SampleConfig(persons=args.persons, seed=args.seed)
    limit = int(nhs_numbers.TEST_RANGE_SIZE / (1 + config.out_of_area_share))
    if args.persons > limit:
        raise LdmError(f"--persons must be at most {limit:,}: the NHS test number range is finite")
    return config


def _progress(done: int, total: int) -> None:
    if sys.stderr.isatty():
        print(f"\r  {done:,} of {total:,} people", end="" if done < total else "\n", file=sys.stderr)


def run_sample(args: argparse.Namespace) -> int:
    config = _config(args)
    for part in ("extracts", "ground_truth"):
        existing = args.out / part
        if existing.exists() and any(existing.iterdir()):
            if not args.overwrite:
                raise LdmError(f"{existing} already holds files; use --overwrite to replace them")
            shutil.rmtree(existing)
    summary = generate(config, args.out, progress=_progress)
    print(f"wrote {summary.total_rows:,} rows for {config.persons:,} people in {summary.seconds:.1f} s")
    for feed, rows in summary.rows.items():
        print(f"  {feed:<20} {rows:>12,}")
    print(f"extracts:     {args.out / 'extracts'}")
    print(f"ground truth: {args.out / 'ground_truth'} (never an input to the pipeline)")
    return 0


def run_bench(args: argparse.Namespace) -> int:
    config = _config(args)
    with tempfile.TemporaryDirectory(prefix="ldm-bench-sample-") as folder:
        summary = generate(config, Path(folder), progress=_progress)
        size = sum(f.stat().st_size for f in Path(folder, "extracts").iterdir())
    print(f"persons          {config.persons:,}")
    print(f"rows written     {summary.total_rows:,}")
    print(f"extract size     {size / 1e6:,.0f} MB")
    print(f"wall time        {summary.seconds:,.1f} s")
    print(f"rows per second  {summary.total_rows / summary.seconds:,.0f}")
    print(f"peak memory      {peak_memory_mb():,.0f} MB")
    return 0
