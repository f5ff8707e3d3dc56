"""ldm.stats as DuckDB UDFs through the dbt-duckdb plugin the marts use (ldm.marts.stats_udfs)."""

from __future__ import annotations

import duckdb
import pytest
from conftest import STATS_GRID, assert_stats_grid_is_ldm_stats, compiled_stats_grid
from dbt.adapters.duckdb.plugins import BasePlugin

from ldm import stats
from ldm.marts.stats_udfs import UDFS, Plugin, register


def test_plugin_is_found_by_dbt_duckdb_and_registers_every_udf():
    plugin = BasePlugin.create("ldm.marts.stats_udfs")
    assert isinstance(plugin, Plugin)
    con = duckdb.connect()
    plugin.configure_connection(con)
    row = con.execute(
        "select wilson_lower(87, 131, 0.95), wilson_upper(87, 131, 0.95), byar_lower(87, 0.95), byar_upper(87, 0.95)"
    ).fetchone()
    assert row == pytest.approx((*stats.wilson_ci(87, 131), *stats.byar_ci(87)))
    assert set(UDFS) == {"wilson_lower", "wilson_upper", "byar_lower", "byar_upper"}


def test_nulls_give_null_and_registration_is_idempotent():
    con = duckdb.connect()
    register(con)
    register(con)  # a second connection setup must not fail on existing functions
    row = con.execute(
        "select wilson_lower(null, 10, 0.95), byar_upper(null, 0.95), byar_lower(0, 0.95)"
    ).fetchone()
    assert row == (None, None, 0.0)


def test_udfs_work_over_a_column_of_counts():
    con = duckdb.connect()
    register(con)
    rows = con.execute(
        "select x, n, wilson_lower(x, n, 0.95), wilson_upper(x, n, 0.95)"
        " from (values (1, 164), (44, 134), (0, 10), (10, 10)) as t(x, n) order by x"
    ).fetchall()
    for x, n, lower, upper in rows:
        assert (lower, upper) == pytest.approx(stats.wilson_ci(x, n))


@pytest.mark.parametrize("confidence", [0.95, 0.999])
def test_the_marts_sql_formulas_are_ldm_stats(tmp_path_factory, confidence):
    """stats_functions 'sql' (for SQL endpoints, where no UDF can be registered) writes Wilson's and
    Byar's limits in SQL: on DuckDB they equal ldm.stats to 1e-12, NULL where ldm.stats gives None
    (Byar's lower limit of a small count at 99.9%), and so does the 'udf' spelling of the same macros.
    (tests/test_spark_marts.py runs the SQL spelling on Spark.)"""
    con = duckdb.connect()
    register(con)
    for spelling in ("sql", "udf"):
        sql = compiled_stats_grid(tmp_path_factory, spelling, confidence)
        assert ("wilson_lower(" in sql) == (spelling == "udf")
        assert_stats_grid_is_ldm_stats(con.execute(sql + " order by x, n").fetchall(), confidence)
    assert any(row is None for row in [stats.byar_lower(x, 0.999) for x, _ in STATS_GRID])
