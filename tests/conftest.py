"""Shared fixtures: synthetic samples are generated once per test session."""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import io
import json
import os
import shutil
from collections.abc import Callable
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


def dbt_unit_tests() -> set[tuple[str, str]]:
    """Every unit test the dbt project declares, as (model, name), read from its YAML."""
    declared = set()
    for path in (REPO / "dbt_project" / "models").rglob("*.yml"):
        for test in (yaml.safe_load(path.read_text()) or {}).get("unit_tests") or []:
            declared.add((test["model"], test["name"]))
    return declared


def dbt_results(target: Path) -> list[dict]:
    """The node results a dbt run wrote in `target`'s run_results.json."""
    return json.loads((target / "run_results.json").read_text())["results"]


def dbt_node_kinds(target: Path) -> set[str]:
    """The kinds of node (model, seed, test, unit_test ...) a dbt run wrote in `target`."""
    return {result["unique_id"].split(".")[0] for result in dbt_results(target)}


def rolling_period(end: datetime.date = PERIOD_END, alias: str = "") -> str:
    """SQL condition on a mart's rows: the rolling 12 months to `end` (the latest period by default);
    `alias` qualifies the columns."""
    prefix = f"{alias}." if alias else ""
    return f"{prefix}period_type = 'rolling_12_months' and {prefix}period_end = date '{end.isoformat()}'"


