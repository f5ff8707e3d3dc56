"""Shared fixtures: synthetic samples are generated once per test session."""

from __future__ import annotations

import datetime
import shutil
from pathlib import Path

import duckdb
import pytest
import yaml

from ldm.synthetic.config import SampleConfig
from ldm.synthetic.generate import generate

REPO = Path(__file__).resolve().parent.parent

# The marts hold a series of periods: a rolling 12 months at every quarter end and every financial
# year. The latest rolling period ends at the reporting_period_end var (the sample's 2025-03-31): the
# same 12 months and point in time as the single period the marts held before the series.
PERIOD_END = datetime.date.fromisoformat(
    yaml.safe_load((REPO / "dbt_project" / "dbt_project.yml").read_text())["vars"]["reporting_period_end"]
)
YEAR_BEFORE = PERIOD_END.replace(year=PERIOD_END.year - 1)  # the end of the rolling period a year earlier


def rolling_period(end: datetime.date = PERIOD_END, alias: str = "") -> str:
    """SQL condition on a mart's rows: the rolling 12 months to `end` (the latest period by default);
    `alias` qualifies the columns."""
    prefix = f"{alias}." if alias else ""
    return f"{prefix}period_type = 'rolling_12_months' and {prefix}period_end = date '{end.isoformat()}'"


@pytest.fixture(scope="session")
def medium_sample(tmp_path_factory) -> Path:
    """20,000 people: enough rows to check planted rates and gradients."""
    folder = tmp_path_factory.mktemp("medium_sample")
    generate(SampleConfig(persons=20_000, seed=7), folder)
    return folder


@pytest.fixture(scope="session")
def sample_marts_store(tmp_path_factory) -> Path:
    """The committed sample through `ldm demo` (every stage, dbt build included), built once.

    Tests read it or copy it; none may change it.
    """
    from ldm.cli import main
    from ldm.pseudonymise.keys import init_key

    folder = tmp_path_factory.mktemp("sample_marts")
    init_key(folder / "demo.key")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LDM_KEY_FILE", str(folder / "demo.key"))
        assert main(["demo", "--out", str(folder / "demo")]) == 0
    return folder / "demo" / "store.duckdb"


def query(store: Path, sql: str, *params) -> list[tuple]:
    """Rows of `sql` on a store opened read-only (tests import this: `from conftest import query`)."""
    con = duckdb.connect(str(store), read_only=True)
    try:
        return con.execute(sql, list(params)).fetchall()
    finally:
        con.close()


def store_copy(store: Path, folder: Path, *statements: str) -> Path:
    """A copy of a shared store with `statements` run on it (the shared store is never changed)."""
    copy = folder / "store_copy.duckdb"
    shutil.copy2(store, copy)
    con = duckdb.connect(str(copy))
    try:
        for statement in statements:
            con.execute(statement)
    finally:
        con.close()
    return copy
