"""The README's main command, as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import DEMO_PRINTED, REPO

from ldm.cli import main
from ldm.pseudonymise.keys import load_key


def test_demo_runs_on_the_committed_sample(sample_marts_store):
    """`ldm demo` as the shared build ran it (conftest's sample_marts_store: the same command, run once
    for the whole test run): what it printed and what it left."""
    demo = sample_marts_store.parent
    printed = (demo.parent / DEMO_PRINTED).read_text()
    key = load_key(demo.parent / "demo.key")
    assert "byte for byte" in printed and key.key_id in printed
    extracts = list((REPO / "sample_data" / "extracts").iterdir())
    assert len(list((demo / "pseudonymised").rglob("*.parquet"))) == len(extracts)  # one each
    reports = list((demo / "pseudonymised" / "reports").glob("validation-*.md"))
    assert reports and reports[0].read_text().startswith("# Validation report")
    assert "chain intact" in printed and "PASS=" in printed


def test_the_console_script_prints_through_a_pipe_and_exits_with_the_commands_status(
    sample_marts_store, tmp_path
):
    """The installed `ldm` script (ldm.cli.entry, which flushes its output and then ends the process
    itself): a command's stdout reaches a pipe whole, and the exit status is the command's."""
    ldm = Path(sys.executable).with_name("ldm")
    key_file = sample_marts_store.parent.parent / "demo.key"
    verify = [ldm, "audit", "verify", "--key-file", key_file, "--store"]
    done = subprocess.run([*verify, sample_marts_store], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("audit intact: ") and done.stdout.endswith("\n"), done.stdout
    refused = subprocess.run(
        [*verify, tmp_path / "missing.duckdb"], capture_output=True, text=True, timeout=300
    )
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.startswith("ldm audit: error: no store at ") and refused.stderr.count("\n") == 1


def test_a_command_that_runs_no_suite_does_not_import_great_expectations():
    """GX takes seconds to import: `ldm audit verify`, `ldm --help` and the like do not pay for it;
    the suites import it when they first run (ldm.validate.suites.to_gx_expectations)."""
    code = "import json, sys; from ldm.cli import build_parser; build_parser(); print(json.dumps(list(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    imported = json.loads(done.stdout)
    assert "ldm.validate.suites" in imported and "great_expectations" not in imported


def test_every_command_has_help(capsys):
    for command in (
        "sample",
        "bench-sample",
        "keys",
        "pseudonymise",
        "expectations",
        "bench-pseudonymise",
        "demo",
    ):
        try:
            main([command, "--help"])
        except SystemExit as stop:
            assert stop.code == 0
        assert "usage: ldm" in capsys.readouterr().out
