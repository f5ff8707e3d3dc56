"""Benchmark linkage on a generated sample: seconds per step, records per second, peak memory.

    python -m ldm.linkage.bench --persons 850000 --threads 2 --work /scratch/bench

The sample is generated and pseudonymised first (not timed). Peak memory is the process's
maximum resident set size, which includes that preparation: run once with --work to keep the
pseudonymised files, then again with the same --work to measure linkage alone.
"""

from __future__ import annotations

import argparse
import datetime
import sys
import tempfile
import time
from pathlib import Path

import duckdb

from ldm.benchmark import peak_memory_mb
from ldm.feeds.spec import builtin_specs
from ldm.linkage import quality
from ldm.pseudonymise.batch import pseudonymise_folder
from ldm.pseudonymise.keys import init_key
from ldm.synthetic.config import SampleConfig
from ldm.synthetic.generate import generate


def prepare(work: Path, persons: int, seed: int) -> Path:
    """Generate and pseudonymise a sample under `work`, unless it is already there."""
    pseudonymised = work / "pseudonymised"
    if not pseudonymised.is_dir():
        generate(SampleConfig(persons=persons, seed=seed), work / "sample")
        key = init_key(work / "bench.key")
        pseudonymise_folder(
            work / "sample" / "extracts", pseudonymised, key, builtin_specs(), today=datetime.date(2025, 4, 1)
        )
    return pseudonymised


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--persons", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--memory-limit", default="5GB")
    parser.add_argument("--work", type=Path, help="folder to keep (and reuse) the pseudonymised sample")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ldm-linkage-bench-") as temporary:
        work = args.work or Path(temporary)
        work.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        pseudonymised = prepare(work, args.persons, args.seed)
        print(f"prepared sample of {args.persons} persons in {time.perf_counter() - started:.1f} s")
        con = duckdb.connect()
        con.execute(f"set threads = {int(args.threads)}")
        con.execute("set enable_progress_bar = false")
        con.execute("set memory_limit = ?", [args.memory_limit])
        report = quality._link_and_measure(con, pseudonymised, work / "sample" / "ground_truth", None)
    run = report.run
    for step, seconds in run.seconds.items():
        print(f"{step:>20}: {seconds:8.2f} s")
    print(f"records: {run.records}, distinct token combinations: {run.combinations}")
    print(f"records per second: {run.records / run.seconds['total']:,.0f}")
    peak_mb = peak_memory_mb()
    print(f"peak memory (max RSS, whole process): {peak_mb:,.0f} MB")
    print("\n".join(report.lines()[:1] + [line for line in report.lines() if line.startswith("step=")]))
    return 0


if __name__ == "__main__":
    sys.exit(main())


def register(subparsers) -> None:
    """`ldm bench-linkage`: the same benchmark from the ldm command."""
    command = subparsers.add_parser(
        "bench-linkage",
        help="time linkage of a generated sample: seconds per step, records per second, peak memory",
        description=__doc__.splitlines()[0],
    )
    command.add_argument("--persons", type=int, default=100_000)
    command.add_argument("--work", type=Path, help="folder to keep (and reuse) the pseudonymised sample")
    command.set_defaults(
        handler=lambda args: main(
            ["--persons", str(args.persons)] + (["--work", str(args.work)] if args.work else [])
        )
    )
