"""What the dbt Python models read and return, on either engine that runs them.

The project's two Python models (int_inequality_indices, int_life_expectancy) call ldm.stats on
pandas frames and build their result as an Arrow table. dbt-duckdb hands a model DuckDB relations
and its connection, and takes an Arrow table back; dbt-spark (through ldm.spark.python_models) hands
it Spark DataFrames and the SparkSession, and writes a Spark DataFrame. These two helpers are the
only place the models see which engine runs them; on DuckDB they do exactly what the models did
before there was a second engine.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa


def _from_spark(value: Any) -> bool:
    """Whether `value` is pyspark's (a DataFrame or a SparkSession), without importing pyspark."""
    return type(value).__module__.partition(".")[0] == "pyspark"


def to_pandas(relation: Any) -> Any:
    """A `dbt.ref()` result as a pandas DataFrame: a DuckDB relation's own conversion, or a Spark
    DataFrame's rows through Arrow (pyarrow's conversion, not pyspark's pandas layer)."""
    if _from_spark(relation):
        return relation.toArrow().to_pandas()
    return relation.df()


def result(table: pa.Table, session: Any) -> Any:
    """A model's result for the engine that runs it: the Arrow table itself for dbt-duckdb, a Spark
    DataFrame with the same columns, types and rows for dbt-spark."""
    if _from_spark(session):
        return session.createDataFrame(table)
    return table
