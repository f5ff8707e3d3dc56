"""`ldm run`, its settings and `ldm doctor`, on the committed sample."""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import io
import re
import shutil
from pathlib import Path

import duckdb
import pytest
from identifier_scan import key_material, occurring
from test_pseudonymise_extracts import raw_identifiers
from tqdm import tqdm

from ldm.cli import main
from ldm.config import load_settings
from ldm.errors import LdmError
from ldm.pseudonymise.keys import init_key

REPO = Path(__file__).resolve().parent.parent


class Terminal(io.StringIO):
    """Captured output that is a terminal to the run, which then draws its progress bars there."""

    def isatty(self) -> bool:
        return True


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    """`ldm run` on the sample, from an empty store, by an operator at a terminal (its progress goes to
    stderr): run.log holds what it printed to both."""
    root = tmp_path_factory.mktemp("run")
    shutil.copytree(REPO / "sample_data" / "extracts", root / "extracts")
    init_key(root / "ldm.key")
    args = ["run", "--extracts", str(root / "extracts"), "--store", str(root / "store.duckdb"),
            "--key-file", str(root / "ldm.key"), "--today", "2025-04-01"]  # fmt: skip
    printed, shown = io.StringIO(), Terminal()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(shown):
        code = main(args)
    (root / "run.log").write_text(printed.getvalue() + shown.getvalue())  # what an operator's log would hold
    assert code == 0, shown.getvalue()[-3000:]
    return root, args


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


SERIES_MARTS = ("mart_prevalence", "mart_utilisation", "mart_inequalities", "mart_periods")


def build_stamps(store: Path) -> dict[str, set[str]]:
    """The dbt invocations that wrote each mart's rows."""
    con = duckdb.connect(str(store), read_only=True)
    try:
        return {
            mart: {
                row[0]
                for row in con.execute(f"select distinct dbt_invocation_id from marts.{mart}").fetchall()
            }
            for mart in (*SERIES_MARTS, "mart_person_analysis")
        }
    finally:
        con.close()


def test_run_builds_everything_and_a_rerun_adds_nothing(first_run, capsys):
    root, args = first_run
    assert (root / "store.duckdb").exists() and (root / "store_pseudonymised").is_dir()
    first = build_stamps(root / "store.duckdb")
    assert len(set().union(*first.values())) == 1  # one build wrote every mart
    capsys.readouterr()
    assert main(args) == 0
    printed = capsys.readouterr().out
    extracts = len(list((REPO / "sample_data" / "extracts").iterdir()))  # one batch each
    assert f"batches already in the store: {extracts}" in printed
    # dbt's counts alone, without dbt's time of day (printed, and sealed in the audit as the build's summary)
    (marts,) = [line for line in printed.splitlines() if line.startswith("marts: ")]
    assert re.match(
        r"marts: PASS=\d+ WARN=0 ERROR=0 SKIP=0 NO-OP=\d+ TOTAL=\d+; mart expectations passed$", marts
    ), marts
    assert (
        main(["audit", "verify", "--store", str(root / "store.duckdb"), "--key-file", str(root / "ldm.key")])
        == 0
    )
    # The periods built are kept (same definitions, no new period); the person-level table is rebuilt.
    again = build_stamps(root / "store.duckdb")
    assert {mart: again[mart] for mart in SERIES_MARTS} == {mart: first[mart] for mart in SERIES_MARTS}
    assert again["mart_person_analysis"] != first["mart_person_analysis"]
    # --full-refresh computes every period again, in one new build.
    assert main([*args, "--full-refresh"]) == 0
    refreshed = build_stamps(root / "store.duckdb")
    assert len(set().union(*refreshed.values())) == 1
    assert refreshed["mart_prevalence"].isdisjoint(first["mart_prevalence"] | again["mart_person_analysis"])


