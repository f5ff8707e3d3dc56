"""What each released column becomes: its SQL over the working table, and a note for the recipient.

Identifiers are pseudonyms; dates are coarsened (to the month unless the spec says otherwise, so
an exact date is released only when the spec asks for it in so many words); a generalisation step
replaces a quasi-identifier by a band, a group, a coarser date or a coarser column, or drops it.
The same text that is checked for k is the text written, so the check is of what is released.
"""

from __future__ import annotations

from dataclasses import dataclass

from ldm.dialects import current as dialect
from ldm.release.spec import (
    COARSENINGS,
    DEFAULT_COARSENING,
    KNOWN_QUASI_IDENTIFIERS,
    PERSON,
    RECORD,
    Column,
    Operation,
    TableSpec,
)
from ldm.sql import literal, quoted

# NHS ethnic category codes (A-S, Z) to the five ONS high-level groups and "not stated".
ETHNIC_GROUPS = {
    "White": "ABC",
    "Mixed": "DEFG",
    "Asian": "HJKL",
    "Black": "MNP",
    "Other": "RS",
    "Not stated": "Z",
}
COARSENING_NOTES = {
    "exact": "exact, as held",
    "day": "date (time of day removed)",
    "week": "week (its Monday)",
    "month": "month (its first day)",
    "quarter": "quarter (its first day)",
    "year": "year (1 January)",
}


@dataclass(frozen=True)
class Released:
    name: str
    expression: str
    note: str
    quasi: bool


def coarsened(column: str, how: str) -> str:
    name = quoted(column)
    if how == "exact":
        return name
    if how == "day":
        return f"cast({name} as date)"
    return f"cast(date_trunc({literal(how)}, {name}) as date)"


def banded(column: str, op: Operation) -> str:
    """Bands of `op.width` whole numbers, counted from `below` when it pools the values under it (so
    no band straddles it), and cut short at `above` when it pools the values from it up."""
    name, width = quoted(column), int(op.width)
    origin = int(op.below) if op.below is not None else 0
    start = f"({origin} + ({dialect().integer_divide(f'({name} - {origin})', str(width))}) * {width})"
    end = (
        f"{start} + {width - 1}" if op.above is None else f"least({start} + {width - 1}, {int(op.above) - 1})"
    )
    cases = [f"when {name} is null then null"]
    if op.below is not None:
        cases.append(f"when {name} < {int(op.below)} then {literal(f'before {op.below}')}")
    if op.above is not None:
        cases.append(f"when {name} >= {int(op.above)} then {literal(f'{op.above} or later')}")
    as_text = dialect().as_text
    return f"case {' '.join(cases)} else {as_text(start)} || '-' || {as_text(end)} end"


def grouped(column: str) -> str:
    name = quoted(column)
    cases = " ".join(
        f"when {name} in ({', '.join(literal(code) for code in codes)}) then {literal(group)}"
        for group, codes in ETHNIC_GROUPS.items()
    )
    return f"case when {name} is null then null {cases} else 'Other' end"


def released(
    table: TableSpec,
    columns: dict[str, Column],
    ops: dict[str, Operation],
    quasi_identifiers: tuple[str, ...],
) -> list[Released]:
    """The table's released columns, in the spec's order with person_id first, under `ops`."""
    quasi = KNOWN_QUASI_IDENTIFIERS | set(quasi_identifiers)
    out = [Released(PERSON, quoted(PERSON), "pseudonym of the person under the project's key", False)]
    for name in table.columns:
        if name == RECORD:
            note = "pseudonym of the record under the project's key"
            if table.name in ("spell_diagnoses", "spell_procedures"):
                note = "pseudonym of the spell (apc_spells.record_id) under the project's key"
            out.append(Released(RECORD, quoted(RECORD), note, False))
            continue
        op = ops.get(name)
        if op is not None and op.kind == "drop":
            continue
        if op is not None and op.kind == "replace":
            target = op.name
            if target in table.columns or any(r.name == target for r in out):
                continue  # already released in its own right
            if (ops.get(target) or op).kind in ("drop", "replace"):
                continue  # the replacement itself dropped by a later step (replacements do not chain)
            expression, note = _plain(table, columns, target, ops.get(target))
            out.append(
                Released(target, expression, f"{note}; in place of {name}", name in quasi or target in quasi)
            )
            continue
        expression, note = _plain(table, columns, name, op)
        out.append(Released(name, expression, note, name in quasi))
    return out


def _plain(table: TableSpec, columns: dict[str, Column], name: str, op: Operation | None) -> tuple[str, str]:
    """A column's expression and note under an operation other than replace or drop."""
    column = columns[name]
    if column.is_date:
        how = table.coarsen.get(name, DEFAULT_COARSENING)
        if op is not None and op.kind == "coarsen":
            how = max(how, op.name, key=COARSENINGS.index)  # a step never makes a date finer
        return coarsened(name, how), COARSENING_NOTES[how]
    if op is not None and op.kind == "band":
        return banded(name, op), op.describe()
    if op is not None and op.kind == "group":
        return grouped(name), "ONS high-level ethnic group (White, Mixed, Asian, Black, Other, Not stated)"
    return quoted(name), "as held"
