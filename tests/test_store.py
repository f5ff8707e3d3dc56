"""The store: migrations build exactly what the models describe, keep rows, and refuse foreign files.

Everything runs on real DuckDB files with real Alembic revisions; nothing is mocked.
"""

from __future__ import annotations

import datetime
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.orm import Session

import models
from ldm import minimise, store
from ldm.cli import main
from ldm.errors import LdmError
from ldm.load.loader import FEED_TABLES
from models.analyst import GpEvent
from models.base import unindexed_keys
from models.governance import Batch

FIRST, SECOND, THIRD = "0001_initial", "0002_persons_ethnic_category", "0003_record_digests_keyed_audit"
FOURTH = "0004_batch_provenance_duplicates"
FIFTH = "0005_projects_and_releases"
SIXTH = "0006_birth_month_dates"
SEVENTH = "0007_deaths"
EIGHTH = "0008_person_evidence"
NINTH = "0009_linkage_models"
TENTH = "0010_persons_stated_ethnic_category"
ELEVENTH = HEAD = "0011_unindexed_record_keys"
VERSION_TABLE = ("governance", "alembic_version")

# What DuckDB itself says the store is; alembic_version is Alembic's, not the models'.
CATALOG = {
    "tables": "select schema_name, table_name, comment from duckdb_tables()",
    "columns": "select schema_name, table_name, column_index, column_name, data_type, is_nullable, "
    "column_default, comment from duckdb_columns()",
    "constraints": "select schema_name, table_name, constraint_type, constraint_column_names, "
    "constraint_text from duckdb_constraints()",
    "indexes": "select schema_name, table_name, index_name, sql from duckdb_indexes()",
    "sequences": "select schema_name, sequence_name, start_value, min_value, max_value, increment_by, "
    "cycle from duckdb_sequences()",
}


