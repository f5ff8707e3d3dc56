"""What the analyst-facing tables may not hold: a date that gives back a date of birth.

Every analyst can read `main.*` and the marts, where a person's year and month of birth are kept
(ages at the period end need them) but the day is not. A date recorded in the person's month of birth
would hand the day back, or narrow it down: a newborn's GP registration starts on the day of birth
(on a 2,000-person sample, 198 of 202 registrations in a birth month started on the exact date of
birth), a birth spell is admitted on it, and a first check or referral bounds it.

So the dates and times of a row that fall in the month of birth (as recorded on the row, or of the
person it is linked to) move back, all by the same number of days, so that the earliest of them falls
on the first of that month: they say no more than the month of birth already does, and intervals
between them (a newborn's stay, an A&E visit) are kept. Dates after the birth month do not move: a
moved date years later (a registration's end) would show, against the next registration's exact
start, by how many days it moved, which is the day of birth. The cost: an interval that crosses the
end of the birth month grows by up to 30 days (a stay admitted on the 29th and discharged on the 1st
shows from the 1st to the 1st), and such a short stay still bounds the day of birth to the last days
of its month. Every date stays in its own month, so counts by period do not change.

Dates of death, and the end of a registration (which for a death is its date), are kept as months,
the first day of the month, in every analyst table, and never moved: a death is public (a notice, a
funeral), and at city scale an exact date of death with the MSOA singles out 86% of the deceased,
the month with the MSOA 2.4% (850,000 generated persons). Mortality needs only the month: deaths by
period, and age at death from the month of birth; a registered list needs only the month when
periods end on a month's last day.

The loader applies the rules to every row it writes and migration 0006 to the rows stored before it;
both build their SQL here.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

import models
from ldm.dialects import current as dialect
from models.columns import MONTH_ONLY


def in_birth_month(column: str, births: Sequence[tuple[str, str]]) -> str:
    """Whether a date or time falls in one of `births`, (year, month) expression pairs such as the
    record's own (`year_of_birth`, `month_of_birth`) and its linked person's. A NULL or impossible
    pair matches nothing, so the rule never fails on a row that validation let through."""
    if not births:
        raise ValueError("a birth-month rule needs at least one (year, month) pair")
    return " or ".join(f"(year({column}) = {year} and month({column}) = {month})" for year, month in births)


def shift_days(columns: Sequence[str], births: Sequence[tuple[str, str]]) -> str:
    """Days a row moves back: from the first of the birth month to its earliest date in it, or 0.
    (`least` skips NULLs, so the dates outside the birth month do not count.)"""
    days = ", ".join(f"case when {in_birth_month(c, births)} then day({c}) - 1 end" for c in columns)
    return f"cast(coalesce(least({days}), 0) as integer)"


def shifted(columns: dict[str, bool], births: Sequence[tuple[str, str]], row: str) -> dict[str, str]:
    """Each of a row's date and time `columns` (name: True for a timestamp), read from alias `row`,
    moved back by the row's shift when it falls in a birth month, else as it is: SQL by column name."""
    shift = shift_days([f"{row}.{name}" for name in columns], births)
    moved = {}
    for name, timestamp in columns.items():
        value = f"{row}.{name}"
        back = dialect().days_before(value, shift, timestamp)
        moved[name] = f"case when {in_birth_month(value, births)} then {back} else {value} end"
    return moved


def minimised(
    table: str, row: str, births: Sequence[tuple[str, str]], present: Sequence[str]
) -> dict[str, str]:
    """The SQL that stores each date and time column of `table` among `present` (read from alias
    `row`): month-only columns as the first of their month, the others shifted out of the birth month."""
    month_only = set(month_only_columns(table))
    dated = {n: ts for n, ts in dated_columns(table).items() if n in present and n not in month_only}
    out = shifted(dated, births, row) if dated and births else {}
    return out | {n: month_start(f"{row}.{n}") for n in month_only if n in present}


def dated_columns(table: str) -> dict[str, bool]:
    """The date and time columns of an analyst table (`main.<table>`), from the models, in table
    order: name, and whether it is a timestamp."""
    return {
        column.name: isinstance(column.type, sa.DateTime)
        for column in models.metadata.tables[table].columns
        if isinstance(column.type, sa.Date | sa.DateTime)
    }


def month_only_columns(table: str) -> list[str]:
    """The DATE columns of an analyst table whose month only is stored (models: `month_only`)."""
    return [column.name for column in models.metadata.tables[table].columns if column.info.get(MONTH_ONLY)]


def month_start(expression: str) -> str:
    """The first day of the month of a DATE expression."""
    return f"cast(date_trunc('month', {expression}) as date)"


def has_recorded_birth(table: str) -> bool:
    """Whether the table's rows carry the record's own year and month of birth."""
    names = set(models.metadata.tables[table].columns.keys())
    return {"year_of_birth", "month_of_birth"} <= names


def birth_pairs(table: str, row: str, person: tuple[str, str] | None) -> list[tuple[str, str]]:
    """The (year, month) of birth a row of `table` (alias `row`) is checked against: its own, when
    the table records one, and its linked person's (`person`: year and month expressions), if given."""
    pairs = [(f"{row}.year_of_birth", f"{row}.month_of_birth")] if has_recorded_birth(table) else []
    return pairs + ([person] if person else [])
