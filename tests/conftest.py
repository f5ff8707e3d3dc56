"""Shared fixtures: synthetic samples are generated once per test session."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from ldm.synthetic.config import SampleConfig
from ldm.synthetic.generate import generate

REPO = Path(__file__).resolve().parent.parent


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
