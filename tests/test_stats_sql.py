"""ldm.stats as DuckDB UDFs through the dbt-duckdb plugin the marts use (ldm.marts.stats_udfs)."""

from __future__ import annotations

import duckdb
import pytest
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