def catalog(path: Path) -> dict[str, list[tuple]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        described = {}
        for name, sql in CATALOG.items():
            rows = con.execute(f"{sql} where database_name = current_database()").fetchall()
            described[name] = sorted(
                (row for row in rows if name == "sequences" or tuple(row[:2]) != VERSION_TABLE), key=repr
            )
        return described
    finally:
        con.close()


def model_tables() -> set[tuple[str, str]]:
    return {(table.schema or "main", table.name) for table in models.metadata.tables.values()}


def built_from_models(path: Path) -> Path:
    """A store built straight from the models with create_all: the reference the migrations must match."""
    engine = sa.create_engine(f"duckdb:///{path}", poolclass=sa.pool.NullPool)
    with engine.begin() as connection:
        for schema in models.SCHEMAS:
            connection.execute(sa.text(f"create schema {schema}"))
        models.metadata.create_all(connection)
    engine.dispose()
    return path


@pytest.fixture
def store_file(tmp_path: Path) -> Path:
    return tmp_path / "ldm.duckdb"


def test_upgrade_from_empty_builds_every_table(store_file: Path) -> None:
    assert store.upgrade(store_file) == HEAD == store.head_revision()
    assert store.current_revision(store_file) == HEAD
    con = store.connect(store_file, read_only=True)
    tables = set(con.execute("select schema_name, table_name from duckdb_tables()").fetchall())
    sequences = {
        f"{s}.{n}"
        for s, n in con.execute("select schema_name, sequence_name from duckdb_sequences()").fetchall()
    }
    con.close()
    assert tables == model_tables() | {VERSION_TABLE}
    assert sequences == set(models.metadata._sequences)
    assert len(tables) == 27


def test_migrations_build_exactly_what_the_models_describe(store_file: Path, tmp_path: Path) -> None:
    """Compared by DuckDB's own catalog: column order, types, nullability, defaults, comments,
    primary keys, unique and CHECK constraints, indexes and sequences. This covers what
    duckdb-engine cannot reflect (see the next test)."""
    store.upgrade(store_file)
    reference = catalog(built_from_models(tmp_path / "from_models.duckdb"))
    migrated = catalog(store_file)
    for part in CATALOG:
        assert migrated[part] == reference[part], part
    assert any(row[2] == "CHECK" for row in migrated["constraints"])
    assert all(row[-1] for row in migrated["columns"]), "every column carries a comment for analysts"


def _duckdb_reflection_gaps(context, inspected_column, metadata_column, inspected_type, metadata_type):
    """duckdb-engine 0.17 reflects DOUBLE as FLOAT and TIMESTAMPTZ as TIMESTAMP (no timezone);
    the catalog test checks those types exactly, so here they count as equal."""
    if isinstance(metadata_type, sa.Double) and isinstance(inspected_type, sa.Float):
        return False
    if isinstance(metadata_type, sa.DateTime) and isinstance(inspected_type, sa.DateTime):
        return False
    return None


def test_alembic_autogenerate_finds_no_difference(store_file: Path) -> None:
    """Alembic's own comparison of the models against the upgraded store, with the gaps of
    duckdb-engine 0.17 reflection on DuckDB 2.0 worked around:
    - schema names come back catalog-qualified ("ldm.linkage"), so the models are compared as a
      copy whose schemas are qualified the same way;
    - tables of the default schema are listed together with every other schema's, so schema-less
      tables are limited to those DuckDB places in `main`;
    - primary keys, unique constraints and indexes are not reflected at all, and two types are
      reflected loosely (see _duckdb_reflection_gaps): the catalog test above covers all of them.
    """
    store.upgrade(store_file)
    engine = store.engine(store_file, read_only=True)
    with engine.connect() as connection:
        database = connection.exec_driver_sql("select current_database()").scalar()
        in_main = {
            name
            for (name,) in connection.exec_driver_sql(
                "select table_name from duckdb_tables() where schema_name = 'main'"
            ).fetchall()
        }
        qualified = sa.MetaData()
        for table in models.metadata.tables.values():
            table.to_metadata(qualified, schema=f"{database}.{table.schema}" if table.schema else None)
        schemas = {f"{database}.{schema}" for schema in models.SCHEMAS}

        def include_name(name, type_, parent_names):
            if type_ == "schema":
                return name is None or name in schemas
            if type_ == "table" and parent_names.get("schema_name") is None:
                return name in in_main
            return name != "alembic_version"

        def include_object(obj, name, type_, reflected, compare_to):
            # Unique constraints are never reflected, so the models' one would always look missing.
            return type_ != "unique_constraint"

        context = MigrationContext.configure(
            connection,
            opts={
                "include_schemas": True,
                "include_name": include_name,
                "include_object": include_object,
                "compare_type": _duckdb_reflection_gaps,
                "compare_server_default": True,
            },
        )
        with pytest.warns(Warning, match="reflection on indices"):
            differences = compare_metadata(context, qualified)
    engine.dispose()
    assert differences == []


VALUES_BY_TYPE = {
    "BIGINT": "i",
    "INTEGER": "i::integer",
    "SMALLINT": "(i % 100)::smallint",
    "DOUBLE": "i / 7",
    "BOOLEAN": "i % 2 = 0",
    "DATE": "date '2020-01-01' + (i % 900)::integer",
    "TIMESTAMP": "timestamp '2024-01-01 08:00' + to_minutes(i)",
    "TIMESTAMP WITH TIME ZONE": "timestamptz '2024-01-01 08:00:00+00' + to_minutes(i)",
    "VARCHAR": "'v' || i",
}
OVERRIDES = {
    ("batches", "rows_in"): "2 * i",  # the reconciliation CHECK: rows_in = accepted + quarantined
    ("registrations", "ethnic_category"): "case when i % 2 = 0 then 'A' end",
}


def fill(path: Path, rows: int) -> None:
    """Put `rows` rows in every table, generated by DuckDB from each column's type.

    Person i has registration row i (category A for even i, none for odd i) and, for every person,
    a later registration that states "Z" (not stated).
    """
    con = store.connect(path)
    tables = con.execute(
        "select schema_name, table_name, list(column_name order by column_index), "
        "list(data_type order by column_index) from duckdb_columns() "
        "where database_name = current_database() and not internal and schema_name in ('main', 'linkage', "
        "'governance') and not (schema_name = 'governance' and table_name = 'alembic_version') group by all"
    ).fetchall()
    for schema, table, names, types in tables:
        values = [OVERRIDES.get((table, n), VALUES_BY_TYPE[t]) for n, t in zip(names, types, strict=True)]
        quoted = ", ".join(f'"{n}"' for n in names)
        con.execute(
            f"insert into {schema}.{table} ({quoted}) "
            f"select {', '.join(values)} from range(1, {rows + 1}) t(i)"
        )
    con.execute(
        "insert into registrations (batch_id, row_number, person_id, registration_start, ethnic_category) "
        f"select 999, i, i, date '2030-01-01', 'Z' from range(1, {rows + 1}) t(i)"
    )
    con.close()


def contents(path: Path, leave_out: dict[str, str]) -> dict[str, list[tuple]]:
    """Every row of every table, in a stable order, without the columns in `leave_out`."""
    con = store.connect(path, read_only=True)
    tables = con.execute(
        "select schema_name, table_name from duckdb_tables() "
        "where not (schema_name = 'governance' and table_name = 'alembic_version')"
    ).fetchall()
    rows = {}
    for schema, table in tables:
        exclude = f"exclude ({leave_out[table]})" if table in leave_out else ""
        rows[f"{schema}.{table}"] = con.execute(
            f"select * {exclude} from {schema}.{table} order by all"
        ).fetchall()
    con.close()
    return rows


def test_second_migration_keeps_every_row_and_fills_the_new_column(store_file: Path) -> None:
    store.upgrade(store_file, FIRST)
    fill(store_file, rows=500)
    before = contents(store_file, {})
    assert store.upgrade(store_file, SECOND) == SECOND
    after = contents(store_file, {"persons": "ethnic_category"})
    assert after == before
    assert sum(len(rows) for rows in after.values()) == 500 * 19 + 500
    con = store.connect(store_file, read_only=True)
    filled = dict(con.execute("select ethnic_category, count(*) from persons group by all").fetchall())
    comment = con.execute(
        "select comment from duckdb_columns() "
        "where table_name = 'persons' and column_name = 'ethnic_category'"
    ).fetchone()[0]
    con.close()
    assert filled == {"A": 250, "Z": 250}  # a stated category beats a later "not stated"
    assert "ethnic category" in comment


ADDED_BY_THIRD = {table: "record_digest" for table in FEED_TABLES.values()} | {
    "batches": "rows_resent, rows_revised",
    "audit_log": "scheme",
}


def test_third_migration_keeps_every_row_and_adds_digests_and_the_audit_head(store_file: Path) -> None:
    store.upgrade(store_file, SECOND)
    fill(store_file, rows=200)
    before = contents(store_file, {})
    assert store.upgrade(store_file, THIRD) == THIRD
    after = contents(store_file, ADDED_BY_THIRD)
    after.pop("governance.audit_head")
    assert after == before
    con = store.connect(store_file, read_only=True)
    new = con.execute(
        "select count(*) from registrations where record_digest is not null union all "
        "select count(*) from governance.audit_head"
    ).fetchall()
    con.close()
    assert new == [(0,), (0,)]  # earlier rows have no digest; the head is written by the first keyed entry
    assert store.downgrade(store_file, SECOND) == SECOND
    assert contents(store_file, {}) == before


ADDED_BY_FOURTH = "rows_duplicate, rows_withheld, provider, spec_name"


def test_fourth_migration_keeps_every_row_and_fills_rows_withheld(store_file: Path) -> None:
    """Earlier batches gain what they withheld, from their opt-out counts; duplicates and provenance
    stay unknown (NULL), since nothing recorded them apart."""
    store.upgrade(store_file, THIRD)
    fill(store_file, rows=90)  # audit_head's SMALLINT key takes i % 100
    con = store.connect(store_file)
    # Batch i is an opt-out list when i % 10 = 0; opt-out run i counted records of batch i.
    con.execute("update governance.batches set feed = 'opt_out' where batch_id % 10 = 0")
    con.execute("update governance.batches set rows_loaded = null where batch_id = 7")  # never loaded
    con.execute("delete from governance.opt_out_counts where batch_id % 3 = 0")  # withheld nothing
    con.close()
    before, described = contents(store_file, {}), catalog(store_file)
    assert store.upgrade(store_file, FOURTH) == FOURTH
    after = contents(store_file, {"batches": ADDED_BY_FOURTH})
    assert after == before
    added = query_store(
        store_file,
        "select batch_id, rows_withheld, rows_duplicate, provider, spec_name from governance.batches",
    )
    withheld = {batch: rows for batch, rows, *_ in added}
    assert {batch: rows for batch, rows in withheld.items() if batch % 10 == 0} == dict.fromkeys(
        range(10, 91, 10), 0
    )
    assert withheld[7] is None and withheld[3] == withheld[9] == 0
    assert withheld[1] == 1 and withheld[11] == 11  # records_removed of opt-out run i is i
    assert {tuple(row[2:]) for row in added} == {(None, None, None)}
    assert store.downgrade(store_file, THIRD) == THIRD
    assert contents(store_file, {}) == before
    assert catalog(store_file) == described  # rows_resent's comment as it was, too


ADDED_BY_FIFTH = ("projects", "releases")


def test_fifth_migration_keeps_every_row_and_adds_empty_project_and_release_tables(store_file: Path) -> None:
    store.upgrade(store_file, FOURTH)
    fill(store_file, rows=90)
    before, described = contents(store_file, {}), catalog(store_file)
    assert store.upgrade(store_file, FIFTH) == FIFTH
    after = contents(store_file, {})
    assert {f"governance.{table}": after.pop(f"governance.{table}") for table in ADDED_BY_FIFTH} == {
        "governance.projects": [],
        "governance.releases": [],
    }
    assert after == before
    assert "governance.release_id_seq" in {f"{s}.{n}" for s, n, *_ in catalog(store_file)["sequences"]}
    assert store.downgrade(store_file, FOURTH) == FOURTH
    assert contents(store_file, {}) == before
    assert catalog(store_file) == described


ADDED_BY_SEVENTH = ("deaths", "death_causes")
ANALYST_TABLES = [table.name for table in models.metadata.tables.values() if table.schema is None]


def _moved_back(row: dict, table: str, births: list[tuple]) -> dict:
    """The rules, restated in Python: dates in a birth month less the days from its first to the
    row's earliest date in one; dates of death and registration ends as the first of their month."""
    month_only = {"date_of_death", "registration_end"}
    dated = [c for c in minimise.dated_columns(table) if c not in month_only]

    def inside(value) -> bool:
        return value is not None and (value.year, value.month) in births

    shift = datetime.timedelta(days=min((row[c].day - 1 for c in dated if inside(row[c])), default=0))
    moved = {c: row[c] - shift if c in dated and inside(row[c]) else v for c, v in row.items()}
    for column in month_only & set(row):
        if moved[column]:
            moved[column] = moved[column].replace(day=1)
    return moved


def test_sixth_migration_moves_rows_with_a_date_in_the_birth_month_back_to_its_first_day(
    store_file: Path,
) -> None:
    """Every person is born in January 2020; registrations and A&E attendances 1-30 record their own
    birth month as that of their start or arrival. Rows with a date in either move back; nothing
    else changes, in any table."""
    store.upgrade(store_file, FIFTH)
    fill(store_file, rows=90)
    con = store.connect(store_file)
    con.execute("update persons set year_of_birth = 2020, month_of_birth = 1")
    con.execute(
        "update registrations set year_of_birth = year(registration_start), month_of_birth = "
        "month(registration_start), registration_end = registration_start + 40 where row_number <= 30"
    )
    con.execute(
        "update ae_attendances set arrival_time = timestamp '2024-03-01 08:00' + to_days(row_number::integer), "
        "departure_time = timestamp '2024-03-01 20:00' + to_days(row_number::integer)"
    )
    con.execute("update ae_attendances set year_of_birth = 2024, month_of_birth = 3 where row_number % 2 = 0")
    # A store that has had its marts built: the person mart's dates of death become months too.
    con.execute("create schema marts")
    con.execute(
        "create table marts.mart_person_analysis as select 1 as person_id, date '2021-06-17' as date_of_death"
    )
    con.close()
    dated = {
        table: list(minimise.dated_columns(table))
        for table in ANALYST_TABLES
        if table not in ADDED_BY_SEVENTH
    }
    dated = {table: columns for table, columns in dated.items() if columns}

    def rows_of(table: str) -> list[dict]:
        con = store.connect(store_file, read_only=True)
        result = con.execute(f"select * from {table} order by all")
        names = [d[0] for d in result.description]
        rows = [dict(zip(names, row, strict=True)) for row in result.fetchall()]
        con.close()
        return rows

    before = contents(store_file, {})
    rows_before = {table: rows_of(table) for table in dated}
    assert store.upgrade(store_file, SIXTH) == SIXTH
    after = contents(store_file, {})
    for table, rows in before.items():
        if table.removeprefix("main.") not in dated and table != "marts.mart_person_analysis":
            assert after[table] == rows, table
    assert after["marts.mart_person_analysis"] == [(1, datetime.date(2021, 6, 1))]
    moved = 0
    for table in dated:
        expected = [
            _moved_back(row, table, [(2020, 1), (row.get("year_of_birth"), row.get("month_of_birth"))])
            for row in rows_before[table]
        ]
        assert rows_of(table) == expected, table
        moved += sum(old != new for old, new in zip(rows_before[table], expected, strict=True))
    # Registrations and GP events of January 2020, half the attendances, the other activity of
    # persons 1-30 and their deaths.
    assert moved >= 30 + 30 + 45
    assert store.downgrade(store_file, FIFTH) == FIFTH  # the schema version only: days moved stay moved


def test_seventh_migration_keeps_every_row_and_adds_empty_death_tables(store_file: Path) -> None:
    """An existing store at 0006, with rows in every table, gains the two death tables, empty and
    exactly as the models describe them; the downgrade removes them and nothing else."""
    store.upgrade(store_file, SIXTH)
    fill(store_file, rows=90)
    before, described = contents(store_file, {}), catalog(store_file)
    assert store.upgrade(store_file, SEVENTH) == SEVENTH
    after = contents(store_file, {})
    assert [after.pop(f"main.{table}") for table in ADDED_BY_SEVENTH] == [[], []]
    assert after == before
    reference = catalog(built_from_models(store_file.with_name("from_models.duckdb")))
    migrated = catalog(store_file)
    for part in CATALOG:
        new = [row for row in migrated[part] if row[1] in ADDED_BY_SEVENTH]
        assert new == [row for row in reference[part] if row[1] in ADDED_BY_SEVENTH], part
    comments = query_store(
        store_file,
        "select column_name, comment from duckdb_columns() where table_name = 'deaths' and "
        "column_name in ('date_of_death', 'registration_date', 'place_of_death')",
    )
    assert all(comment for _, comment in comments) and len(comments) == 3
    assert minimise.month_only_columns("deaths") == ["date_of_death", "registration_date"]
    assert store.downgrade(store_file, SIXTH) == SIXTH
    assert contents(store_file, {}) == before
    assert catalog(store_file) == described


def test_eighth_migration_keeps_every_row_and_adds_an_empty_evidence_table(store_file: Path) -> None:
    """A store at 0007 with rows in every table gains linkage.person_evidence and its sequence,
    empty and exactly as the models describe them; the downgrade removes them and nothing else."""
    store.upgrade(store_file, SEVENTH)
    fill(store_file, rows=60)
    before, described = contents(store_file, {}), catalog(store_file)
    assert store.upgrade(store_file, EIGHTH) == EIGHTH
    after = contents(store_file, {})
    assert after.pop("linkage.person_evidence") == []
    assert after == before
    reference = catalog(built_from_models(store_file.with_name("from_models.duckdb")))
    migrated = catalog(store_file)
    for part in CATALOG:
        new = [row for row in migrated[part] if "evidence" in str(row[1])]
        assert new == [row for row in reference[part] if "evidence" in str(row[1])], part
        assert new or part == "indexes", part
    assert store.downgrade(store_file, SEVENTH) == SEVENTH
    assert contents(store_file, {}) == before
    assert catalog(store_file) == described


def test_ninth_migration_keeps_every_row_and_adds_an_empty_model_table(store_file: Path) -> None:
    """A store at 0008 with rows in every table gains governance.linkage_models, empty and exactly
    as the models describe it; the downgrade removes it and nothing else."""
    store.upgrade(store_file, EIGHTH)
    fill(store_file, rows=40)
    before, described = contents(store_file, {}), catalog(store_file)
    assert store.upgrade(store_file, NINTH) == NINTH
    after = contents(store_file, {})
    assert after.pop("governance.linkage_models") == []
    assert after == before
    reference = catalog(built_from_models(store_file.with_name("from_models.duckdb")))
    migrated = catalog(store_file)
    for part in CATALOG:
        new = [row for row in migrated[part] if row[1] == "linkage_models"]
        assert new == [row for row in reference[part] if row[1] == "linkage_models"], part
        assert new or part in ("indexes", "sequences"), part
    assert store.downgrade(store_file, EIGHTH) == EIGHTH
    assert contents(store_file, {}) == before
    assert catalog(store_file) == described


def test_tenth_migration_recomputes_ethnic_category_under_the_one_rule(store_file: Path) -> None:
    """Persons written by the old loader rule (the latest registration's category, "Z" included) get
    the latest stated category: even persons have an "A" registration before their later "Z" one,
    odd persons only the "Z" one. Nothing else changes in any table."""
    store.upgrade(store_file, NINTH)
    fill(store_file, rows=40)
    con = store.connect(store_file)
    con.execute("update persons set ethnic_category = 'Z'")
    con.close()
    before = contents(store_file, {})
    assert store.upgrade(store_file, TENTH) == TENTH
    after = contents(store_file, {})
    assert after.pop("main.persons") != before.pop("main.persons")
    assert after == before
    categories = dict(query_store(store_file, "select person_id, ethnic_category from persons"))
    assert categories == {i: "A" if i % 2 == 0 else "Z" for i in range(1, 41)}
    assert store.downgrade(store_file, NINTH) == NINTH


PRIMARY_KEYS = (
    "select schema_name || '.' || table_name from duckdb_constraints() where constraint_type = 'PRIMARY KEY'"
)


def test_eleventh_migration_rebuilds_the_large_record_tables_without_their_keys(store_file: Path) -> None:
    """A store at 0010 with rows in every table: the record tables and linkage.record_links lose
    their primary key and nothing else (columns, order, types, defaults, comments, rows); deaths and
    death_causes keep theirs. The downgrade gives the keys back."""
    store.upgrade(store_file, TENTH)
    fill(store_file, rows=60)
    before, described = contents(store_file, {}), catalog(store_file)
    keyed = {name for (name,) in query_store(store_file, PRIMARY_KEYS)}
    assert store.upgrade(store_file, ELEVENTH) == ELEVENTH
    assert contents(store_file, {}) == before
    migrated = catalog(store_file)
    for part in CATALOG:
        if part != "constraints":
            assert migrated[part] == described[part], part
    reference = catalog(built_from_models(store_file.with_name("from_models.duckdb")))
    assert migrated["constraints"] == reference["constraints"]
    left = {name for (name,) in query_store(store_file, PRIMARY_KEYS)}
    assert keyed - left == set(unindexed_keys()) and len(unindexed_keys()) == 9
    assert {"main.deaths", "main.death_causes", "main.persons", "governance.batches"} <= left
    assert store.downgrade(store_file, TENTH) == TENTH
    assert contents(store_file, {}) == before
    assert catalog(store_file) == described


def test_the_orm_maps_record_rows_by_the_key_the_store_does_not_index(store_file: Path) -> None:
    store.upgrade(store_file)
    engine = store.engine(store_file)
    with Session(engine) as session:
        session.add(GpEvent(batch_id=3, row_number=7, snomed_code="44054006"))
        session.commit()
    with Session(engine) as session:
        assert session.get(GpEvent, (3, 7)).snomed_code == "44054006"
    engine.dispose()
    assert "main.gp_events" in unindexed_keys()


def query_store(path: Path, sql: str) -> list[tuple]:
    con = store.connect(path, read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_downgrade_and_upgrade_round_trip(store_file: Path) -> None:
    store.upgrade(store_file)
    built = catalog(store_file)
    fill(store_file, rows=50)
    added = {**ADDED_BY_THIRD, "batches": f"{ADDED_BY_THIRD['batches']}, {ADDED_BY_FOURTH}"}
    kept = contents(store_file, {"persons": "ethnic_category", **added})
    for table in ("audit_head", *ADDED_BY_FIFTH):
        kept.pop(f"governance.{table}")
    for table in ADDED_BY_SEVENTH:
        kept.pop(f"main.{table}")
    kept.pop("linkage.person_evidence")
    kept.pop("governance.linkage_models")
    assert store.downgrade(store_file, FIRST) == FIRST
    assert contents(store_file, {}) == kept
    assert store.downgrade(store_file, "base") is None
    con = store.connect(store_file, read_only=True)
    left = con.execute("select schema_name, table_name from duckdb_tables()").fetchall()
    sequences = con.execute("select count(*) from duckdb_sequences()").fetchone()[0]
    con.close()
    assert left == [VERSION_TABLE]
    assert sequences == 0
    assert store.upgrade(store_file) == HEAD
    assert catalog(store_file) == built


def test_sequences_issue_ids_to_plain_sql_and_to_the_orm(store_file: Path) -> None:
    store.upgrade(store_file)
    con = store.connect(store_file)
    insert = (
        "insert into governance.batches (feed, input_file, input_sha256, rows_in, rows_accepted, "
        "rows_quarantined, key_id, status) values (?, 'f.csv', ?, 3, 2, 1, 'k', 'loaded') returning batch_id"
    )
    assert con.execute(insert, ["gp_events", "aa"]).fetchone() == (1,)
    with pytest.raises(duckdb.ConstraintException):  # counts that do not reconcile
        con.execute(insert.replace("3, 2, 1", "3, 2, 2"), ["gp_events", "bb"])
    con.close()
    engine = store.engine(store_file)
    with Session(engine) as session:
        batch = Batch(
            feed="apc_spells",
            input_file="a.csv",
            input_sha256="cc",
            rows_in=1,
            rows_accepted=1,
            rows_quarantined=0,
            key_id="k",
            status="loaded",
        )
        session.add(batch)
        session.commit()
        assert batch.batch_id > 1
    engine.dispose()


def test_analyst_tables_hold_no_tokens_and_names_are_not_keywords() -> None:
    analyst = [t for t in models.metadata.tables.values() if t.schema is None]
    assert {t.name for t in analyst} >= {"persons", "registrations", "gp_events", "apc_spells"}
    assert not [f"{t.name}.{c.name}" for t in analyst for c in t.columns if "token" in c.name]
    reserved = {
        name
        for (name,) in duckdb.sql(
            "select keyword_name from duckdb_keywords() "
            "where keyword_category in ('reserved', 'type_function')"
        ).fetchall()
    }
    names = {c.name for t in models.metadata.tables.values() for c in t.columns}
    assert not names & reserved


def test_cli_upgrade_then_current_prints_the_head(store_file: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["db", "upgrade", "--store", str(store_file), "--revision", FIRST]) == 0
    assert main(["db", "current", "--store", str(store_file)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == FIRST
    assert main(["db", "upgrade", "--store", str(store_file)]) == 0
    assert f"from {FIRST} to {HEAD} (head)" in capsys.readouterr().out
    assert main(["db", "current", "--store", str(store_file)]) == 0
    assert capsys.readouterr().out.strip() == f"{HEAD} (head)"


@pytest.mark.parametrize("action", ["upgrade", "current"])
@pytest.mark.parametrize(
    "name, content",
    [("notes.txt", b"not a database\n"), ("extract.csv", b"a,b\n1,2\n"), ("empty.duckdb", b"")],
)
def test_a_file_that_is_not_duckdb_gives_exit_2_and_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture, action: str, name: str, content: bytes
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    assert main(["db", action, "--store", str(path)]) == 2
    error = capsys.readouterr().err.strip()
    assert error == f"ldm db: error: {path} is not a DuckDB database file"
    assert path.read_bytes() == content


def test_a_database_written_by_another_program_is_refused_unchanged(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    path = tmp_path / "other.duckdb"
    con = duckdb.connect(str(path))
    con.execute("create table measurements (x integer)")
    con.close()
    assert main(["db", "upgrade", "--store", str(path)]) == 2
    assert "is a DuckDB database but not an ldm store" in capsys.readouterr().err
    with pytest.raises(LdmError, match="not an ldm store"):
        store.current_revision(path)
    con = duckdb.connect(str(path), read_only=True)
    assert con.execute("select schema_name, table_name from duckdb_tables()").fetchall() == [
        ("main", "measurements")
    ]
    assert con.execute(
        "select count(*) from duckdb_schemas() where schema_name = 'governance'"
    ).fetchone() == (0,)
    con.close()


def test_a_store_from_a_newer_ldm_is_refused(store_file: Path) -> None:
    store.upgrade(store_file)
    con = store.connect(store_file)
    con.execute("update governance.alembic_version set version_num = '0099_from_the_future'")
    con.close()
    with pytest.raises(LdmError, match="0099_from_the_future, which this version of ldm does not know"):
        store.upgrade(store_file)


def test_path_mistakes(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["db", "upgrade", "--store", str(tmp_path / "missing" / "ldm.duckdb")]) == 2
    assert "folder" in capsys.readouterr().err
    assert main(["db", "current", "--store", str(tmp_path / "ldm.duckdb")]) == 2
    assert "no store at" in capsys.readouterr().err
    assert not (tmp_path / "ldm.duckdb").exists()
    assert main(["db", "upgrade", "--store", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
    with pytest.raises(LdmError, match="Can't locate revision"):
        store.upgrade(tmp_path / "ldm.duckdb", "no_such_revision")


@pytest.mark.parametrize("argv", [["db", "--help"], ["db", "upgrade", "--help"], ["db", "current", "--help"]])
def test_help(argv: list[str], capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 0
    assert "--store" in capsys.readouterr().out or argv == ["db", "--help"]


def test_the_store_draws_no_progress_bar_into_a_runs_output(tmp_path: Path) -> None:
    """DuckDB draws a bar on stdout for any query over two seconds, even when stdout is a file (an
    operator's log of `ldm run`, where an 850,000-person bench left 19 of them): in a process of
    its own, as `ldm` runs, a plain connection would, and the store's connections (every way into
    the store goes through ldm.store.connect) do not. (Inside the pytest process a plain connection
    already has the bar off, so this runs in a process of its own.)"""
    store.upgrade(tmp_path / "store.duckdb")
    script = f"""
import duckdb
from ldm import store
setting = "select current_setting('enable_progress_bar')"
print(duckdb.connect().execute(setting).fetchall()[0][0])
for read_only in (False, True):
    con = store.connect({str(tmp_path / "store.duckdb")!r}, read_only=read_only)
    print(con.execute(setting).fetchall()[0][0])
    con.close()
"""
    log = tmp_path / "run.log"
    with log.open("w") as handle:
        subprocess.run([sys.executable, "-c", script], stdout=handle, check=True, timeout=120)
    assert log.read_text().split() == ["True", "False", "False"]