def built_once(tmp_path_factory, name: str, build: Callable[[Path], None]) -> Path:
    """A folder that `build(folder)` fills once for the whole test run, shared by pytest-xdist's
    workers: the first worker to ask builds it under a lock while the others wait, then all read it.

    Each worker has its own base temporary folder; their parent is the run's. A build that fails
    leaves no folder marked built, so the next worker to ask tries again (and fails the same way).
    """
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent
    folder, built = base / name, base / f"{name}.built"
    with (base / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not built.exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            build(folder)
            built.touch()
    return folder


@pytest.fixture(scope="session")
def medium_sample(tmp_path_factory) -> Path:
    """20,000 people: enough rows to check planted rates and gradients (generated once per run)."""
    return built_once(
        tmp_path_factory,
        "medium_sample",
        lambda folder: generate(SampleConfig(persons=20_000, seed=7), folder),
    )


DEMO_PRINTED = "demo.printed"  # what `ldm demo` printed, kept beside the shared build for test_demo


@pytest.fixture(scope="session")
def demo_key(tmp_path_factory) -> Path:
    """The key file of the shared demo store, made once per run on its own, so that a test needing
    only the key (the Spark run of the sample) need not wait for the demo to be built."""
    from ldm.pseudonymise.keys import init_key

    return built_once(tmp_path_factory, "demo_key", lambda folder: init_key(folder / "demo.key")) / "demo.key"


def _demo(folder: Path, key_file: Path) -> None:
    from ldm.cli import main

    shutil.copy2(key_file, folder / "demo.key")  # beside the build, where tests look for it (mode 600 kept)
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(printed):
        patch.setenv("LDM_KEY_FILE", str(folder / "demo.key"))
        code = main(["demo", "--out", str(folder / "demo")])
    (folder / DEMO_PRINTED).write_text(printed.getvalue())
    assert code == 0, printed.getvalue()[-3000:]


@pytest.fixture(scope="session")
def sample_marts_store(tmp_path_factory, demo_key) -> Path:
    """The committed sample through `ldm demo` (every stage, dbt build included) under `demo_key`,
    built once per run and shared by the workers.

    Tests read it (read-only connections: another worker may be reading it too) or copy it; none may
    change it or open it for writing.
    """
    return (
        built_once(tmp_path_factory, "sample_marts", lambda folder: _demo(folder, demo_key))
        / "demo"
        / "store.duckdb"
    )


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


# The test files that take a minute or more on one pytest-xdist worker, longest first (measured with
# `python3 tasks.py test --junitxml=...`: the Spark session's fixed cost per query, and whole runs).
LONGEST_FILES = (
    "test_spark_marts.py",
    "test_attacks.py",
    "test_disclosure_attacks.py",
    "test_spark_cluster.py",
    "test_run.py",
    "test_load.py",
    "test_release.py",
    "test_marts.py",
    "test_life_expectancy_marts.py",
    "test_dashboard.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest files first, longest of all first. `--dist loadfile` hands whole files to the
    workers in collection order, so a long file collected last runs alone at the end while the other
    worker idles; short files last fill the gaps."""
    rank = {name: position for position, name in enumerate(LONGEST_FILES)}
    last = len(LONGEST_FILES)  # every other file, in the order collected (the sort is stable)
    items.sort(key=lambda item: rank.get(item.path.name, last))


# Counts and denominators on which the marts' Wilson and Byar limits are checked: zero, small counts
# (where Byar's lower limit goes negative at high confidence), a whole denominator, and city sizes.
STATS_GRID = (
    (0, 10),
    (1, 164),
    (2, 5),
    (3, 7),
    (10, 10),
    (44, 134),
    (87, 131),
    (999, 100_000),
    (250_000, 800_000),
)


def compiled_inline(folder: Path, inline: str, variables: dict | None = None) -> str:
    """`inline` (SQL with the dbt project's macros) as dbt compiles it, with `variables` set."""
    from ldm.marts.build import run_dbt

    result = run_dbt(
        "compile", "--inline", inline, "--vars", json.dumps(variables or {}), "--output", "json", "--quiet",
        store=folder / "compile.duckdb", work=folder,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:]
    return json.loads(result.stdout[result.stdout.index("{") :])["compiled"]


def compiled_stats_grid(tmp_path_factory, stats_functions: str, confidence: float) -> str:
    """The dbt project's wilson() and byar() macros over STATS_GRID, compiled by dbt with the
    stats_functions and confidence_level vars given: one query (columns x, n, wilson_lower,
    wilson_upper, byar_lower, byar_upper) that DuckDB and Spark both run. Compiled once per test run
    for each pair of vars (built_once), as test_stats_sql and test_spark_marts ask for the same."""
    rows = ", ".join(f"({x}, {n})" for x, n in STATS_GRID)
    inline = (
        "select x, n, {{ wilson('lower', 'x', 'n') }} as wilson_lower, {{ wilson('upper', 'x', 'n') }} as wilson_upper,"
        " {{ byar('lower', 'x') }} as byar_lower, {{ byar('upper', 'x') }} as byar_upper"
        f" from (values {rows}) as grid(x, n)"
    )
    variables = {"stats_functions": stats_functions, "confidence_level": confidence}

    def compile_into(folder: Path) -> None:
        (folder / "compiled.sql").write_text(compiled_inline(folder, inline, variables))

    return (
        built_once(tmp_path_factory, f"stats_grid_{stats_functions}_{confidence}", compile_into)
        / "compiled.sql"
    ).read_text()


def assert_stats_grid_is_ldm_stats(rows: list[tuple], confidence: float) -> None:
    """Rows (x, n, wilson_lower, wilson_upper, byar_lower, byar_upper) of compiled_stats_grid's query
    equal ldm.stats to 1e-12, with NULL exactly where ldm.stats gives None."""
    from ldm import stats

    assert len(rows) == len(STATS_GRID)
    for x, n, *limits in rows:
        expected = [
            stats.wilson_lower(x, n, confidence), stats.wilson_upper(x, n, confidence),
            stats.byar_lower(x, confidence), stats.byar_upper(x, confidence),
        ]  # fmt: skip
        assert [value is None for value in limits] == [value is None for value in expected], (x, n)
        assert [v for v in limits if v is not None] == pytest.approx(
            [v for v in expected if v is not None], rel=1e-12, abs=1e-15
        ), (x, n)
