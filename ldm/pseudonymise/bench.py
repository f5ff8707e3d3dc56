"""`ldm bench-pseudonymise`: time validation and pseudonymisation against the DuckDB floor."""

from __future__ import annotations

import argparse
import datetime
import secrets
import shutil
import tempfile
import time
from pathlib import Path

from ldm.benchmark import cached_sample, duckdb_floor, peak_memory_mb
from ldm.feeds.spec import builtin_specs
from ldm.identifiers.tokens import tokenise
from ldm.pseudonymise.batch import pseudonymise_folder
from ldm.pseudonymise.bench_tokens import best_seconds, synthetic_nhs_numbers
from ldm.pseudonymise.keys import MasterKey

SAMPLE_AS_OF = datetime.date(2025, 4, 1)  # the day after the synthetic extracts' date


def register(subparsers: argparse._SubParsersAction) -> None:
    bench = subparsers.add_parser(
        "bench-pseudonymise",
        help="time validation and pseudonymisation of a generated extract set against the DuckDB floor",
        description=(
            "Generate (once, cached) a sample of N persons, then print: the token step's distinct values "
            "per second on one core; the floor (DuckDB reading the same extracts into plain tables); the "
            "whole identifiable-zone step (validate, quarantine, tokenise, write Parquet) per feed; the "
            "ratio step / floor; and peak memory."
        ),
    )
    bench.add_argument("--persons", type=int, default=100_000, help="persons in the generated sample")
    bench.add_argument("--seed", type=int, default=1, help="seed of the generated sample")
    bench.set_defaults(handler=run_bench)


def run_bench(args: argparse.Namespace) -> int:
    sample = cached_sample(args.persons, args.seed)
    values = synthetic_nhs_numbers(1_000_000)
    key = MasterKey(secrets.token_bytes(32))  # in memory only, for this run
    token_seconds = best_seconds(lambda: tokenise(values, "nhs_number", key.purpose_key("linkage")), 3)
    floor_seconds, rows = duckdb_floor(sample / "extracts")

    work = Path(tempfile.mkdtemp(prefix="ldm-bench-pseudonymise-"))
    try:
        shutil.copytree(sample / "extracts", work / "extracts")
        started = time.perf_counter()
        result = pseudonymise_folder(work / "extracts", work / "out", key, builtin_specs(), SAMPLE_AS_OF)
        step_seconds = time.perf_counter() - started
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"persons                      {args.persons:,}")
    print(f"rows in the extracts         {rows:,}")
    print(f"token step (one core)        {1_000_000 / token_seconds:,.0f} distinct values/s")
    print(f"floor: DuckDB plain read     {floor_seconds:8.1f} s  {rows / floor_seconds:12,.0f} rows/s")
    for manifest, _ in result.done:
        print(f"  {manifest.feed:<26} {manifest.seconds:8.1f} s  {manifest.rows_in:12,} rows")
    print(f"pseudonymise, all feeds      {step_seconds:8.1f} s  {rows / step_seconds:12,.0f} rows/s")
    print(f"ratio step / floor           {step_seconds / floor_seconds:8.2f}x")
    print(f"peak memory                  {peak_memory_mb():,.0f} MB")
    for path, message in result.failed:
        print(f"FAILED {path.name}: {message}")
    return 1 if result.failed else 0
