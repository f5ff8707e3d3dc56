"""The leak scans' helper (tests/identifier_scan.py) finds exactly what a search per value finds."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from identifier_scan import occurring

ALPHABET = "AB1 -"  # few characters, so that values overlap, nest and share prefixes often


@given(
    values=st.sets(st.text(ALPHABET, min_size=0, max_size=5), max_size=12),
    text=st.text(ALPHABET + "xy\n", max_size=40),
)
def test_finds_what_a_search_per_value_finds(values, text):
    assert occurring(values, text) == sorted(v for v in values if v and v in text)


def test_regex_characters_are_plain_characters():
    values = {"A.B", "(X)", "9990000018", "LS1 4AB"}
    assert occurring(values, "AxB (X) LS14AB") == ["(X)"]
    assert occurring(values, "postcode LS1 4AB, NHS 9990000018") == ["9990000018", "LS1 4AB"]
    assert occurring(set(), "anything") == []
