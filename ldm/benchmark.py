"""What every benchmark command shares: a cached sample, the DuckDB floor, and peak memory.

Figures are always printed beside floors measured in the same run on the same files — DuckDB
reading the extracts into plain tables in memory, and into tables in a database file — so they can
be read against the machine they ran on.
"""

from __future__ import annotations

import hashlib
import os
import resource
import time
from pathlib import Path

import duckdb

from ldm.synthetic.config import SampleConfig
from ldm.synthetic.formats import FORMATS
from ldm.synthetic.generate import generate

CACHE_ENV = "LDM_BENCH_CACHE"


def peak_memory_mb() -> float:
    """Peak resident memory of this process or of its largest child (dbt runs as one), in MB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024  # Linux reports kilobytes


def generator_digest() -> str:
    """Digest of the generator's code: a cached sample made by other code is not reused."""
    digest = hashlib.sha256()
    for path in sorted((Path(__file__).parent / "synthetic").glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def cached_sample(persons: int, seed: int = 1) -> Path:
    """A generated sample, made once and kept under $LDM_BENCH_CACHE (default ~/.cache/ldm/bench),
    per generator version (generator_digest())."""
    root = Path(os.environ.get(CACHE_ENV, Path.home() / ".cache" / "ldm" / "bench"))
    folder = root / f"persons-{persons}-seed-{seed}-{generator_digest()}"
    if not (folder / "complete").exists():
        print(f"generating a sample of {persons:,} persons in {folder} (cached for later runs)")
        generate(SampleConfig(persons=persons, seed=seed), folder)
        (folder / "complete").touch()
    return folder


def duckdb_floor(extracts: Path, database: Path | None = None) -> tuple[float, int]:
    """Seconds for DuckDB to read every extract into a plain table, and the rows read: in memory,
    or in the database file `database` (written and checkpointed, as a store is)."""
    con = duckdb.connect(str(database) if database else ":memory:")
    con.execute("set enable_progress_bar = false")  # the bench prints its own figures, not DuckDB's bars
    rows = 0
    started = time.perf_counter()
    for number, fmt in enumerate(FORMATS.values()):
        path = extracts / fmt.file_name
        con.execute(
            f"create table t{number} as select * from read_csv(?, delim = ?, header = true)",
            [str(path), fmt.delimiter],
        )
        rows += con.execute(f"select count(*) from t{number}").fetchone()[0]
    if database:
        con.execute("checkpoint")
    seconds = time.perf_counter() - started
    con.close()
    return seconds, rows
