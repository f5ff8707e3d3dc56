"""Make one release: check, record, build, check k, write, record the outcome.

In that order, so that:
- nothing is recorded for a store that fails its checks (revision, key, audit) or for a project
  that is unknown, expired or not yet approved, or a spec that names what the store lacks;
- the release (project, spec, threshold, key id) is in governance.releases and the audit chain
  before anything is built or written, and its outcome (written, refused, failed) after;
- the spec's SQL (cohort and table conditions) runs only on a read-only connection to the store;
- the files are written to a hidden folder beside OUT, renamed to OUT only when every file and the
  manifest are complete; a refusal or a failure writes nothing there;
- opted-out persons are left out by the cohort itself, whatever the tables hold.
`check` does the same building and k check on a read-only store, records and writes nothing, so a
spec can be tried before it goes to IG.
"""

from __future__ import annotations

import contextlib
import datetime
import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from ldm.dialects import DIALECTS
from ldm.dialects import current as dialect
from ldm.errors import LdmError
from ldm.files import file_sha256
from ldm.governance import audit
from ldm.load.opt_outs import OPTED_OUT_PERSONS as WITHHELD_PERSONS
from ldm.pseudonymise.keys import KEY_BYTES, MasterKey, release_purpose
from ldm.release import kanon
from ldm.release import working as work
from ldm.release.columns import Released, released
from ldm.release.manifest import write_manifest
from ldm.release.projects import Project, active_project
from ldm.release.pseudonyms import PERSON_FIELD, pseudonymise, record_field
from ldm.release.record import check_store, record_outcome, record_release
from ldm.release.spec import (
    PERSON,
    RECORD,
    SPELL_CHILDREN,
    SPELLS,
    Column,
    Operation,
    ReleaseSpec,
    TableSpec,
    check_against_store,
    load_spec,
)
from ldm.release.working import COHORT, PERSON_PSEUDONYMS, PERSONS
from ldm.sql import literal, quoted
from ldm.store import connect
from ldm.store.lock import store_lock

DUCKDB_FILE = "release.duckdb"
DUCKDB = DIALECTS["duckdb"]  # release.duckdb is a DuckDB file, whatever engine built the release
STORE_PERSON = "store_person_id"  # working columns: never written
STORE_BATCH, STORE_ROW = "store_batch_id", "store_row_number"


def working(table: str) -> str:
    """A released table's working table (its raw rows: `raw_<table>`), quoted."""
    if table.startswith("raw_"):
        return quoted(work.raw(table.removeprefix("raw_")))
    return quoted(work.pseudonymised(table))


@dataclass(frozen=True)
class Check:
    """The smallest group after `applied` generalisation steps."""

    applied: int
    group: kanon.Group | None

    def record(self) -> dict[str, Any]:
        return {"steps_applied": self.applied, "k": self.group.size if self.group else None}


@dataclass
class Plan:
    """A release built in working tables and checked: what would be written, and whether it may be."""

    spec: ReleaseSpec
    project: Project
    columns: dict[str, dict[str, Column]]
    persons: int = 0
    opted_out_left_out: int = 0
    table_rows: dict[str, int] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    ops: dict[str, Operation] = field(default_factory=dict)

    @property
    def final(self) -> Check:
        return self.checks[-1]

    @property
    def passes(self) -> bool:
        return kanon.passes(self.final.group, self.spec.k_threshold)

    @property
    def k(self) -> int | None:
        return self.final.group.size if self.final.group else None

    def released(self, table: str) -> list[Released]:
        return released(self.spec.tables[table], self.columns[table], self.ops, self.spec.quasi_identifiers)

    def generalised(self) -> list[dict[str, Any]]:
        """Each step applied (what it did) with the k after it; the first entry is before any step."""
        out = []
        for check in self.checks:
            step = self.spec.steps[check.applied - 1] if check.applied else {}
            out.append({**check.record(), "step": {c: op.describe() for c, op in step.items()}})
        return out

    def refusal(self) -> str:
        assert self.final.group is not None
        return kanon.refusal(self.final.group, self.spec.k_threshold, self.final.applied)


@dataclass(frozen=True)
class ReleaseResult:
    release_id: int
    release_number: int
    folder: Path
    plan: Plan
    head: audit.Head


