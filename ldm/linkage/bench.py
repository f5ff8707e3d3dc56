"""Linkage quality of the store `ldm run` builds, scored record by record against ground truth.

    ldm bench-linkage --store store.duckdb --truth sample/ground_truth   score a store already built
    ldm bench-linkage --persons 20000 --seed 1                           generate a sample, run it, score it
    ldm bench-linkage --engine-only --persons 850000 --work /scratch/b   time the linkage engine alone
    python -m ldm.linkage.bench ...                                      the same

Without --store, a sample is generated and the whole monthly run (`ldm run`: pseudonymise, load,
link, opt-outs, marts) builds a new store from it, which is then scored: the figures are those
of the linked data analysts get. --engine-only instead links every activity feed in one pass in
memory against a spine of current registrations, with no opt-outs: seconds per step, records per
second and peak memory of the engine, not a quality figure. Its sample is generated and
pseudonymised first (not timed); peak memory includes that preparation, so run once with --work
to keep the pseudonymised files, then again with the same --work to measure linkage alone.
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
from ldm.errors import LdmError
from ldm.feeds.spec import builtin_specs
from ldm.pseudonymise.batch import pseudonymise_folder
from ldm.pseudonymise.keys import init_key, load_key
from ldm.synthetic.config import SampleConfig
from ldm.synthetic.generate import generate

TODAY = datetime.date(2025, 4, 1)  # the day after the synthetic sample's extract date


def sample(work: Path, persons: int, seed: int) -> Path:
    """A generated sample (extracts/ and ground_truth/) under `work`, unless it is already there."""
    folder = work / "sample"
    if not _sample_ready(folder):
        generate(SampleConfig(persons=persons, seed=seed), folder)
    return folder


def _sample_ready(folder: Path) -> bool:
    return (folder / "ground_truth" / "records.parquet").is_file()


def _key(work: Path) -> Path:
    path = work / "bench.key"
    if not path.exists():
        init_key(path)
    return path


def prepare(work: Path, persons: int, seed: int) -> Path:
    """Generate and pseudonymise a sample under `work`, unless it is already there."""
    pseudonymised = work / "pseudonymised"
    if not pseudonymised.is_dir():
        extracts = sample(work, persons, seed) / "extracts"
        pseudonymise_folder(extracts, pseudonymised, load_key(_key(work)), builtin_specs(), today=TODAY)
    return pseudonymised


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store", type=Path, metavar="FILE", help="score this store, built by `ldm run` (needs --truth)"
    )
    parser.add_argument(
        "--truth", type=Path, metavar="DIR", help="ground_truth folder of the sample the store was built from"
    )
    parser.add_argument(
        "--persons", type=int, default=100_000, help="persons in the generated sample (100,000)"
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the generated sample")
    parser.add_argument(
        "--work", type=Path, metavar="DIR", help="folder to keep (and reuse) the sample and what is built"
    )
    parser.add_argument(
        "--engine-only",
        action="store_true",
        help="time the linkage engine alone (one pass in memory, no opt-outs): not a quality figure",
    )
    parser.add_argument("--threads", type=int, default=2, help="DuckDB threads (--engine-only)")
    parser.add_argument("--memory-limit", default="5GB", help="DuckDB memory limit (--engine-only)")


def run(args: argparse.Namespace) -> int:
    if (args.store is None) != (args.truth is None):
        raise LdmError("--store and --truth go together: a store and the ground truth of its sample")
    if args.store is not None and args.engine_only:
        raise LdmError("--engine-only links a generated sample in memory; it scores no --store")
    if args.store is not None:
        _print_quality(args.store, args.truth)
        return 0
    with tempfile.TemporaryDirectory(prefix="ldm-linkage-bench-") as temporary:
        work = args.work or Path(temporary)
        work.mkdir(parents=True, exist_ok=True)
        if args.engine_only:
            _engine_only(work, args)
        else:
            _run_and_score(work, args.persons, args.seed, kept=args.work is not None)
    return 0


def _print_quality(store: Path, truth: Path) -> None:
    from ldm.linkage.scoring import score_store

    report = score_store(store, truth)
    print(f"linkage quality of {store} against {truth}")
    print(
        "(activity records in the store; registrations found the persons; opted-out records are not scored)"
    )
    print("\n".join(report.table()))


def _run_and_score(work: Path, persons: int, seed: int, kept: bool) -> None:
    """Generate a sample, build a store from it with the monthly run, and score the store."""
    from ldm.config import load_settings
    from ldm.pipeline import run_pipeline
    from ldm.progress import Progress

    started = time.perf_counter()
    reused = _sample_ready(work / "sample")
    folder = sample(work, persons, seed)
    print(
        f"using the sample kept in {folder}"
        if reused
        else f"generated a sample of {persons:,} persons (seed {seed}) in {time.perf_counter() - started:.1f} s"
    )
    store = work / "store.duckdb"
    settings = load_settings(
        None, store=store, key_file=_key(work), pseudonymised=work / "store_pseudonymised", today=TODAY
    )
    started = time.perf_counter()
    run_pipeline(folder / "extracts", settings, Progress())
    where = store if kept else "a temporary store (--work keeps it)"
    print(f"ldm run built {where} in {time.perf_counter() - started:.1f} s")
    _print_quality(store, folder / "ground_truth")


def _engine_only(work: Path, args: argparse.Namespace) -> None:
    from ldm.linkage.engine_only import link_sample

    started = time.perf_counter()
    pseudonymised = prepare(work, args.persons, args.seed)
    print(f"prepared sample of {args.persons:,} persons in {time.perf_counter() - started:.1f} s")
    con = duckdb.connect()
    con.execute(f"set threads = {int(args.threads)}")
    con.execute("set enable_progress_bar = false")
    con.execute("set memory_limit = ?", [args.memory_limit])
    run = link_sample(con, pseudonymised)
    print("linkage engine alone, one pass in memory (timing only: the store's quality is scored without it)")
    for step, seconds in run.seconds.items():
        print(f"{step:>20}: {seconds:8.2f} s")
    print(f"records: {run.records:,}, distinct token combinations: {run.combinations:,}")
    print(f"records per second: {run.records / run.seconds['total']:,.0f}")
    print(f"peak memory (max RSS, whole process): {peak_memory_mb():,.0f} MB")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ldm.linkage.bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except LdmError as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return 2


def register(subparsers: argparse._SubParsersAction) -> None:
    """`ldm bench-linkage`: the same from the ldm command."""
    command = subparsers.add_parser(
        "bench-linkage",
        help="linkage quality of the store `ldm run` builds, scored against ground truth",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(command)
    command.set_defaults(handler=run)


if __name__ == "__main__":
    sys.exit(main())
