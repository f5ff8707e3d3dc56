"""Load and check the disclosure-control rules (governance/sdc_rules.yaml).

The rules declare, per mart, which columns are counts and which derive from which counts, so that
nothing is classified by guessing from column names; a malformed file stops the export.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ldm.errors import LdmError

DEFAULT_RULES = Path(__file__).resolve().parents[2] / "governance" / "sdc_rules.yaml"


@dataclass(frozen=True)
class Derived:
    """A value computed from counts: of its own row, or with `across`, of every row of a partition.

    The store's value is computed from exact counts, so publishing it would give back the counts
    that rounding hides. It is therefore either `recompute`d from the published (rounded) counts
    by an SQL expression, which can say nothing the rounded counts do not, or `withhold`n: never
    published. The third way, `publish`, is an IG decision recorded in the rules for a value that
    cannot be recomputed from published counts and that ONS and Fingertips publish anyway (life
    expectancy): the store's value, rounded to `decimals`, only on rows where the SQL condition
    `publish` holds on the published (rounded) counts; elsewhere it is suppressed. Exactly one of
    the three is required.
    """

    column: str
    sources: tuple[str, ...]
    decimals: int | None
    across_by: tuple[str, ...] = ()
    across_where: str = "true"
    recompute: str | None = None  # SQL over the published counts (and derived columns declared before)
    withhold: bool = False
    publish: str | None = None  # SQL condition over the published counts: where the store's value is shown


@dataclass(frozen=True)
class Complement:
    name: str
    part: str
    total: str
    where: str


@dataclass(frozen=True)
class Cell:
    column: str
    where: str
    priority: int


@dataclass(frozen=True)
class Group:
    """Cells that add up to a published total; `per_column` makes one group per cell column."""

    name: str
    by: tuple[str, ...]
    cells: tuple[Cell, ...]
    per_column: bool


@dataclass(frozen=True)
class Inherit:
    """Cells this mart republishes from another mart keep that mart's suppression (and may add to it)."""

    mart: str
    where: str
    match: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class MartRules:
    name: str
    optional: bool
    order_by: tuple[str, ...] = ()
    dimensions: tuple[str, ...] = ()
    counts: tuple[str, ...] = ()
    derived: tuple[Derived, ...] = ()
    complements: tuple[Complement, ...] = ()
    groups: tuple[Group, ...] = ()
    inherit: tuple[Inherit, ...] = ()
    # SQL expressions over the row (aliased t): the rows whose `publish`ed values are shown or
    # suppressed together when the store has no value on a row that passes the condition.
    publish_together: tuple[str, ...] = ()

    @property
    def declared(self) -> bool:
        return bool(self.counts or self.dimensions)

    @property
    def columns(self) -> set[str]:
        return {*self.dimensions, *self.counts, *(d.column for d in self.derived)}


@dataclass(frozen=True)
class Rules:
    path: Path
    sha256: str
    version: int
    suppress_min: int
    suppress_max: int
    round_to: int
    flag_suffix: str
    schema: str
    person_level: frozenset[str]
    marts: dict[str, MartRules] = field(default_factory=dict)


def load_rules(path: Path | None = None) -> Rules:
    """Parse and check the rules file; LdmError naming the fault when it is missing or malformed."""
    path = Path(path or DEFAULT_RULES).expanduser().absolute()
    if not path.is_file():
        raise LdmError(f"no disclosure-control rules at {path}; give --rules FILE")
    raw = path.read_bytes()
    try:
        data = yaml.safe_load(raw)
        return _parse(path, hashlib.sha256(raw).hexdigest(), data)
    except (yaml.YAMLError, KeyError, TypeError, ValueError, AttributeError) as error:
        detail = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise LdmError(f"{path} is not a valid rules file: {detail}") from None


def _parse(path: Path, sha256: str, data: dict[str, Any]) -> Rules:
    counts = data["counts"]
    rules = Rules(
        path=path,
        sha256=sha256,
        version=int(data["version"]),
        suppress_min=int(counts["suppress_min"]),
        suppress_max=int(counts["suppress_max"]),
        round_to=int(counts["round_to"]),
        flag_suffix=str(data["flag_suffix"]),
        schema=str(data["schema"]),
        person_level=frozenset(data.get("person_level") or ()),
        marts={name: _mart(name, spec or {}) for name, spec in data["marts"].items()},
    )
    if not 0 <= rules.suppress_min <= rules.suppress_max or rules.round_to < 1:
        raise ValueError("counts need 0 <= suppress_min <= suppress_max and round_to >= 1")
    for mart in rules.marts.values():
        if bad := [i.mart for i in mart.inherit if i.mart not in rules.marts or i.mart == mart.name]:
            raise ValueError(f"{mart.name} inherits from marts without rules: {', '.join(bad)}")
    if clash := rules.person_level & rules.marts.keys():
        raise ValueError(f"person-level tables cannot have export rules: {', '.join(sorted(clash))}")
    return rules


