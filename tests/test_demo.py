"""The README's main command, as a user runs it."""

from __future__ import annotations

from conftest import REPO

from ldm.cli import main
from ldm.pseudonymise.keys import init_key


def test_demo_runs_on_the_committed_sample(tmp_path, monkeypatch, capsys):
    key = init_key(tmp_path / "demo.key")
    monkeypatch.setenv("LDM_KEY_FILE", str(tmp_path / "demo.key"))
    assert main(["demo", "--out", str(tmp_path / "demo")]) == 0
    printed = capsys.readouterr().out
    assert "byte for byte" in printed and key.key_id in printed
    extracts = list((REPO / "sample_data" / "extracts").iterdir())
    assert len(list((tmp_path / "demo" / "pseudonymised").rglob("*.parquet"))) == len(extracts)  # one each
    reports = list((tmp_path / "demo" / "pseudonymised" / "reports").glob("validation-*.md"))
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
