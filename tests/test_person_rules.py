"""ldm.person_rules: the latest stated ethnic category, on tiny hand-made registrations."""

from __future__ import annotations

import datetime

import duckdb
import pytest

from ldm import person_rules

D = datetime.date


@pytest.mark.parametrize(
    ("registrations", "expected"),
    [
        ([("A", D(2020, 1, 1))], "A"),
        ([("A", D(2020, 1, 1)), ("Z", D(2023, 1, 1))], "A"),  # a later "not stated" never overwrites
        ([("A", D(2020, 1, 1)), ("M", D(2023, 1, 1))], "M"),  # a later stated category does
        ([("A", D(2020, 1, 1)), (None, D(2023, 1, 1))], "A"),
        ([("Z", D(2020, 1, 1)), (None, D(2023, 1, 1))], "Z"),  # "Z" only when nothing is stated
        ([(None, D(2020, 1, 1))], None),
        ([("A", D(2020, 1, 1)), ("B", None)], "B"),  # no start date counts as the latest
    ],
)
def test_ethnic_category(registrations, expected) -> None:
    con = duckdb.connect()
    con.execute(
        "create table registrations (person_id int, batch_id int, row_number int, "
        "registration_start date, ethnic_category varchar)"
    )
    for row, (category, start) in enumerate(registrations, 1):
        con.execute("insert into registrations values (1, 1, ?, ?, ?)", [row, start, category])
    assert con.execute(f"select {person_rules.ethnic_category()} from registrations").fetchall() == [
        (expected,)
    ]
