"""dbt-duckdb plugin: register ldm.stats' scalar functions as DuckDB UDFs.

Named in dbt_project/profiles.yml under ``plugins:``. dbt-duckdb calls ``configure_connection`` on
every connection it opens, so every model can call::

    wilson_lower(x, n, confidence)   wilson_upper(x, n, confidence)
    byar_lower(x, confidence)        byar_upper(x, confidence)

with the same Python code that analysts call from ``ldm.stats``: there is no second copy of the
formulas in SQL. All arguments and results are DOUBLE; NULL in gives NULL out (``null_handling``
"special" passes NULLs to Python, where the helpers return None).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import duckdb
from dbt.adapters.duckdb.plugins import BasePlugin
from duckdb.sqltypes import DOUBLE

from ldm import stats

# name -> (function, number of DOUBLE arguments)
UDFS: dict[str, tuple[Callable[..., float | None], int]] = {
    "wilson_lower": (stats.wilson_lower, 3),
    "wilson_upper": (stats.wilson_upper, 3),
    "byar_lower": (stats.byar_lower, 2),
    "byar_upper": (stats.byar_upper, 2),
}


def register(con: duckdb.DuckDBPyConnection) -> None:
    """Register the ldm.stats UDFs on a DuckDB connection (idempotent)."""
    for name, (func, arity) in UDFS.items():
        with contextlib.suppress(duckdb.Error):  # not registered yet
            con.remove_function(name)
        con.create_function(name, func, [DOUBLE] * arity, DOUBLE, null_handling="special")


class Plugin(BasePlugin):
    """The plugin class dbt-duckdb looks for in the module named in the profile."""

    def configure_connection(self, conn: duckdb.DuckDBPyConnection) -> None:
        register(conn)
