"""Progress: bars on a terminal, plain lines in logs."""

from __future__ import annotations

import io

from ldm.progress import Progress


def test_a_log_gets_timestamped_lines_and_no_bar():
    stream = io.StringIO()
    progress = Progress(stream)  # a StringIO is not a terminal
    with progress.step("load", total=3, unit="batch"):
        progress("gp_events: gp_events.txt")
        progress.advance()
    lines = stream.getvalue().splitlines()
    assert lines[0].endswith(" load ...") and lines[1].endswith(" gp_events: gp_events.txt")
    assert lines[2].split(" ", 3)[-1].startswith("load: done in ")
    assert "\r" not in stream.getvalue()


def test_a_terminal_gets_a_bar_that_counts_to_the_total():
    stream = io.StringIO()
    progress = Progress(stream, bars=True)
    with progress.step("validate and pseudonymise", total=2048, unit="B"):
        progress.advance(1024)
        progress("half way")
        progress.advance(1024)
    shown = stream.getvalue()
    assert "validate and pseudonymise:  50%" in shown and "100%|##########| 2.05k/2.05k" in shown
    assert "half way" in shown and "done in" in shown