def test_no_identifier_or_key_reaches_the_store_its_marts_the_run_log_or_dbt_files(first_run):
    root, _ = first_run
    identifiers = raw_identifiers(root / "extracts", dates_of_birth=False)
    secrets = key_material(root / "ldm.key")
    con = duckdb.connect(str(root / "store.duckdb"), read_only=True)
    try:
        columns = con.execute(
            """select table_schema, table_name, column_name from information_schema.columns
               where data_type = 'VARCHAR' and table_catalog = current_database()
                 and table_schema <> 'reference'"""  # public seeds (practices' own postcodes)
        ).fetchall()
        assert {schema for schema, _, _ in columns} >= {"main", "linkage", "governance", "marts"}
        for schema, table, column in columns:
            values = {
                v for (v,) in con.execute(f'select distinct "{column}" from {schema}.{table}').fetchall()
            }
            assert not values & (identifiers | secrets), (schema, table, column)
    finally:
        con.close()
    texts = [root / "run.log", *(p for p in (root / ".ldm-dbt").rglob("*") if p.is_file())]
    assert len(texts) > 3
    for path in texts:
        text = path.read_bytes().decode(errors="replace")
        assert not occurring((v for v in identifiers | secrets if len(v) >= 6), text), path


def test_a_run_on_a_terminal_shows_a_bar_per_long_stage_that_reaches_its_end(first_run):
    root, _ = first_run
    shown = (root / "run.log").read_text()
    size = tqdm.format_sizeof(sum(path.stat().st_size for path in (root / "extracts").glob("*.*")))
    assert f"validate and pseudonymise: 100%|##########| {size}/{size}" in shown, shown
    for stage in (r"load, link and apply opt-outs", r"build and test marts \(dbt\)"):
        done = re.findall(stage + r": 100%\|##########\| ([0-9.k]+)/([0-9.k]+)", shown)
        assert done and done[-1][0] == done[-1][1], stage


def test_a_failing_run_leaves_the_store_unchanged(first_run, tmp_path, capsys):
    root, _ = first_run
    store = tmp_path / "store.duckdb"
    shutil.copy(root / "store.duckdb", store)
    before = digest(store)
    broken = tmp_path / "extracts"
    broken.mkdir()
    (broken / "apc_spells_2025_04.csv").write_text("SPELL_ID;NHS_NUMBER\n1;9990000018\n")
    code = main(
        ["run", "--extracts", str(broken), "--store", str(store), "--key-file", str(root / "ldm.key")]
    )
    assert code == 2
    error = capsys.readouterr().err
    assert "apc_spells_2025_04.csv" in error and "store unchanged" in error and "Traceback" not in error
    assert digest(store) == before


def test_a_file_no_spec_recognises_stops_the_run_unless_ignored(first_run, tmp_path, capsys, monkeypatch):
    root, _ = first_run
    store = tmp_path / "store.duckdb"
    shutil.copy(root / "store.duckdb", store)
    shutil.copy(str(root / "store.duckdb") + ".audit-head", str(store) + ".audit-head")
    extracts = tmp_path / "extracts"
    shutil.copytree(root / "extracts", extracts, ignore=shutil.ignore_patterns("quarantine"))
    (extracts / "README.txt").write_text("what the provider sent, in words\n")
    args = ["run", "--extracts", str(extracts), "--store", str(store), "--key-file", str(root / "ldm.key"),
            "--today", "2025-04-01"]  # fmt: skip
    before = digest(store)
    assert main(args) == 2
    error = capsys.readouterr().err
    assert "README.txt" in error and "match no feed spec" in error and "store unchanged" in error
    assert digest(store) == before
    monkeypatch.setenv("LDM_IGNORE", "*.md, README*")
    assert main(args) == 0
    printed = capsys.readouterr().out
    listed = printed.split("files:\n")[1].split("rows in")[0].splitlines()
    assert [line.split()[0] for line in listed] == sorted(
        path.name for path in extracts.iterdir() if path.is_file()
    )
    assert "left alone" in listed[0] and all("already pseudonymised" in line for line in listed[1:])


