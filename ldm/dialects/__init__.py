"""The engine seam: one small dialect per engine spells every engine-specific SQL construct that
the pipeline writes in Python (the model is Splink's `dialects.py`).

One place chooses the dialect for the process: `use(name)`, from the `engine` setting
(ldm.config; default duckdb, the embedded engine). Builders ask `current()` when they build SQL,
never at import, so a choice made at start-up reaches every statement.

Constructs left to each engine's own modules, not spelt here (no SQL of one engine says them in
the other's): the store's catalog (`duckdb_tables()`; Spark's SHOW TABLES and catalog API), its
sequences (`nextval`), statements that change working tables in place (UPDATE ... FROM, INSERT
into a temporary table: Spark's temporary views are read-only, its tables need a table format
such as Delta Lake), DuckDB's CSV reader options for the identifiable zone, and the audit's data
digests (ldm.governance.digests), whose security rests on DuckDB's own hash. DEVELOPERS.md has
the inventory.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ldm.dialects.base import Dialect, NotExpressible
from ldm.dialects.duckdb import DuckDB
from ldm.dialects.spark import Spark

DIALECTS: dict[str, Dialect] = {dialect.name: dialect for dialect in (DuckDB(), Spark())}
DEFAULT = "duckdb"
_current: Dialect = DIALECTS[DEFAULT]


def current() -> Dialect:
    """The dialect the process builds its SQL in."""
    return _current


def use(name: str) -> Dialect:
    """Build every statement from now on in the dialect `name`."""
    global _current
    if name not in DIALECTS:
        raise ValueError(f"no SQL dialect {name!r}; one of {', '.join(DIALECTS)}")
    _current = DIALECTS[name]
    return _current


@contextmanager
def using(name: str) -> Iterator[Dialect]:
    """`use(name)` for the duration of a block, then the dialect before it again."""
    before = _current.name
    try:
        yield use(name)
    finally:
        use(before)


__all__ = ["DEFAULT", "DIALECTS", "Dialect", "NotExpressible", "current", "use", "using"]