def _ordered(spec: ReleaseSpec) -> list[TableSpec]:
    """Spells before their diagnoses and procedures, which are cut to the spells released."""
    return sorted(spec.tables.values(), key=lambda t: t.name in SPELL_CHILDREN)


def _preflight(
    store: Path, spec: ReleaseSpec, key: MasterKey | None, today: datetime.date
) -> tuple[Project, dict[str, dict[str, Column]]]:
    con = connect(store, read_only=True)
    try:
        check_store(con, store, key)
        project = active_project(con, spec.project, today)
        columns = check_against_store(con, spec)
        conditions = {"cohort": (spec.cohort_schema, spec.cohort_table, spec.cohort_where)}
        conditions |= {t.name: (t.schema, t.name, t.where) for t in spec.tables.values()}
        for where, (schema, table, condition) in conditions.items():
            try:  # bound, not run: a misspelt column stops the release before it is recorded
                con.execute(
                    f"select 1 from {quoted(schema)}.{quoted(table)} where ({condition}) limit 0"
                ).fetchall()
            except duckdb.Error as error:
                message = str(error).splitlines()[0]
                raise LdmError(
                    f"{spec.path.name}: {where}: the condition {condition!r} fails: {message}"
                ) from None
        return project, columns
    finally:
        con.close()


def _build(con: duckdb.DuckDBPyConnection, plan: Plan, key: bytes) -> None:
    """The working tables: the cohort, each table's rows with pseudonyms, then the k check."""
    spec = plan.spec
    cohort = (
        f"select * from {quoted(spec.cohort_schema)}.{quoted(spec.cohort_table)} where ({spec.cohort_where})"
    )
    con.execute(
        f"""create or replace temp table {COHORT} as
            select distinct person_id from ({cohort}) as c
            where person_id in (select person_id from main.persons)
              and person_id not in ({WITHHELD_PERSONS})"""
    )
    plan.opted_out_left_out = con.execute(
        f"select count(distinct person_id) from ({cohort}) as c where person_id in ({WITHHELD_PERSONS})"
    ).fetchall()[0][0]
    for table in _ordered(spec):
        _raw(con, table, plan.columns[table.name], spec)
    persons = " union ".join(f"select {STORE_PERSON} from {working('raw_' + t)}" for t in spec.tables)
    con.execute(f"create or replace temp table {PERSONS} as {persons}")
    plan.persons = pseudonymise(con, key, PERSON_FIELD, PERSONS, (STORE_PERSON,), PERSON_PSEUDONYMS)
    for table in _ordered(spec):
        _pseudonymised(con, table, key)
        (rows,) = con.execute(f"select count(*) from {working(table.name)}").fetchall()[0]
        plan.table_rows[table.name] = rows
    _check_k(con, plan)


def _raw(
    con: duckdb.DuckDBPyConnection, table: TableSpec, columns: dict[str, Column], spec: ReleaseSpec
) -> None:
    """Rows of the table for the cohort, with the columns released or used in their place."""
    wanted = [c for c in table.columns if c != RECORD]
    for step in spec.steps:
        wanted += [op.name for c, op in step.items() if op.kind == "replace" and c in table.columns]
    wanted = list(dict.fromkeys(c for c in wanted if c in columns))
    listed = "".join(f", t.{quoted(c)}" for c in wanted)
    rows = f"(select * from {quoted(table.schema)}.{quoted(table.name)} where ({table.where})) as t"
    if table.name in SPELL_CHILDREN:
        select = (
            f"select s.{STORE_PERSON}, t.batch_id as {STORE_BATCH}, t.row_number as {STORE_ROW}{listed} "
            f"from {rows} join {working('raw_' + SPELLS)} as s "
            f"on s.{STORE_BATCH} = t.batch_id and s.{STORE_ROW} = t.row_number"
        )
    else:
        keys = (
            f", t.batch_id as {STORE_BATCH}, t.row_number as {STORE_ROW}"
            if {"batch_id", "row_number"} <= columns.keys()
            else ""
        )
        select = (
            f"select t.person_id as {STORE_PERSON}{keys}{listed} from {rows} "
            f"where t.person_id in (select person_id from {COHORT})"
        )
    con.execute(f"create or replace temp table {working('raw_' + table.name)} as {select}")