def test_settings_come_from_file_then_environment_then_options(tmp_path, monkeypatch):
    config = tmp_path / "ldm.toml"
    config.write_text(
        'store = "/from/file.duckdb"\nmax_quarantined_share = 0.1\nreporting_period_end = 2024-03-31\n'
    )
    assert load_settings(config).store == Path("/from/file.duckdb")
    assert load_settings(config).reporting_period_end == datetime.date(2024, 3, 31)
    monkeypatch.setenv("LDM_STORE", "/from/env.duckdb")
    monkeypatch.setenv("LDM_MAX_QUARANTINED", "0.2")
    settings = load_settings(config)
    assert settings.store == Path("/from/env.duckdb") and settings.max_quarantined_share == 0.2
    assert load_settings(config, store=Path("/from/option.duckdb")).store == Path("/from/option.duckdb")
    config.write_text("stroe = 1\n")
    with pytest.raises(LdmError, match="unknown setting"):
        load_settings(config)
    monkeypatch.setenv("LDM_MAX_QUARANTINED", "7")
    with pytest.raises(LdmError, match="LDM_MAX_QUARANTINED"):
        load_settings(None)
    config.write_text('ignore = ["*.md", "README*"]\n')
    monkeypatch.delenv("LDM_MAX_QUARANTINED")
    assert load_settings(config).ignore == ("*.md", "README*")
    monkeypatch.setenv("LDM_IGNORE", "notes.txt, *.pdf")
    assert load_settings(config).ignore == ("notes.txt", "*.pdf")
    config.write_text("ignore = 3\n")
    monkeypatch.delenv("LDM_IGNORE")
    with pytest.raises(LdmError, match="list of file-name patterns"):
        load_settings(config)


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("2025-03-31", True),
        ("2024-02-29", True),
        ("2025-12-31", True),
        ("2025-03-15", False),
        ("2025-02-28x", False),
    ],
)
def test_the_reporting_period_ends_on_the_last_day_of_a_month(monkeypatch, value, valid):
    """Dates of death and registration ends are kept as months, so only a month's last day is a
    point in time at which the store knows who was alive and registered."""
    monkeypatch.setenv("LDM_REPORTING_PERIOD_END", value)
    if valid:
        assert load_settings(None).reporting_period_end == datetime.date.fromisoformat(value)
    else:
        with pytest.raises(LdmError, match="LDM_REPORTING_PERIOD_END"):
            load_settings(None)


def test_the_example_settings_file_is_valid():
    settings = load_settings(REPO / "ldm.example.toml")
    assert settings.max_quarantined_share == 0.05


def test_doctor_says_what_to_fix(first_run, tmp_path, capsys, monkeypatch):
    root, _ = first_run
    monkeypatch.delenv("LDM_KEY_FILE", raising=False)
    assert main(["doctor", "--store", str(root / "store.duckdb"), "--key-file", str(root / "ldm.key")]) == 0
    assert "all good" in capsys.readouterr().out
    assert (
        main(["doctor", "--store", str(tmp_path / "none.duckdb"), "--key-file", str(tmp_path / "none.key")])
        == 1
    )
    printed = capsys.readouterr().out
    assert "FIX" in printed and "ldm db upgrade" in printed and "does not exist" in printed
    init_key(tmp_path / "other.key")
    assert (
        main(["doctor", "--store", str(root / "store.duckdb"), "--key-file", str(tmp_path / "other.key")])
        == 1
    )
    assert "use the store's own key file" in capsys.readouterr().out
    bad_specs = tmp_path / "specs"
    bad_specs.mkdir()
    (bad_specs / "gp.yaml").write_text("feed: gp_event\nspec_version: 1\nfile_pattern: gp*\ncolumns: {}\n")
    monkeypatch.setenv("LDM_SPECS", str(bad_specs))
    assert main(["doctor", "--store", str(root / "store.duckdb"), "--key-file", str(root / "ldm.key")]) == 1
    assert "feed 'gp_event' is not one ldm loads (did you mean 'gp_events'?)" in capsys.readouterr().out


def test_the_bench_floors_read_every_extract_into_memory_and_into_a_file(tmp_path: Path) -> None:
    """Both floors `ldm bench` prints read the same rows: every data row of every extract."""
    from ldm.benchmark import duckdb_floor

    extracts = REPO / "sample_data" / "extracts"
    in_memory, rows = duckdb_floor(extracts)
    in_file, rows_in_file = duckdb_floor(extracts, tmp_path / "floor.duckdb")
    lines = sum(
        max(0, len(path.read_bytes().splitlines()) - 1)
        for path in extracts.iterdir()
        if path.suffix in (".csv", ".txt")
    )
    assert rows == rows_in_file == lines
    assert in_memory > 0 and in_file > 0
    assert (tmp_path / "floor.duckdb").stat().st_size > 0
