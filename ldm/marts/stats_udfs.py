"""dbt-duckdb plugin: register ldm.stats' scalar functions as DuckDB UDFs.

Named in dbt_project/profiles.yml under ``plugins:``. dbt-duckdb calls ``configure_connection`` on
every connection it opens, so every model can call::

    wilson_lower(x, n, confidence)   wilson_upper(x, n, confidence)
    byar_lower(x, confidence)        byar_upper(x, confidence)

with the same Python code that analysts call from ``ldm.stats``: there is no second copy of the
formulas in SQL. All arguments and results are DOUBLE; NULL in gives NULL out (``null_handling``
"special" passes NULLs to Python, where the helpers return None).

The functions are pure, and a mart calls them with few distinct arguments (a Byar limit per count,
a Wilson interval per numerator and denominator), while each call costs ~0.1 ms (the normal
quantile): so each UDF remembers its results (``functools.lru_cache``), which changes no result.
``ldm.stats`` (and with it numpy and scipy.special) is imported at the first call, not
when dbt opens its first connection: dbt's threads wait for that connection before any model runs.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
from collections.abc import Callable

import duckdb
from dbt.adapters.duckdb.plugins import BasePlugin
from duckdb.sqltypes import DOUBLE

# name -> number of DOUBLE arguments; each is the function of that name in ldm.stats
UDFS: dict[str, int] = {
    "wilson_lower": 3,
    "wilson_upper": 3,
    "byar_lower": 2,
    "byar_upper": 2,
}


def _stats_function(name: str) -> Callable[..., float | None]:
    return getattr(importlib.import_module("ldm.stats"), name)


def _udf(name: str, arity: int) -> Callable[..., float | None]:
    """ldm.stats.NAME, imported at its first call and remembering its results."""
    if arity == 3:

        def call(a: float | None, b: float | None, c: float | None) -> float | None:
            return _stats_function(name)(a, b, c)
    else:

        def call(a: float | None, b: float | None) -> float | None:
            return _stats_function(name)(a, b)

    call.__name__ = call.__qualname__ = name
    return functools.lru_cache(maxsize=1 << 16)(call)


# Shared by every connection of the process, so that their results are remembered once.
_FUNCTIONS: dict[str, Callable[..., float | None]] = {name: _udf(name, arity) for name, arity in UDFS.items()}


def register(con: duckdb.DuckDBPyConnection) -> None:
    """Register the ldm.stats UDFs on a DuckDB connection (idempotent)."""
    for name, arity in UDFS.items():
        with contextlib.suppress(duckdb.Error):  # not registered yet
            con.remove_function(name)
        con.create_function(name, _FUNCTIONS[name], [DOUBLE] * arity, DOUBLE, null_handling="special")


class Plugin(BasePlugin):
    """The plugin class dbt-duckdb looks for in the module named in the profile."""

    def configure_connection(self, conn: duckdb.DuckDBPyConnection) -> None:
        register(conn)
