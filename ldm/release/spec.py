"""The release spec (YAML): which persons, which tables and columns, how dates and quasi-identifiers
are coarsened, and the smallest group size the release must reach.

The spec is what IG approves for one release, so it is data an IG lead can read, recorded whole in
governance.releases; this module parses it and checks it against the store before anything is
recorded, so that a typo stops the release with one line instead of releasing the wrong thing.
Identifiers are not the spec's to choose: `person_id` is always the project's pseudonym, record
keys (`batch_id`, `row_number`) and record digests are never released, and `record_id` is released
only as the project's pseudonym of the record.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import yaml

from ldm.errors import LdmError
from ldm.pseudonymise.keys import release_purpose

DEFAULT_K = 10
SCHEMAS = ("main", "marts")  # analyst-facing schemas; linkage and governance are never released
PERSON = "person_id"
RECORD = "record_id"
# Record-level keys and digests: joinable across any two extracts of the same store, so never released.
NEVER_RELEASED = frozenset({"batch_id", "row_number", "record_digest", "first_batch_id", "last_batch_id"})
# Tables whose rows belong to a spell of main.apc_spells (keyed by its batch_id and row_number).
SPELL_CHILDREN = frozenset({"spell_diagnoses", "spell_procedures"})
SPELLS = "apc_spells"
# Columns that single people out in combination: always checked when released, whatever the spec says.
KNOWN_QUASI_IDENTIFIERS = frozenset(
    {
        "year_of_birth",
        "month_of_birth",
        "age",
        "age_band",
        "age_at_event",
        "sex",
        "ethnic_category",
        "lsoa21_code",
        "lsoa11_code",
        "msoa11_code",
        "ward_code",
        "ward_name",
        "practice_code",
        "pcn_code",
        "imd_decile",
        "imd_quintile",
        "date_of_death",
    }
)
COARSENINGS = ("exact", "day", "week", "month", "quarter", "year")
DEFAULT_COARSENING = "month"
GROUPINGS = ("ethnic",)
DATE_TYPES = ("DATE", "TIMESTAMP", "TIMESTAMP WITH TIME ZONE", "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS")
INTEGER_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT")


@dataclass(frozen=True)
class Operation:
    """One generalisation of a column: a band of integers, a grouping of codes, a coarser date, the
    column replaced by a coarser one of the same table, or the column dropped."""

    kind: str  # band | group | coarsen | replace | drop
    width: int = 0
    below: int | None = None
    above: int | None = None
    name: str = ""  # the grouping, the coarsening or the replacing column

    def record(self) -> dict[str, Any]:
        if self.kind == "band":
            band = {"band": self.width}
            return band | {k: v for k, v in (("below", self.below), ("above", self.above)) if v is not None}
        return {self.kind: True if self.kind == "drop" else self.name}

    def describe(self) -> str:
        if self.kind == "band":
            ends = "".join(
                f", {word} {value} pooled"
                for word, value in (("below", self.below), ("from", self.above))
                if value
            )
            return f"{self.width}-year bands{ends}"
        return {
            "group": f"grouped ({self.name})",
            "coarsen": f"coarsened to {self.name}",
            "replace": f"replaced by {self.name}",
            "drop": "dropped",
        }[self.kind]


@dataclass(frozen=True)
class TableSpec:
    name: str  # the released table's name, e.g. apc_spells
    schema: str
    columns: tuple[str, ...]  # as listed, person_id aside (it is always released, first)
    where: str
    coarsen: dict[str, str] = field(default_factory=dict)

    @property
    def source(self) -> str:
        return f"{self.schema}.{self.name}"

    def record(self) -> dict[str, Any]:
        return {
            "from": self.source,
            "columns": list(self.columns),
            "where": self.where,
            "coarsen": self.coarsen,
        }


@dataclass(frozen=True)
class ReleaseSpec:
    path: Path
    sha256: str
    project: str
    title: str
    cohort_schema: str
    cohort_table: str
    cohort_where: str
    k_threshold: int
    quasi_identifiers: tuple[str, ...]
    steps: tuple[dict[str, Operation], ...]
    tables: dict[str, TableSpec]

    def record(self) -> dict[str, Any]:
        """The spec as recorded in governance.releases and the manifest (canonical, no file paths)."""
        return {
            "project": self.project,
            "title": self.title,
            "cohort": {"from": f"{self.cohort_schema}.{self.cohort_table}", "where": self.cohort_where},
            "k_threshold": self.k_threshold,
            "quasi_identifiers": list(self.quasi_identifiers),
            "generalise": [{c: op.record() for c, op in step.items()} for step in self.steps],
            "tables": {name: table.record() for name, table in self.tables.items()},
        }


def load_spec(path: Path) -> ReleaseSpec:
    """Parse and check a release spec file; LdmError naming the fault when it is missing or malformed."""
    path = Path(path).expanduser().absolute()
    if not path.is_file():
        raise LdmError(f"no release spec at {path}")
    raw = path.read_bytes()
    try:
        data = yaml.safe_load(raw)
        if not isinstance(data, dict):
            raise ValueError("expected a mapping with project, cohort and tables")
        return _parse(path, hashlib.sha256(raw).hexdigest(), data)
    except LdmError as error:
        raise LdmError(f"{path} is not a valid release spec: {error}") from None
    except (yaml.YAMLError, KeyError, TypeError, ValueError, AttributeError) as error:
        detail = str(error).splitlines()[0] if str(error) else type(error).__name__
        if isinstance(error, KeyError):
            detail = f"missing {detail}"
        raise LdmError(f"{path} is not a valid release spec: {detail}") from None


def _table_name(text: str) -> tuple[str, str]:
    schema, _, name = str(text).rpartition(".")
    schema = schema or "main"
    if schema not in SCHEMAS or not name:
        raise ValueError(
            f"table {text!r}: only analyst tables (main.*) and marts (marts.*) are released, never linkage "
            "or governance tables"
        )
    return schema, name


def _predicate(text: Any, where: str) -> str:
    predicate = "true" if text is None else str(text).strip()
    try:
        statements = len(duckdb.extract_statements(f"select 1 where ({predicate})")) if predicate else 0
    except duckdb.Error:
        statements = 0
    if statements != 1:
        raise ValueError(f"{where}: 'where' must be one SQL condition")
    return predicate


def _parse(path: Path, sha256: str, data: dict[str, Any]) -> ReleaseSpec:
    project = str(data["project"])
    release_purpose(project)  # the project name must make a valid key purpose
    unknown = set(data) - {
        "project",
        "title",
        "cohort",
        "k_threshold",
        "quasi_identifiers",
        "generalise",
        "tables",
    }
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(sorted(unknown))}")
    cohort = data.get("cohort") or {}
    cohort_schema, cohort_table = _table_name(cohort.get("from", "persons"))
    threshold = data.get("k_threshold", DEFAULT_K)
    if not isinstance(threshold, int) or isinstance(threshold, bool) or threshold < 2:
        raise ValueError("k_threshold must be a whole number of at least 2")
    tables = {}
    for key, spec in (data["tables"] or {}).items():
        schema, name = _table_name(key)
        spec = spec or {}
        if name in tables:
            raise ValueError(f"table {name} is listed twice")
        columns = tuple(str(c) for c in spec.get("columns") or ())
        if twice := sorted({c for c in columns if columns.count(c) > 1}):
            raise ValueError(f"{name}: columns listed twice: {', '.join(twice)}")
        coarsen = {str(c): str(how) for c, how in (spec.get("coarsen") or {}).items()}
        if bad := sorted(how for how in coarsen.values() if how not in COARSENINGS):
            raise ValueError(f"{name}: coarsen to {bad[0]!r}; use one of {', '.join(COARSENINGS)}")
        if stray := sorted(set(coarsen) - set(columns)):
            raise ValueError(f"{name}: coarsen names columns it does not release: {', '.join(stray)}")
        tables[name] = TableSpec(
            name,
            schema,
            tuple(c for c in columns if c != PERSON),
            _predicate(spec.get("where"), name),
            coarsen,
        )
    if not tables:
        raise ValueError("tables: name at least one table to release")
    steps = tuple(_step(step) for step in data.get("generalise") or ())
    return ReleaseSpec(
        path=path,
        sha256=sha256,
        project=project,
        title=str(data.get("title") or ""),
        cohort_schema=cohort_schema,
        cohort_table=cohort_table,
        cohort_where=_predicate(cohort.get("where"), "cohort"),
        k_threshold=threshold,
        quasi_identifiers=tuple(str(c) for c in data.get("quasi_identifiers") or ()),
        steps=steps,
        tables=tables,
    )


def _step(step: dict[str, Any]) -> dict[str, Operation]:
    if not isinstance(step, dict) or not step:
        raise ValueError("each generalise step maps columns to operations, e.g. {year_of_birth: {band: 5}}")
    return {str(column): _operation(str(column), op) for column, op in step.items()}


def _operation(column: str, op: Any) -> Operation:
    if op == "drop" or op == {"drop": True}:
        return Operation("drop")
    if not isinstance(op, dict):
        raise ValueError(f"generalise {column}: {op!r} is not band, group, coarsen, replace or drop")
    if "band" in op:
        if set(op) - {"band", "below", "above"} or not isinstance(op["band"], int) or op["band"] < 2:
            raise ValueError(
                f"generalise {column}: band takes a width of at least 2, and optionally below, above"
            )
        below, above = op.get("below"), op.get("above")
        if not all(v is None or isinstance(v, int) for v in (below, above)):
            raise ValueError(f"generalise {column}: below and above are whole numbers")
        return Operation("band", width=op["band"], below=below, above=above)
    if len(op) != 1:
        raise ValueError(f"generalise {column}: one operation per column and step")
    kind, value = next(iter(op.items()))
    if kind == "group" and value in GROUPINGS:
        return Operation("group", name=value)
    if kind == "coarsen" and value in COARSENINGS:
        return Operation("coarsen", name=value)
    if kind == "replace" and isinstance(value, str) and value:
        return Operation("replace", name=value)
    raise ValueError(
        f"generalise {column}: {op!r}: use band: N, group: {'|'.join(GROUPINGS)}, "
        f"coarsen: {'|'.join(COARSENINGS)}, replace: COLUMN or drop"
    )


@dataclass(frozen=True)
class Column:
    name: str
    data_type: str

    @property
    def is_date(self) -> bool:
        return self.data_type in DATE_TYPES

    @property
    def is_integer(self) -> bool:
        return self.data_type in INTEGER_TYPES


def store_columns(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> dict[str, Column]:
    rows = con.execute(
        "select column_name, data_type from duckdb_columns() where database_name = current_database() "
        "and schema_name = ? and table_name = ? order by column_index",
        [schema, table],
    ).fetchall()
    return {name: Column(name, data_type) for name, data_type in rows}


def check_against_store(con: duckdb.DuckDBPyConnection, spec: ReleaseSpec) -> dict[str, dict[str, Column]]:
    """Every table and column the spec names exists and may be released; their store columns.

    Refuses what would make the release unsafe or useless rather than quietly leaving it out: record
    keys and digests, tokens, a spell's diagnoses without the spell's record id, a generalisation or
    quasi-identifier that names nothing released.
    """
    cohort = store_columns(con, spec.cohort_schema, spec.cohort_table)
    if PERSON not in cohort:
        raise LdmError(
            f"cohort: {spec.cohort_schema}.{spec.cohort_table} is not a person-level table of the store "
            "(no person_id column); build the marts first if it is a mart"
        )
    found = {}
    for table in spec.tables.values():
        columns = store_columns(con, table.schema, table.name)
        if not columns:
            raise LdmError(f"the store has no table {table.source} to release")
        child = table.name in SPELL_CHILDREN
        if PERSON not in columns and not child:
            raise LdmError(f"{table.source} has no person_id: only person-level tables are released")
        if missing := [c for c in table.columns if c not in columns and not (c == RECORD and child)]:
            raise LdmError(f"{table.source} has no column(s) {', '.join(missing)}")
        if never := [c for c in table.columns if c in NEVER_RELEASED or c.endswith("_token")]:
            raise LdmError(
                f"{table.name}: {', '.join(never)} identify records or link them, so they are never released; "
                f"list {RECORD} to release the project's pseudonym of each record"
            )
        if RECORD in table.columns and not ({"batch_id", "row_number"} <= set(columns)):
            raise LdmError(f"{table.name}: it has no record key to pseudonymise as {RECORD}")
        for name in table.coarsen:
            if not columns[name].is_date:
                raise LdmError(f"{table.name}: coarsen {name}: it is {columns[name].data_type}, not a date")
        found[table.name] = columns
    if children := sorted(SPELL_CHILDREN & spec.tables.keys()):
        spells = spec.tables.get(SPELLS)
        if spells is None or RECORD not in spells.columns:
            raise LdmError(
                f"{', '.join(children)} join to their spell by {RECORD}: release {SPELLS} with {RECORD} too"
            )
    released = {c for table in spec.tables.values() for c in table.columns}
    listed = {name: set(table.columns) for name, table in spec.tables.items()}  # with replacements so far
    for step in spec.steps:
        for column, op in step.items():
            where = [spec.tables[name] for name, names in listed.items() if column in names]
            if not where:
                raise LdmError(f"generalise {column}: no table releases it")
            for table in where:
                _check_operation(table, found[table.name], column, op)
                if op.kind == "replace":
                    listed[table.name].add(op.name)
    if stray := [c for c in spec.quasi_identifiers if c not in released]:
        raise LdmError(f"quasi_identifiers: no table releases {', '.join(stray)}")
    return found


def _check_operation(table: TableSpec, columns: dict[str, Column], column: str, op: Operation) -> None:
    kind = columns[column]
    if op.kind == "band" and not kind.is_integer:
        raise LdmError(f"generalise {column} in {table.name}: bands need whole numbers, not {kind.data_type}")
    if op.kind == "coarsen" and not kind.is_date:
        raise LdmError(f"generalise {column} in {table.name}: only dates are coarsened")
    if op.kind == "group" and column != "ethnic_category":
        raise LdmError(f"generalise {column}: the {op.name} grouping applies to ethnic_category only")
    if op.kind == "replace" and (op.name not in columns or op.name in NEVER_RELEASED or op.name == PERSON):
        raise LdmError(f"generalise {column} in {table.name}: no column {op.name} to replace it with")
