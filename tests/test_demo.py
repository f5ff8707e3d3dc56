"""The README's main command, as a user runs it."""

from __future__ import annotations

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