def _pseudonymised(con: duckdb.DuckDBPyConnection, table: TableSpec, key: bytes) -> None:
    """The working table: project pseudonyms of the person (and of the record) beside the raw rows."""
    raw = working("raw_" + table.name)
    joins, record = "", ""
    if RECORD in table.columns or table.name in SPELL_CHILDREN:
        source = SPELLS if table.name in SPELL_CHILDREN else table.name
        pseudonyms = work.record_pseudonyms(table.name)
        pseudonymise(con, key, record_field(source), raw, (STORE_BATCH, STORE_ROW), pseudonyms)
        joins = (
            f" join {quoted(pseudonyms)} as r on r.{STORE_BATCH} = t.{STORE_BATCH} "
            f"and r.{STORE_ROW} = t.{STORE_ROW}"
        )
        record = f", r.pseudonym as {RECORD}"
    con.execute(
        f"""create or replace temp table {working(table.name)} as
            select p.pseudonym as {PERSON}{record}, t.*
            from {raw} as t join {PERSON_PSEUDONYMS} as p on p.{STORE_PERSON} = t.{STORE_PERSON}{joins}"""
    )


def _check_k(con: duckdb.DuckDBPyConnection, plan: Plan) -> None:
    """The smallest group before generalising, then after each step the spec allows, until k suffices."""
    spec = plan.spec
    ops: dict[str, Operation] = {}
    for applied in range(len(spec.steps) + 1):
        if applied:
            ops = ops | spec.steps[applied - 1]
        plan.ops = ops
        groups = []
        for name in spec.tables:
            quasi = [r for r in plan.released(name) if r.quasi]
            if not quasi:
                continue
            values = ", ".join(f"{r.expression} as {quoted(r.name)}" for r in quasi)
            relation = f"(select {STORE_PERSON}, {values} from {working(name)})"
            groups.append(kanon.smallest_group(con, relation, [r.name for r in quasi], STORE_PERSON, name))
        plan.checks.append(Check(applied, kanon.smallest(groups)))
        if plan.passes:
            return


def check(store: Path, spec_path: Path, today: datetime.date | None = None) -> Plan:
    """Build and check a release on a read-only store without recording or writing anything.

    Pseudonyms are made under a throwaway key, since none of them leaves this function.
    """
    spec = load_spec(spec_path)
    today = today or datetime.datetime.now(datetime.UTC).date()
    project, columns = _preflight(store, spec, None, today)
    plan = Plan(spec, project, columns)
    con = connect(store, read_only=True)
    try:
        _build(con, plan, secrets.token_bytes(KEY_BYTES))
    finally:
        con.close()
    return plan


def _check_out(out: Path) -> Path:
    out = Path(out).expanduser().absolute()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise LdmError(f"{out} already exists and is not an empty folder; choose a new --out")
    if not out.parent.is_dir():
        raise LdmError(f"folder {out.parent} does not exist; create it first or choose another --out")
    return out


