"""Export the aggregate marts for publication, with the disclosure-control rules applied.

The store is opened read-only, and the files are written to a hidden folder beside DIR that is
renamed to DIR only when every file and the manifest are complete, so a failed run publishes
nothing.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from ldm.dialects import current as dialect
from ldm.errors import LdmError
from ldm.export.manifest import store_state, write_manifest
from ldm.export.rules import MartRules, Rules, load_rules
from ldm.export.suppress import Suppression, published_sql, suppress
from ldm.export.working import PUBLISHED
from ldm.marts import stats_udfs
from ldm.store import connect
from ldm.store.connection import check_is_store

FORMATS = ("csv", "parquet")


@dataclass(frozen=True)
class Exported:
    mart: str
    rows: int
    suppression: Suppression


@dataclass(frozen=True)
class ExportResult:
    folder: Path
    exported: list[Exported]
    skipped: dict[str, str]


def export(
    store: Path,
    out: Path,
    rules_path: Path | None = None,
    marts: list[str] | None = None,
    progress: Callable[[str], None] = lambda message: None,
) -> ExportResult:
    """Write each requested (default: every declared) aggregate mart as CSV and Parquet, and a manifest."""
    rules = load_rules(rules_path)
    _refuse_person_level(rules, marts or [])
    out = Path(out).expanduser().absolute()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise LdmError(f"{out} already exists and is not an empty folder; choose a new --out")
    if not out.parent.is_dir():
        raise LdmError(f"folder {out.parent} does not exist; create it first or choose another --out")
    con = connect(store, read_only=True)
    partial = out.with_name(f".{out.name}.partial")
    try:
        stats_udfs.register(con)  # derived values are recomputed from the rounded counts with ldm.stats
        check_is_store(Path(store), con)
        chosen, skipped = _choose(con, rules, marts)
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir()
        exported, entries, done = [], [], set()
        for mart in chosen:
            for source in (rules.marts[i.mart] for i in mart.inherit if i.mart not in done):
                suppress(con, rules, source)  # the cells this mart republishes keep the source's suppression
                done.add(source.name)
            done.add(mart.name)
            progress(f"{mart.name}: suppressing and rounding")
            result, entry = _export_mart(con, rules, mart, partial)
            exported.append(result)
            entries.append(entry)
        entries += [{"mart": name, "skipped": reason} for name, reason in skipped.items()]
        write_manifest(partial, Path(store), rules, store_state(con), entries)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    finally:
        con.close()
    if out.exists():
        out.rmdir()
    partial.rename(out)
    return ExportResult(out, exported, skipped)


def _refuse_person_level(rules: Rules, requested: list[str]) -> None:
    for name in requested:
        if name in rules.person_level:
            raise LdmError(
                f"{name} is person-level (one row per person) and is never exported; "
                "query it inside the secure environment, or export an aggregate mart"
            )


def _choose(
    con: duckdb.DuckDBPyConnection, rules: Rules, requested: list[str] | None
) -> tuple[list[MartRules], dict[str, str]]:
    """The marts to export, with a reason for each declared one that is left out."""
    present = {
        row[0]
        for row in con.execute(
            "select table_name from duckdb_tables() where database_name = current_database() and schema_name = ?",
            [rules.schema],
        ).fetchall()
    }
    wanted = requested or list(rules.marts)
    if unknown := [name for name in wanted if name not in rules.marts]:
        raise LdmError(
            f"no disclosure-control rules for {', '.join(unknown)}; declare its columns in {rules.path.name} first"
        )
    required = [name for name in wanted if requested or not rules.marts[name].optional]
    if missing := [name for name in required if name not in present]:
        raise LdmError(
            f"the store has no {', '.join(missing)}: build the marts first (`ldm demo`, or `dbt build` "
            "in dbt_project/ with LDM_STORE set to the store)"
        )
    chosen, skipped = [], {}
    for name in wanted:
        mart = rules.marts[name]
        if name not in present:
            skipped[name] = "not in the store"
        elif problem := _column_problem(con, rules, mart):
            if not mart.optional or requested:
                raise LdmError(problem)
            skipped[name] = problem
        else:
            chosen.append(mart)
    return chosen, skipped


def _columns(con: duckdb.DuckDBPyConnection, rules: Rules, name: str) -> list[str]:
    return [
        row[0]
        for row in con.execute(
            "select column_name from duckdb_columns() where database_name = current_database() "
            "and schema_name = ? and table_name = ? order by column_index",
            [rules.schema, name],
        ).fetchall()
    ]


def _column_problem(con: duckdb.DuckDBPyConnection, rules: Rules, mart: MartRules) -> str | None:
    """Why the mart cannot be exported under the rules as written, or None when it can."""
    columns = set(_columns(con, rules, mart.name))
    if "person_id" in columns:
        return f"{mart.name} has a person_id column: person-level tables are never exported"
    if not mart.declared:
        return f"{mart.name} has no column rules in {rules.path.name} yet; declare its columns to export it"
    if undeclared := sorted(columns - mart.columns):
        return (
            f"{mart.name} has columns the rules do not declare ({', '.join(undeclared)}); declare them first"
        )
    if absent := sorted(mart.columns - columns):
        return f"{mart.name} lacks columns the rules declare ({', '.join(absent)}); update {rules.path.name}"
    return None


def _export_mart(
    con: duckdb.DuckDBPyConnection, rules: Rules, mart: MartRules, folder: Path
) -> tuple[Exported, dict[str, Any]]:
    tally = suppress(con, rules, mart)
    sql = published_sql(rules, mart, _columns(con, rules, mart.name))
    con.execute(f"create or replace temp table {PUBLISHED} as {sql}")
    row = con.execute(f"select count(*) from {PUBLISHED}").fetchone()
    rows = row[0] if row else 0
    published = [d[0] for d in con.execute(dialect().describe(PUBLISHED)).fetchall()]
    files = []
    for extension in FORMATS:
        name = f"{mart.name}.{extension}"
        columns = dialect().star_except(["export_row_id"], published)
        query = f"select {columns} from {PUBLISHED} order by export_row_id"
        if extension == "csv":
            con.execute(dialect().write_csv(query, folder / name))
        else:
            con.execute(dialect().write_parquet(query, folder / name, "zstd"))
        files.append({"file": name, "format": extension, "rows": rows})
    entry = {
        "mart": mart.name,
        "rows": rows,
        "files": files,
        "count_cells": tally.cells,
        "suppressed_cells": {
            "small": tally.small,
            "complement": tally.complement,
            "inherited": tally.inherited,
            "secondary": tally.secondary,
        },
    }
    return Exported(mart.name, rows, tally), entry
