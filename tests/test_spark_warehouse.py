"""The Spark warehouse's bookkeeping, without Spark: a failed run puts the warehouse back, the marts
replace the store's dbt schemas in one transaction, and the keyed digest tells a copied mart from an
edited one. The run on a real Spark session is in test_spark_marts.py."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from ldm.config import load_settings
from ldm.errors import LdmError
from ldm.spark import warehouse
from ldm.spark.session import GARBAGE_COLLECTOR, check_metastore_free, collector_options, local_threads
from ldm.spark.tables import StoreTable, spark_type, store_tables
from ldm.sql import backquoted, escaped_literal
from models import metadata

KEY = b"k" * 32
MARTS = {
    "mart_a": pa.table({"area": ["x", "y"], "n": [1, 2], "rate": [0.5, None]}),
    "mart_b": pa.table({"period_end": pa.array([1, 2], pa.int32())}),
}


def test_a_failed_run_puts_the_warehouse_back(tmp_path):
    folder = tmp_path / "store_spark"
    (folder / "marts").mkdir(parents=True)
    (folder / "marts" / "part-0").write_text("before")
    warehouse.set_aside(folder)
    (folder / "marts" / "part-0").write_text("half built")
    (folder / "new").mkdir()
    warehouse.put_back(folder)
    assert (folder / "marts" / "part-0").read_text() == "before" and not (folder / "new").exists()
    assert not warehouse.aside(folder).exists()


def test_a_run_that_succeeds_keeps_its_build_and_drops_the_copy(tmp_path):
    folder = tmp_path / "store_spark"
    folder.mkdir()
    (folder / "table").write_text("before")
    warehouse.set_aside(folder)
    (folder / "table").write_text("after")
    warehouse.release(folder)
    assert (folder / "table").read_text() == "after" and not warehouse.aside(folder).exists()


def test_a_new_warehouse_is_removed_when_its_first_run_fails(tmp_path):
    folder = tmp_path / "store_spark"
    warehouse.set_aside(folder)
    folder.mkdir()
    (folder / "table").write_text("half built")
    warehouse.put_back(folder)
    assert not folder.exists()


def test_a_copy_left_by_a_killed_run_is_put_back_first(tmp_path):
    folder = tmp_path / "store_spark"
    folder.mkdir()
    (folder / "table").write_text("killed half way")
    warehouse.aside(folder).mkdir()
    (warehouse.aside(folder) / "table").write_text("last good")
    warehouse.set_aside(folder)
    assert (folder / "table").read_text() == "last good"
    assert (warehouse.aside(folder) / "table").read_text() == "last good"


def test_the_marts_replace_every_dbt_schema_of_the_store(tmp_path):
    store = tmp_path / "store.duckdb"
    con = duckdb.connect(str(store))
    for statement in [
        "create schema governance", "create table governance.batches (batch_id int)",
        "create schema marts", "create table marts.mart_old (x int)",
        "create schema intermediate", "create table intermediate.int_x (x int)",
        "create schema staging", "create view staging.stg_x as select 1 as x",
        "create table main.persons (person_id int)",
    ]:  # fmt: skip
        con.execute(statement)
    con.close()
    warehouse.replace_store_marts(store, MARTS)
    con = duckdb.connect(str(store), read_only=True)
    schemas = {
        row[0] for row in con.sql("select schema_name from duckdb_schemas() where not internal").fetchall()
    }
    tables = con.sql("select schema_name || '.' || table_name from duckdb_tables() order by 1").fetchall()
    rows = con.sql("select * from marts.mart_a order by area").fetchall()
    con.close()
    assert schemas == {"governance", "marts"}  # and main, which DuckDB lists as internal
    assert [t for (t,) in tables] == ["governance.batches", "main.persons", "marts.mart_a", "marts.mart_b"]
    assert rows == [("x", 1, 0.5), ("y", 2, None)]


def in_marts(marts: dict) -> dict:
    return {f"marts.{name}": rows for name, rows in marts.items()}


def test_the_digest_finds_an_edited_a_missing_and_an_extra_mart(tmp_path):
    store = tmp_path / "store.duckdb"
    warehouse.replace_store_marts(store, MARTS)
    con = duckdb.connect(str(store), read_only=True)
    try:
        assert warehouse.warehouse_differences(con, in_marts(MARTS), KEY) == []
        edited = {**MARTS, "mart_a": MARTS["mart_a"].set_column(1, "n", pa.array([1, 3]))}
        assert warehouse.warehouse_differences(con, in_marts(edited), KEY) == [
            "Spark warehouse: marts.mart_a: row(s) edited since the audit recorded it (same count, other content)"
        ]
        swapped = {**MARTS, "mart_a": MARTS["mart_a"].set_column(0, "area", pa.array(["y", "x"]))}
        assert len(warehouse.warehouse_differences(con, in_marts(swapped), KEY)) == 1  # rows' values bound
        assert warehouse.warehouse_differences(con, in_marts({"mart_a": MARTS["mart_a"]}), KEY) == [
            "Spark warehouse: marts.mart_b: 2 row(s) deleted since the audit recorded it"
        ]
        extra = {**MARTS, "mart_c": pa.table({"x": [1]})}
        assert warehouse.warehouse_differences(con, in_marts(extra), KEY) == [
            "Spark warehouse: marts.mart_c: 1 row(s) added that no audit entry accounts for"
        ]
    finally:
        con.close()


STORE_TABLES = [
    "create schema governance",
    "create table governance.audit_log (seq bigint, mac varchar, ts timestamptz)",
    "insert into governance.audit_log values (1, 'a1', '2025-04-01 09:30:00+00'), (2, 'b2', '2025-04-02 10:00:00+00')",
    "create table governance.batches (batch_id bigint, feed varchar, loaded_at timestamptz)",
    "insert into governance.batches values (1, 'gp', '2025-04-01 09:00:00+00')",
    "create table main.persons (person_id bigint, sex varchar, born date)",
    "insert into main.persons values (10, 'F', '1950-01-01'), (11, 'M', null)",
    "create table governance.alembic_version (version_num varchar)",  # Alembic's, not a table of models/
    "insert into governance.alembic_version values ('0001')",
    "create schema linkage",
    "create table linkage.person_keys (person_id bigint, nhs_number_token varchar)",
    "insert into linkage.person_keys values (10, 'tok')",
]


@pytest.fixture
def store_and_copy(tmp_path):
    """A store with analyst, governance (the chain among them) and linkage tables, and a copy of its
    analyst and governance tables as Spark leaves them: Parquet files, time stamps without their zone
    (Spark's TIMESTAMP_NTZ in UTC: ldm.spark.tables), columns in the models' order."""
    store = tmp_path / "store.duckdb"
    con = duckdb.connect(str(store))
    con.execute("set TimeZone = 'Europe/London'")  # the store's zone is not the copy's
    for statement in STORE_TABLES:
        con.execute(statement)
    files = {}
    for table, select in [
        ("governance.audit_log", "select seq, mac, timezone('UTC', ts) as ts from governance.audit_log"),
        ("governance.batches",
         "select batch_id, feed, timezone('UTC', loaded_at) as loaded_at from governance.batches"),
        ("main.persons", "select born, sex, person_id from main.persons"),  # another column order
    ]:  # fmt: skip
        path = tmp_path / f"{table}.parquet"
        con.execute(f"copy ({select}) to '{path}' (format parquet)")
        files[table] = [str(path)]
    con.close()
    return store, files, tmp_path


def compared(store: Path, tables: dict, scratch: Path) -> list[str]:
    """warehouse_differences between the `store` and the warehouse's `tables`."""
    con = duckdb.connect(str(store), read_only=True)
    try:
        return warehouse.warehouse_differences(con, tables, KEY, scratch=scratch)
    finally:
        con.close()


def test_the_stores_tables_and_its_chain_copied_to_spark_equal_the_store(store_and_copy):
    store, files, scratch = store_and_copy
    assert compared(store, files, scratch) == []
    assert compared(store, files, scratch) == []  # again, on the same scratch folder
    assert not list(scratch.glob("warehouse-check*"))  # the scratch database is removed


@pytest.mark.parametrize(
    ("table", "select", "found"),
    [
        ("main.persons", "select born, 'M' as sex, person_id from main.persons",
         "main.persons: row(s) edited since the audit recorded it (same count, other content)"),
        ("main.persons", "select born, sex, person_id::double as person_id from main.persons",
         "main.persons: row(s) edited since the audit recorded it (same count, other content)"),
        ("governance.audit_log", "select seq, mac, timezone('UTC', ts) as ts from governance.audit_log where seq = 1",
         "governance.audit_log: 1 row(s) deleted since the audit recorded it"),
        ("governance.audit_log", "select seq + 1 as seq, mac, timezone('UTC', ts) as ts from governance.audit_log",
         "governance.audit_log: row(s) edited since the audit recorded it (same count, other content)"),
        ("governance.batches", "select batch_id, feed, timezone('UTC', loaded_at) + interval 1 hour as loaded_at "
         "from governance.batches",
         "governance.batches (batch 1): row(s) edited since the audit recorded it (same count, other content)"),
    ],
)  # fmt: skip
def test_an_edited_table_or_chain_in_the_warehouse_is_named(store_and_copy, table, select, found):
    """A value, a type, a chain entry or a time stamp changed in the copy is named; so is the chain
    itself (governance.audit_log), which the store seals by its MAC rather than by a digest."""
    store, files, scratch = store_and_copy
    edited = scratch / "edited.parquet"
    con = duckdb.connect(str(store), read_only=True)
    con.execute(f"copy ({select}) to '{edited}' (format parquet)")
    con.close()
    assert compared(store, {**files, table: [str(edited)]}, scratch) == [f"Spark warehouse: {found}"]


def test_a_copied_table_missing_from_the_warehouse_is_named_and_linkage_is_not_expected(store_and_copy):
    store, files, scratch = store_and_copy
    fewer = {name: rows for name, rows in files.items() if name != "main.persons"}
    assert compared(store, fewer, scratch) == [
        "Spark warehouse: main.persons: 2 row(s) deleted since the audit recorded it"
    ]  # and nothing of linkage.person_keys, which is never copied, nor of Alembic's version table


def test_a_table_of_the_warehouse_that_the_store_does_not_copy_is_named_as_added(store_and_copy):
    store, files, scratch = store_and_copy
    extra = {**files, "main.extra": pa.table({"x": [1, 2]})}
    assert compared(store, extra, scratch) == [
        "Spark warehouse: main.extra: 2 row(s) added that no audit entry accounts for"
    ]


def test_an_unreadable_warehouse_file_is_named_in_one_line(store_and_copy):
    store, files, scratch = store_and_copy
    (scratch / "broken.parquet").write_text("not parquet")
    with pytest.raises(LdmError, match=r"^Spark warehouse: main.persons cannot be read: "):
        compared(store, {**files, "main.persons": [str(scratch / "broken.parquet")]}, scratch)


def test_the_spark_tables_are_made_from_the_models_with_their_comments():
    tables = {table.key: table for table in store_tables()}
    assert not any(key.startswith("linkage.") for key in tables)  # the tokens are never copied
    persons = tables["main.persons"].create_sql()
    assert persons.startswith("create table `main`.`persons` (`person_id` bigint comment '")
    assert persons.endswith(f"using parquet comment {escaped_literal(metadata.tables['persons'].comment)}")
    for key, table in tables.items():
        model = metadata.tables[key.removeprefix("main.")]
        for column in model.columns:
            assert f"{backquoted(column.name)} {spark_type(column)}" in table.create_sql(), (key, column.name)


def test_a_comment_with_quotes_and_backslashes_is_one_spark_literal():
    table = StoreTable("main", "t", (("a", "int"), ("b", "string")), r"it's \ odd", ("say 'x'", None))
    assert table.create_sql() == (
        r"create table `main`.`t` (`a` int comment 'say \'x\'', `b` string) using parquet comment 'it\'s \\ odd'"
    )


def test_a_free_metastore_passes_the_check(tmp_path):
    check_metastore_free(tmp_path / "metastore_db")  # none yet
    (tmp_path / "metastore_db").mkdir()
    (tmp_path / "metastore_db" / "dbex.lck").write_text("")  # left by a session that ended
    check_metastore_free(tmp_path / "metastore_db")


def test_a_metastore_held_by_another_process_is_refused(tmp_path):
    import subprocess
    import sys

    database = tmp_path / "metastore_db"
    database.mkdir()
    lock = database / "dbex.lck"
    lock.write_text("")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, os, sys, time\n"
         f"fd = os.open({str(lock)!r}, os.O_RDWR); fcntl.lockf(fd, fcntl.LOCK_EX)\n"
         "print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(LdmError, match="is open in another Spark session"):
            check_metastore_free(database)
    finally:
        holder.kill()
        holder.wait()
    check_metastore_free(database)


@pytest.mark.parametrize(("given", "expected"), [(None, "duckdb"), ("spark", "spark"), ("duckdb", "duckdb")])
def test_the_engine_setting(tmp_path, given, expected):
    settings = load_settings(None, store=tmp_path / "s.duckdb", engine=given)
    assert settings.engine == expected
    assert settings.spark_warehouse() == (tmp_path / "s_spark").resolve()


def test_an_unknown_engine_is_refused(tmp_path):
    with pytest.raises(LdmError, match=r"engine = 'oracle' is not valid \(must be one of duckdb, spark\)"):
        load_settings(None, store=tmp_path / "s.duckdb", engine="oracle")


@pytest.mark.parametrize(
    ("given", "accepted"), [("8g", True), ("8192m", True), ("8 GB", False), ("0g", False), ("g", False)]
)
def test_the_spark_memory_setting(tmp_path, given, accepted):
    if accepted:
        assert load_settings(None, spark_memory=given).spark_memory == given
    else:
        with pytest.raises(LdmError, match="must be a JVM memory size"):
            load_settings(None, spark_memory=given)


@pytest.mark.parametrize(
    ("given", "accepted"),
    [
        ("local[4]", True),
        ("local[*]", True),
        ("local-cluster[2,1,1024]", True),
        ("local[4, 2]", True),  # Spark allows spaces around the commas
        ("local[0]", False),  # Spark refuses to run on no threads
        ("spark://spark-master:7077", True),
        ("yarn", True),
        ("k8s://https://cluster:443", True),
        ("spark-master:7077", False),
        ("local[four]", False),
        ("", False),
    ],
)
def test_the_spark_master_setting(monkeypatch, given, accepted):
    monkeypatch.delenv("LDM_SPARK_MASTER", raising=False)
    assert load_settings(None).spark_master is None  # local[N] on this machine's cores
    if accepted:
        assert load_settings(None, spark_master=given).spark_master == given
        monkeypatch.setenv("LDM_SPARK_MASTER", given)
        assert load_settings(None).spark_master == given
    else:
        with pytest.raises(LdmError, match=f"spark_master = '{re.escape(given)}' is not valid"):
            load_settings(None, spark_master=given)


@pytest.mark.parametrize(
    ("master", "threads"),
    [(None, 8), ("local", 1), ("local[3]", 3), ("local[*]", 8), ("local[4, 2]", 4),
     ("local-cluster[1,2,1024]", None), ("spark://host:7077", None), ("yarn", None)],
)  # fmt: skip
def test_a_local_master_shuffles_into_twice_its_threads_and_a_cluster_into_sparks_own(master, threads):
    assert local_threads(master, cores=8) == threads


@pytest.mark.parametrize(
    ("environment", "options"),
    [({}, [GARBAGE_COLLECTOR]), ({"JDK_JAVA_OPTIONS": "-Xss4m"}, [GARBAGE_COLLECTOR]),
     ({"JDK_JAVA_OPTIONS": "-Xss4m -XX:+UseG1GC"}, []), ({"JAVA_TOOL_OPTIONS": "-XX:+UseZGC"}, []),
     ({"JDK_JAVA_OPTIONS": "-XX:-UseParallelGC"}, [])],
)  # fmt: skip
def test_the_driver_takes_the_parallel_collector_unless_its_environment_chose_one(environment, options):
    assert collector_options(environment) == options
