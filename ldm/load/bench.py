"""`ldm bench-load`: time loading and linking a generated extract set into a fresh store."""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from ldm.benchmark import peak_memory_mb
from ldm.linkage.bench import prepare
from ldm.load.loader import load_folder
from ldm.pseudonymise.keys import load_key
from ldm.store import upgrade


def register(subparsers: argparse._SubParsersAction) -> None:
    command = subparsers.add_parser(
        "bench-load",
        help="time loading and linking a generated sample into a new store",
        description="Generate and pseudonymise a sample of N persons once (kept in --work), then load it into "
        "a new store and print seconds per batch, records per second and peak memory.",
    )
    command.add_argument("--persons", type=int, default=100_000)
    command.add_argument("--seed", type=int, default=1)
    command.add_argument("--work", type=Path, help="folder to keep (and reuse) the pseudonymised sample")
    command.set_defaults(handler=run_bench)


def run_bench(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="ldm-bench-load-") as temporary:
        work = args.work or Path(temporary)
        work.mkdir(parents=True, exist_ok=True)
        pseudonymised = prepare(work, args.persons, args.seed)
        store = Path(temporary) / "store.duckdb"
        upgrade(store)
        started, cpu_started = time.perf_counter(), _cpu_seconds()
        batch_started = [started]
        summary = load_folder(
            pseudonymised,
            store,
            load_key(work / "bench.key"),
            progress=lambda line: line.startswith("took over") or batch_started.append(time.perf_counter()),
        )
        seconds, cpu = time.perf_counter() - started, _cpu_seconds() - cpu_started
    ends = [*batch_started[2:], started + seconds]
    rows = 0
    print(f"persons          {args.persons:,}")
    for load, begin, end in zip(summary.loaded, batch_started[1:], ends, strict=True):
        rows += load.rows_accepted
        print(f"  {load.feed:<20} {load.rows_accepted:>12,} rows {end - begin:8.1f} s")
    print(f"load and link    {seconds:8.1f} s  {rows / seconds:,.0f} rows/s  ({cpu:.1f} s of CPU)")
    print(f"peak memory      {peak_memory_mb():,.0f} MB (whole process)")
    return 0


def _cpu_seconds() -> float:
    """User and system CPU time of this process (DuckDB's threads included): wall time alone is
    misleading on a shared machine."""
    times = os.times()
    return times.user + times.system
