"""k-anonymity: the smallest group of persons who share every quasi-identifier value in a table.

A project that knows someone's year of birth, sex, area and ethnic group finds them in a release
when no one else shares those values: the smallest such group (k) is what the release must keep at
or above its threshold (10 by default, as in NHS England's and SAIL's guidance for record-level
releases). Persons are counted, not rows, so ten admissions of one person are a group of one.
A missing value is a value like any other: "unknown sex" is as telling as "F".

The rule itself is small and pure (`smallest_group_sql`, `smallest`, `passes`, `refusal`); only
`smallest_group` runs SQL. A refusal names the smallest group's attribute values and its size, so
that IG can see which quasi-identifier to coarsen; it never names a member.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import duckdb

from ldm.dialects import current as dialect
from ldm.sql import quoted


@dataclass(frozen=True)
class Group:
    """A group of `size` persons sharing the `attributes` values in `table`."""

    size: int
    table: str
    attributes: tuple[tuple[str, str | None], ...]

    def describe(self) -> str:
        return ", ".join(f"{name}={'unknown' if value is None else value}" for name, value in self.attributes)

    def record(self) -> dict[str, Any]:
        return {"table": self.table, "size": self.size, "attributes": dict(self.attributes)}


def smallest_group_sql(relation: str, attributes: Sequence[str], person: str) -> str:
    """SQL for the smallest group: its size, then each attribute's value as text (NULL when missing)."""
    values = ", ".join(f"{dialect().as_text(quoted(a))} as {quoted(a)}" for a in attributes)
    order = ", ".join(f"{quoted(a)} nulls last" for a in attributes)
    return (
        f"select count(distinct {quoted(person)}) as group_size, {values} from {relation} "
        f"group by all order by group_size, {order} limit 1"
    )


def smallest_group(
    con: duckdb.DuckDBPyConnection, relation: str, attributes: Sequence[str], person: str, table: str
) -> Group | None:
    """The smallest group of `relation` over `attributes`; None when there are none or no rows."""
    if not attributes:
        return None
    rows = con.execute(smallest_group_sql(relation, attributes, person)).fetchall()
    if not rows:
        return None
    size, *values = rows[0]
    return Group(size, table, tuple(zip(attributes, values, strict=True)))


def smallest(groups: Iterable[Group | None]) -> Group | None:
    """The smallest of several tables' smallest groups (the first listed among equals)."""
    found = [group for group in groups if group is not None]
    return min(found, key=lambda group: group.size) if found else None


def passes(group: Group | None, threshold: int) -> bool:
    """Whether a release whose smallest group is `group` may be written (no quasi-identifier: it may)."""
    return group is None or group.size >= threshold


def refusal(group: Group, threshold: int, steps_applied: int) -> str:
    """Why the release is refused, naming the smallest group's attributes and size, never its members."""
    after = f" after all {steps_applied} generalisation step(s) the spec allows" if steps_applied else ""
    persons = "person" if group.size == 1 else "persons"
    return (
        f"k = {group.size} is below the threshold of {threshold}{after}: the smallest group, in {group.table}, "
        f"is {group.size} {persons} with {group.describe()}; coarsen or drop one of these quasi-identifiers "
        "in the spec (generalise: band, group, coarsen, replace or drop)"
    )
