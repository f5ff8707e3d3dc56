"""Throughput of `tokenise`, read against plain unkeyed SHA-256 on the same machine and values.

    python -m ldm.pseudonymise.bench_tokens [--count N] [--repeat R]

The values are distinct synthetic ten-digit numbers from the 999 test range (999 0000000 to
999 9999999). That range holds only about 909,000 numbers that pass Modulus 11, fewer than the
2,000,000 needed, so most values here fail the check; for hashing speed that does not matter.
The key is random and lives only in memory for the run.

Three figures: tokenise end to end (distinct values, HMAC, hex text, spread back to rows); the
HMAC loop alone; and the baseline, one unkeyed hashlib.sha256 per value, which is as fast as
any per-value Python hashing can be on this machine. The last column is speed relative to it.
"""

from __future__ import annotations

import argparse
import hashlib
import secrets
import time
from collections.abc import Callable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ldm.identifiers.tokens import _digests, _hmac_states, tokenise

TEST_RANGE_START = 999_000_000_0
TEST_RANGE_SIZE = 10_000_000


def synthetic_nhs_numbers(count: int, seed: int = 20240101) -> pa.Array:
    """`count` distinct ten-digit strings from the 999 test range, in random order."""
    if count > TEST_RANGE_SIZE:
        raise ValueError(f"at most {TEST_RANGE_SIZE:,} distinct values")
    rng = np.random.default_rng(seed)
    numbers = rng.choice(TEST_RANGE_SIZE, size=count, replace=False) + TEST_RANGE_START
    return pc.cast(pa.array(numbers), pa.string())


def unkeyed_sha256(values: list[bytes]) -> list[bytes]:
    """The baseline: one plain SHA-256 per value, the cheapest hash call Python can make."""
    sha256 = hashlib.sha256
    return [sha256(value).digest() for value in values]


def keyed_digests(values: list[bytes], key: bytes, field: str) -> bytearray:
    """The HMAC loop inside tokenise, without the Arrow work around it."""
    inner, outer = _hmac_states(key, field)
    return _digests(values, inner, outer)


def best_seconds(function: Callable[[], object], repeat: int) -> float:
    """Fastest of `repeat` runs: the least disturbed by other work on the machine."""
    timings = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        timings.append(time.perf_counter() - start)
    return min(timings)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2_000_000, help="distinct values")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each, best is reported")
    args = parser.parse_args(argv)

    values = synthetic_nhs_numbers(args.count)
    as_bytes = pc.cast(values, pa.binary()).to_numpy(zero_copy_only=False).tolist()
    key = secrets.token_bytes(32)
    timings = {
        "tokenise, end to end": lambda: tokenise(values, "nhs_number", key),
        "HMAC-SHA256 loop only": lambda: keyed_digests(as_bytes, key, "nhs_number"),
        "unkeyed sha256 (baseline)": lambda: unkeyed_sha256(as_bytes),
    }
    seconds = {label: best_seconds(run, args.repeat) for label, run in timings.items()}
    baseline = seconds["unkeyed sha256 (baseline)"]
    print(f"{args.count:,} distinct values, best of {args.repeat} runs, one core")
    for label, elapsed in seconds.items():
        rate = args.count / elapsed
        print(f"  {label:<27} {rate:>11,.0f} values/s  {elapsed:6.2f} s  {baseline / elapsed:5.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