def _in_dependency_order(derived: list[Derived]) -> tuple[Derived, ...]:
    """Derived columns ordered so that each comes after those its expression uses (YAML keeps no order
    a rules author can rely on); a cycle is an error."""
    names = {d.column for d in derived}
    uses = {
        d.column: {n for n in names if n != d.column and re.search(rf"\b{re.escape(n)}\b", d.recompute or "")}
        for d in derived
    }
    ordered: list[Derived] = []
    while len(ordered) < len(derived):
        done = {d.column for d in ordered}
        ready = [d for d in derived if d.column not in done and uses[d.column] <= done]
        if not ready:
            raise ValueError(f"derived columns use each other in a cycle: {sorted(names - done)}")
        ordered += ready
    return tuple(ordered)


def _mart(name: str, spec: dict[str, Any]) -> MartRules:
    derived = _in_dependency_order([_derived(column, d) for column, d in (spec.get("derived") or {}).items()])
    mart = MartRules(
        name=name,
        optional=bool(spec.get("optional", False)),
        order_by=tuple(spec.get("order_by") or ()),
        dimensions=tuple(spec.get("dimensions") or ()),
        counts=tuple(spec.get("counts") or ()),
        derived=derived,
        complements=tuple(
            Complement(c["name"], c["part"], c["total"], c.get("where", "true"))
            for c in spec.get("complements") or ()
        ),
        groups=tuple(_group(g) for g in spec.get("groups") or ()),
        inherit=tuple(
            Inherit(i["from"], i.get("where", "true"), tuple((str(k), str(v)) for k, v in i["match"].items()))
            for i in spec.get("inherit") or ()
        ),
        publish_together=tuple(str(key) for key in spec.get("publish_together") or ()),
    )
    if any(d.publish for d in derived) and not mart.publish_together:
        raise ValueError(
            f"mart {name}: `publish`ed values need `publish_together` (the rows suppressed together when "
            "the store has no value where the counts pass): a lone missing value would tell why"
        )
    _check(mart)
    return mart


def _derived(column: str, spec: dict[str, Any]) -> Derived:
    across = spec.get("across") or {}
    recompute, withhold, publish = (
        spec.get("recompute"),
        bool(spec.get("withhold", False)),
        spec.get("publish"),
    )
    if (recompute is not None) + withhold + (publish is not None) != 1:
        raise ValueError(
            f"derived column {column} needs exactly one of `recompute` (an expression over the published "
            "counts), `withhold: true`, or `publish` (a condition on the published counts, with `decimals`): "
            "a value computed from exact counts gives them back"
        )
    if publish is not None and (not str(publish).strip() or spec.get("decimals") is None):
        raise ValueError(f"derived column {column}: `publish` needs a condition and `decimals` to round to")
    return Derived(
        column,
        tuple(spec["from"]),
        spec.get("decimals"),
        tuple(across.get("by") or ()),
        across.get("where", "true"),
        None if recompute is None else str(recompute),
        withhold,
        None if publish is None else str(publish),
    )


def _group(spec: dict[str, Any]) -> Group:
    if "cells" in spec:
        cells = tuple(
            Cell(c["column"], c.get("where", "true"), int(c.get("priority", 0))) for c in spec["cells"]
        )
        return Group(spec["name"], tuple(spec["by"]), cells, per_column=False)
    where = spec.get("where", "true")
    cells = tuple(Cell(column, where, 0) for column in spec["columns"])
    return Group(spec["name"], tuple(spec["by"]), cells, per_column=True)


def _check(mart: MartRules) -> None:
    """Refuse rules that refer to undeclared counts or declare a column twice."""
    names = [*mart.dimensions, *mart.counts, *(d.column for d in mart.derived)]
    if twice := {n for n in names if names.count(n) > 1}:
        raise ValueError(f"{mart.name}: columns declared twice: {', '.join(sorted(twice))}")
    counts = set(mart.counts)
    used = {s for d in mart.derived for s in d.sources}
    used |= {c.part for c in mart.complements} | {c.total for c in mart.complements}
    used |= {cell.column for g in mart.groups for cell in g.cells}
    if unknown := used - counts:
        raise ValueError(
            f"{mart.name}: rules refer to columns that are not declared counts: {sorted(unknown)}"
        )
    if missing := set(mart.order_by) - set(mart.dimensions):
        raise ValueError(f"{mart.name}: order_by names columns that are not dimensions: {sorted(missing)}")