def release(
    store: Path,
    spec_path: Path,
    out: Path,
    key: MasterKey,
    today: datetime.date | None = None,
    progress: Callable[[str], None] = lambda message: None,
) -> ReleaseResult:
    """Make the release the spec describes, to OUT; LdmError (recorded as refused) when k is too small."""
    spec = load_spec(spec_path)
    out = _check_out(out)
    store = Path(store).expanduser().absolute()
    today = today or datetime.datetime.now(datetime.UTC).date()
    project_key = key.purpose_key(release_purpose(spec.project))
    with store_lock(store):
        project, columns = _preflight(store, spec, key, today)
        con = connect(store)
        try:
            release_id, number, head = record_release(
                con, key, spec.record(), spec.path.name, spec.sha256, out, spec.k_threshold
            )
        finally:
            con.close()
        audit.write_anchor(store, head)
        progress(f"release {release_id} (number {number} to project {spec.project}) recorded; building it")
        plan = Plan(spec, project, columns)
        partial = out.with_name(f".{out.name}.partial")
        try:
            con = connect(store, read_only=True)
            try:
                _build(con, plan, project_key)
                if plan.passes:
                    progress(
                        f"k = {plan.k} (threshold {spec.k_threshold}); writing {len(spec.tables)} table(s)"
                    )
                    manifest_sha256 = file_sha256(_write(con, plan, partial, release_id, number, head))
            finally:
                con.close()
            if plan.passes:
                if out.exists():
                    out.rmdir()
                partial.rename(out)
        except BaseException as error:
            shutil.rmtree(partial, ignore_errors=True)
            # Should even that fail, the release stays 'recorded' with no outcome: IG sees it unfinished.
            with contextlib.suppress(Exception):
                _record(store, key, release_id, "failed", {"reason": _why(error)})
            raise
        outcome = {
            "k": plan.k,
            "smallest_group": plan.final.group.record() if plan.final.group else None,
            "generalised": plan.generalised(),
            "persons": plan.persons,
            "table_rows": plan.table_rows,
            "opted_out_left_out": plan.opted_out_left_out,
        }
        if not plan.passes:
            reason = plan.refusal()
            _record(store, key, release_id, "refused", outcome | {"reason": reason})
            raise LdmError(f"release {release_id} to project {spec.project} refused: {reason}")
        try:
            head = _record(store, key, release_id, "written", outcome | {"manifest_sha256": manifest_sha256})
        except BaseException:
            shutil.rmtree(out, ignore_errors=True)  # nothing is released without its record
            raise
    return ReleaseResult(release_id, number, out, plan, head)


def _why(error: BaseException) -> str:
    text = str(error).splitlines()[0] if str(error) else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _record(store: Path, key: MasterKey, release_id: int, status: str, outcome: dict[str, Any]) -> audit.Head:
    con = connect(store)
    try:
        head = record_outcome(con, key, release_id, status, outcome)
    finally:
        con.close()
    audit.write_anchor(store, head)
    return head


def _write(
    con: duckdb.DuckDBPyConnection, plan: Plan, folder: Path, release_id: int, number: int, head: audit.Head
) -> Path:
    """Parquet per table, the same tables in one DuckDB file (columns described), and the manifest."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    files, described = [], {}
    for name in plan.spec.tables:
        columns = plan.released(name)
        select = ", ".join(f"{r.expression} as {quoted(r.name)}" for r in columns)
        target = folder / f"{name}.parquet"
        order = dialect().order_by_all([r.name for r in columns])
        con.execute(dialect().write_parquet(f"select {select} from {working(name)} {order}", target, "zstd"))
        described[name] = columns
        files.append(
            {
                "file": target.name,
                "table": name,
                "format": "parquet",
                "rows": plan.table_rows[name],
                "columns": [{"name": r.name, "note": r.note, "quasi_identifier": r.quasi} for r in columns],
            }
        )
    _duckdb_file(folder, described)
    files.append({"file": DUCKDB_FILE, "format": "duckdb", "tables": list(described)})
    spec, project = plan.spec, plan.project
    content = {
        "project": {
            "project": project.project,
            "purpose": project.purpose,
            "approver": project.approver,
            "legal_basis": project.legal_basis,
            "expires_on": project.expires_on,
        },
        "release": {
            "release_id": release_id,
            "release_number": number,
            "title": spec.title,
            "spec_file": spec.path.name,
            "spec_sha256": spec.sha256,
            "recorded_at_audit_head": str(head),
        },
        "spec": spec.record(),
        "persons": plan.persons,
        "k_anonymity": {
            "threshold": spec.k_threshold,
            "k": plan.k,
            "quasi_identifiers": {
                name: [r.name for r in columns if r.quasi] for name, columns in described.items()
            },
            "generalised": [{"steps_applied": c.applied, "k": c.record()["k"]} for c in plan.checks],
        },
    }
    return write_manifest(folder, content, files)


def _duckdb_file(folder: Path, described: dict[str, list[Released]]) -> None:
    """The release as one DuckDB file for analysts, each column carrying its note as a comment."""
    con = duckdb.connect(str(folder / DUCKDB_FILE))
    try:
        for name, columns in described.items():
            con.execute(
                f"create table {quoted(name)} as select * from {DUCKDB.parquet(folder / (name + '.parquet'))}"
            )
            for column in columns:
                con.execute(
                    f"comment on column {quoted(name)}.{quoted(column.name)} is {literal(column.note)}"
                )
    finally:
        con.close()
