"""ldm.stats' interval functions as Spark SQL functions, so that the marts call them on Spark too.

The same functions that the dbt-duckdb plugin (ldm.marts.stats_udfs) registers on DuckDB, by the same
names and arities (its UDFS), each calling ldm.stats: the formulas have one copy, in Python, on both
engines. register() puts them on a session before dbt runs, and every model can then call

    wilson_lower(x, n, confidence)   wilson_upper(x, n, confidence)
    byar_lower(x, confidence)        byar_upper(x, confidence)

Spark runs a Python UDF in Python worker processes (this interpreter, spark.pyspark.python), which
import ldm.stats at their first call and remember results, as the DuckDB UDFs do. Two things differ
in how Spark calls them, and are dealt with here:

- Arguments arrive as Spark typed them: a literal such as 0.95 is a DECIMAL, which Python gets as a
  decimal.Decimal. Every argument is made a float, as DuckDB casts them to DOUBLE (the same values:
  an integer count is exact as a float, and float(Decimal('0.95')) is the double 0.95).
- Spark evaluates a Python UDF on every row of the query that holds it, including rows that a CASE
  around the call sends to another branch; PySpark's documentation says so ("user-defined functions
  do not support conditional expressions or short circuiting ... incorporate the condition into the
  functions"). mart_utilisation asks for a Wilson interval only for proportions, yet Spark calls
  wilson_lower for its event counts too, where the numerator exceeds the denominator and ldm.stats
  refuses. So an argument outside a function's domain (a ValueError from ldm.stats) gives NULL here;
  DuckDB, which evaluates only the branch taken, never makes such a call. A NULL that reached a mart
  this way would show as a difference between the engines, which tests/test_spark_marts.py checks
  for on every mart value.
"""

from __future__ import annotations

import functools
import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


@functools.lru_cache(maxsize=1 << 16)
def _evaluate(name: str, arguments: tuple[float | None, ...]) -> float | None:
    return getattr(importlib.import_module("ldm.stats"), name)(*arguments)


class StatsFunction:
    """ldm.stats.NAME as Spark calls it: floats in, NULL outside the function's domain.

    An instance holds only the function's name, so Spark ships it to its workers by reference to this
    module (a closure over the DuckDB plugin's cached functions could not be pickled).
    """

    def __init__(self, name: str) -> None:
        self.__name__ = name

    def __call__(self, *arguments: object) -> float | None:
        values = tuple(None if value is None else float(value) for value in arguments)
        try:
            return _evaluate(self.__name__, values)
        except ValueError:  # a row of a CASE branch not taken (see above)
            return None


def register(spark: SparkSession) -> None:
    """Register the ldm.stats UDFs on a Spark session (idempotent: a name registered again is replaced)."""
    from pyspark.sql.types import DoubleType

    from ldm.marts.stats_udfs import UDFS

    for name in UDFS:
        spark.udf.register(name, StatsFunction(name), DoubleType())
