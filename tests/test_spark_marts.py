"""The same pipeline builds the same marts on Spark as on DuckDB, on the committed sample.

`ldm run --engine spark` runs on the committed sample with the key of the shared `ldm demo` store
(conftest.py, marts built by dbt-duckdb): the same stages up to the marts, with every batch linked on
Spark (the trace steps and Splink's Spark backend, ldm.spark.workspace), then the dbt project
built by dbt-spark on a real local Spark session (ldm.spark.build_marts_spark: the same models,
seeds, data tests and unit tests, with ldm.stats' functions as Spark UDFs and the two Python models
run on the session), its marts copied into the store and sealed, and `ldm audit verify --spark-dir`
checking the warehouse. Then the links, person ids, learnt evidence and trained models are compared
with the DuckDB run's, and every
table of the marts with DuckDB's, row for row: the same rows, keys and counts, and every
floating-point value (rates, intervals, DSRs, life expectancies, indices of inequality) equal
within 1e-9 (relative to the value's size where it is above 1), in the warehouse and in the store.

Two kinds of column are not compared value for value: the build stamp of every mart row (the dbt
invocation, its time and the audit head, which differ between any two builds), and
mart_periods.input_fingerprint, a sum of each engine's own 64-bit row hash (DuckDB's hash(), Spark's
xxhash64; dbt_project/macros/fingerprint.sql): a fingerprint is only ever compared with one the same
engine computed. For it the test checks that it is there for every period and that it tells the
same periods apart on both engines.

One run and one Spark session in the test process serve the module (three to four minutes on two
cores, most of it Spark's fixed cost per query on a small sample); the run is made in the test
process too, so that the module's session reuses its JVM.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from conftest import (
    PERIOD_END,
    assert_stats_grid_is_ldm_stats,
    compiled_stats_grid,
    dbt_node_kinds,
    dbt_unit_tests,
    query,
)
from identifier_scan import key_material, occurring
from test_pseudonymise_extracts import raw_identifiers

from ldm import stats
from ldm.cli import main
from ldm.demo import SAMPLE_DIR, SAMPLE_TODAY
from ldm.marts.build import definitions_digest
from ldm.pseudonymise.keys import AUDIT, load_key
from ldm.spark.build import open_marts, run_dbt_spark
from ldm.spark.tables import source_tables, store_tables
from ldm.spark.warehouse import WAREHOUSE_SCHEMAS, warehouse_differences
from ldm.spark.workspace import DOUBLE_QUOTED, SparkWorkspace
from ldm.sql import backquoted
from models import metadata

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
MARTS = sorted(path.stem for path in (REPO / "dbt_project" / "models" / "marts").rglob("mart_*.sql"))
PYTHON_MODELS = ["int_inequality_indices", "int_life_expectancy"]
BUILD_STAMP = {"dbt_invocation_id", "built_at", "audit_head"}
ENGINE_HASHES = {"mart_periods": {"input_fingerprint"}}
TOLERANCE = 1e-9
SHOWN = 5


LDM = Path(sys.executable).parent / "ldm"  # the console script, as a user runs it


def ldm(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run([LDM, *map(str, args)], capture_output=True, text=True, timeout=1800)


def ldm_here(*args: object) -> tuple[int, str, str]:
    """`ldm ARGS` run in this process (ldm.cli.main, as the console script calls it): its exit status
    and what it printed to stdout and to stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(arg) for arg in args])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def spark_run(demo_key, tmp_path_factory):
    """`ldm run --engine spark` on the committed sample, under the DuckDB store's key, then `ldm audit
    verify --spark-dir` on what it built: (store, warehouse, key file, what the run printed, what
    verify printed). Both run in this process, one after the other, as they would in an operator's
    script: each starts its own Spark session and stops it when done (the embedded metastore admits
    one session at a time), and the JVM the run started, warmed up, then serves the module's session
    too."""
    folder = tmp_path_factory.mktemp("spark_run")
    key_file = demo_key  # the shared demo store's key: it need not be built yet (the tests compare)
    store, warehouse = folder / "store.duckdb", folder / "warehouse"
    # A copy of the sample's extracts: a run writes its quarantine beside them.
    extracts = shutil.copytree(SAMPLE_DIR / "extracts", folder / "extracts")
    code, printed, errors = ldm_here(
        "run", "--engine", "spark", "--spark-dir", warehouse, "--extracts", extracts,
        "--store", store, "--key-file", key_file, "--today", SAMPLE_TODAY.isoformat(),
    )  # fmt: skip
    assert code == 0, errors[-3000:]
    code, verified, errors = ldm_here(
        "audit", "verify", "--store", store, "--key-file", key_file, "--spark-dir", warehouse
    )
    assert code == 0, errors[-3000:]
    return store, warehouse, key_file, printed, verified


@pytest.fixture(scope="module")
def spark_marts(spark_run):
    """The run's Spark warehouse, open on a session in this process (as an analyst's pyspark opens it)."""
    marts = open_marts(spark_run[1])
    yield marts
    marts.close()


def duckdb_table(store: Path, relation: str) -> pa.Table:
    con = duckdb.connect(str(store), read_only=True)
    try:
        return con.sql(f"select * from {relation}").to_arrow_table()
    finally:
        con.close()


def _floats_equal(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= TOLERANCE * max(1.0, abs(a), abs(b))


def differences(name: str, duck: pa.Table, spark: pa.Table, skipped: set[str]) -> list[str]:
    """Every way the Spark table differs from DuckDB's (columns, row count, rows), first rows first."""
    duck_columns = [c for c in duck.column_names if c not in skipped]
    spark_columns = [c for c in spark.column_names if c not in skipped]
    if sorted(duck_columns) != sorted(spark_columns):
        return [f"{name}: columns differ: only DuckDB {sorted(set(duck_columns) - set(spark_columns))}, "
                f"only Spark {sorted(set(spark_columns) - set(duck_columns))}"]  # fmt: skip
    problems = []
    if duck.num_rows != spark.num_rows:
        problems.append(f"{name}: {duck.num_rows} rows on DuckDB, {spark.num_rows} on Spark")
    floats = [c for c in duck_columns if pa.types.is_floating(duck.schema.field(c).type)]
    keys = [c for c in duck_columns if c not in floats]
    columns = keys + floats

    def rows(table: pa.Table) -> list[tuple]:
        """The rows sorted by every column, nulls first (Arrow sorts; a Python sort of 76,000 rows
        by keys made of every value took seconds)."""
        chosen = table.select(columns)
        order = pc.sort_indices(chosen, sort_keys=[(c, "ascending", "at_start") for c in columns])
        ordered = chosen.take(order)
        return list(zip(*(ordered.column(c).to_pylist() for c in columns), strict=True))

    for index, (d, s) in enumerate(zip(rows(duck), rows(spark), strict=False)):
        if d == s:
            continue
        differing = [
            column
            for position, column in enumerate(columns)
            if (d[position] != s[position] if column in keys else not _floats_equal(d[position], s[position]))
        ]
        if differing:
            problems.append(
                f"{name} row {index} (sorted by {', '.join(keys)}) differs in {', '.join(differing)}:\n"
                f"    DuckDB {dict(zip(columns, d, strict=True))}\n    Spark  {dict(zip(columns, s, strict=True))}"
            )
    return problems


def test_the_comparison_shows_the_rows_that_differ():
    duck = pa.table(
        {"area": ["a", "b", "c"], "n": [1, 2, 3], "rate": [0.5, 1e6, None], "built_at": [1, 2, 3]}
    )
    same = pa.table(
        {
            "rate": [1e6 * (1 + 1e-10), 0.5, None],
            "n": [2, 1, 3],
            "area": ["b", "a", "c"],
            "built_at": [4, 5, 6],
        }
    )
    assert differences("t", duck, same, {"built_at"}) == []
    other = pa.table(
        {"area": ["a", "b", "c"], "n": [1, 2, 4], "rate": [0.5 + 1e-8, 1e6, None], "built_at": [1, 2, 3]}
    )
    problems = differences("t", duck, other, {"built_at"})
    assert [problem.splitlines()[0] for problem in problems] == [
        "t row 0 (sorted by area, n) differs in rate:",
        "t row 2 (sorted by area, n) differs in n:",
    ]
    assert "'rate': 0.5" in problems[0] and "'rate': 0.50000001" in problems[0]
    assert differences("t", duck, other.drop_columns(["rate"]), {"built_at"}) == [
        "t: columns differ: only DuckDB ['rate'], only Spark []"
    ]


def marts_of(store: Path) -> list[str]:
    return sorted(
        row[0] for row in query(store, "select table_name from duckdb_tables() where schema_name = 'marts'")
    )


def test_spark_builds_every_mart_of_the_project(spark_run, spark_marts, sample_marts_store):
    store, printed = spark_run[0], spark_run[3]
    assert marts_of(sample_marts_store) == MARTS
    assert spark_marts.tables() == MARTS
    assert marts_of(store) == MARTS  # copied into the store, where the audit sealed them
    (line,) = [line for line in printed.splitlines() if line.startswith("marts: ")]
    assert "(on Spark)" in line and "ERROR=0" in line and "SKIP=0" in line, line
    assert "audit: " in printed and "keyed chain intact" in printed


LINKED_ON_BOTH = {
    "linkage.record_links": "select * from linkage.record_links order by batch_id, row_number",
    "main.persons": "select * from main.persons order by person_id",
    # Evidence is numbered in the order it arrives, and each engine hands its rows back in its own.
    "linkage.person_evidence": "select * exclude (evidence_id, first_seen_at) from linkage.person_evidence"
    " order by all",
    "governance.linkage_models": "select * exclude (trained_at) from governance.linkage_models order by all",
}


@pytest.mark.parametrize("table", LINKED_ON_BOTH)
def test_linkage_on_spark_decides_as_duckdb_does(spark_run, sample_marts_store, table):
    """Every batch was linked on Spark (the run's linkage log says which steps decided): the same
    links and person ids, the same identities learnt, and the same models trained by Splink's Spark
    backend (same model ids: the ids are digests of the trained m and u)."""
    sql = LINKED_ON_BOTH[table]
    rows = query(spark_run[0], sql)
    assert rows and rows == query(sample_marts_store, sql), table


def test_linking_on_spark_leaves_no_token_files_in_the_warehouse(spark_run):
    """The engine's working tables and Splink's intermediate tables (both written from keyed tokens)
    are removed when the run's linking ends."""
    checkpoints = spark_run[1] / "spark" / "checkpoints"
    left = [p for p in checkpoints.rglob("*") if p.name.startswith(("ldm-linkage-", "__splink__"))]
    assert checkpoints.is_dir() and not left, left[:SHOWN]


def test_the_spark_workspace_appends_replaces_and_leaves_nothing(spark_marts):
    """The linkage engine's working tables on Spark: made, added to, read, dropped, and gone with their
    files (and the session's quoting setting put back) when the workspace closes."""
    session = spark_marts.session
    before = session.conf.get(DOUBLE_QUOTED, "false")
    with SparkWorkspace(session) as ws:
        ws.create("w_one", "select 1 as \"id\", 'a' as step")
        ws.append("w_one", "select cast(2 as bigint) as other, 'b'")  # by position, as an insert
        ws.append("w_one", 'select "id" + 10, step from w_one')  # reads the table it adds to
        ws.register("w_given", pa.table({"id": [1, 2]}))
        assert ws.columns("w_one") == ["id", "step"]
        assert session.table("w_one").schema["id"].dataType.typeName() == "integer"  # the table's type
        assert len(ws._files["w_one"]) == 3  # each append wrote only its own rows
        assert sorted(ws.rows("select * from w_one")) == [(1, "a"), (2, "b"), (11, "a"), (12, "b")]
        assert ws.value("select count(*) from w_one join w_given using (id)") == 2
        folder = ws._folder
        assert folder is not None and any(folder.iterdir())
        ws.create("w_two", "select 3 as id")
        ws.drop("w_two")
        with ws.exchange(Path("/elsewhere")) as shared:  # beside the working tables, not the caller's
            assert shared.parent == folder and shared.is_dir()
        assert not shared.exists()
        assert not session.catalog.tableExists("w_two")
    assert not session.catalog.tableExists("w_one") and not session.catalog.tableExists("w_given")
    assert not folder.exists()
    assert session.conf.get(DOUBLE_QUOTED, "false") == before


@pytest.mark.parametrize("mart", MARTS)
def test_each_mart_equals_duckdbs_row_for_row(spark_run, spark_marts, sample_marts_store, mart):
    duck = duckdb_table(sample_marts_store, f"marts.{mart}")
    assert duck.num_rows > 0
    skipped = BUILD_STAMP | ENGINE_HASHES.get(mart, set())
    for where, spark in [
        ("warehouse", spark_marts.read(mart)),
        ("store", duckdb_table(spark_run[0], f"marts.{mart}")),
    ]:
        problems = differences(mart, duck, spark, skipped)
        assert not problems, f"{len(problems)} difference(s) between the engines ({where}):\n" + "\n".join(
            problems[:SHOWN]
        )


def test_audit_verify_checks_the_warehouse(spark_run):
    warehouse, verified = spark_run[1], spark_run[4]
    assert "audit intact" in verified
    copied = len(store_tables())
    assert (
        f"Spark warehouse {warehouse}: its {len(MARTS)} marts and the store's {copied} tables beside them, the "
        "audit chain among them, hold the rows the chain recorded"
    ) in verified


def test_a_warehouse_open_in_another_session_is_refused_in_one_line(spark_run, spark_marts):
    store, warehouse, key_file = spark_run[:3]
    done = ldm("audit", "verify", "--store", store, "--key-file", key_file, "--spark-dir", warehouse)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith("ldm audit: error: the Spark metastore in "), (
        done.stderr[-2000:]
    )
    assert "is open in another Spark session" in done.stderr


EDITED = (
    "marts.mart_prevalence",
    "main.persons",
    "governance.audit_log",
)  # by the tests below, then put back


@pytest.fixture(scope="module")
def warehouse_files(spark_marts):
    """What `ldm audit verify --spark-dir` reads of the warehouse as the run left it, read once."""
    return spark_marts.warehouse_files()


def now(warehouse_files: dict, session) -> dict:
    """The warehouse's tables as they are now: those the tests edit (whose files an edit replaces)
    read again through the session."""
    return {**warehouse_files, **{table: session.table(table).toArrow() for table in EDITED}}


def test_an_edited_or_missing_warehouse_mart_is_named(spark_run, spark_marts, warehouse_files):
    """A value changed in a mart of the warehouse (through Spark, as an intruder with access to it
    would) is found by the keyed digest; so is a mart dropped from it."""
    store, _, key_file = spark_run[:3]
    audit_key = load_key(key_file).purpose_key(AUDIT)
    session, table, files = spark_marts.session, EDITED[0], warehouse_files
    original = session.table(table).toArrow()
    con = duckdb.connect(str(store), read_only=True)
    try:
        assert warehouse_differences(con, now(files, session), audit_key) == []
        rows = original.to_pylist()
        rows[0]["numerator"] += 1
        edited = pa.Table.from_pylist(rows, schema=original.schema)
        session.createDataFrame(edited).write.mode("overwrite").insertInto(table)
        found = warehouse_differences(con, now(files, session), audit_key)
        assert found and all(text.startswith("Spark warehouse: marts.mart_prevalence") for text in found), (
            found
        )
        assert any("row(s) edited" in text for text in found), found
        fewer = {name: rows for name, rows in now(files, session).items() if name != "marts.mart_mortality"}
        missing = warehouse_differences(con, fewer, audit_key)
        assert any(
            text.startswith("Spark warehouse: marts.mart_mortality") and "deleted" in text for text in missing
        )
    finally:
        session.createDataFrame(original).write.mode("overwrite").insertInto(table)
    try:
        assert warehouse_differences(con, now(files, session), audit_key) == []
    finally:
        con.close()


@pytest.mark.parametrize(("table", "column"), [(EDITED[1], "imd_decile"), (EDITED[2], "entry_hash")])
def test_an_edited_person_row_or_audit_entry_in_the_warehouse_is_named(
    spark_run, spark_marts, warehouse_files, table, column
):
    """The store's tables live beside the marts in the warehouse, the audit chain among them, and an
    edit made there through Spark is named by `ldm audit verify --spark-dir`, as one in the store is."""
    store, _, key_file = spark_run[:3]
    session = spark_marts.session
    original = session.table(table).toArrow()
    rows = original.to_pylist()
    kind = original.schema.field(column).type
    rows[0][column] = (rows[0][column] or 0) % 10 + 1 if pa.types.is_integer(kind) else "x" * 64
    audit_key = load_key(key_file).purpose_key(AUDIT)
    con = duckdb.connect(str(store), read_only=True)
    try:
        session.createDataFrame(pa.Table.from_pylist(rows, schema=original.schema)).write.mode(
            "overwrite"
        ).insertInto(table)
        found = warehouse_differences(con, now(warehouse_files, session), audit_key)
        assert [text.split(":")[1].split(" (")[0].strip() for text in found] == [table], found
    finally:
        con.close()
        session.createDataFrame(original).write.mode("overwrite").insertInto(table)


def test_no_identifier_or_key_reaches_the_warehouse_or_its_logs(spark_run, spark_marts):
    """The warehouse now holds the store's analyst and governance tables beside the marts: none of
    their text columns holds an identifier the extracts carried or the key, and neither do the
    session's and dbt's files in the warehouse folder."""
    _, warehouse, key_file = spark_run[:3]
    identifiers = raw_identifiers(warehouse.parent / "extracts", dates_of_birth=False)
    secrets = key_material(key_file)
    session, scanned = spark_marts.session, 0
    for database in WAREHOUSE_SCHEMAS:
        for table in session.catalog.listTables(database):
            if table.isTemporary:
                continue
            rows = session.table(f"{database}.{table.name}").toArrow()
            for field in rows.schema:
                if pa.types.is_string(field.type) or pa.types.is_large_string(field.type):
                    values = set(rows.column(field.name).unique().to_pylist())
                    assert not values & (identifiers | secrets), (database, table.name, field.name)
                    scanned += 1
    assert scanned > 50
    # Not the Parquet data and Derby metastore (binary; the columns are checked above), nor dbt's
    # inserts of the public reference seeds (practices' own names and postcodes), which the store's
    # own scan leaves out too (test_run.py).
    texts = [
        path
        for path in warehouse.rglob("*")
        if path.is_file()
        and not {"warehouse", "metastore"} & set(path.relative_to(warehouse).parts)
        and not (path.relative_to(warehouse).parts[0] == "target" and "reference" in path.parts)
    ]
    assert texts
    for path in texts:
        text = path.read_bytes().decode(errors="replace")
        assert not occurring((v for v in identifiers | secrets if len(v) >= 6), text), path


def test_engine_hashes_are_present_and_tell_the_same_periods_apart(spark_marts, sample_marts_store):
    """input_fingerprint differs between the engines by design; what it is for must hold on both."""
    for mart, columns in ENGINE_HASHES.items():
        duck, spark = duckdb_table(sample_marts_store, f"marts.{mart}"), spark_marts.read(mart)
        for column in columns:
            by_period = []
            for table in (duck, spark):
                keys = zip(
                    table.column("period_type").to_pylist(),
                    table.column("period_end").to_pylist(),
                    strict=True,
                )
                values = dict(zip(keys, table.column(column).to_pylist(), strict=True))
                assert None not in values.values()
                groups: dict = {}
                for period, value in values.items():
                    groups.setdefault(value, set()).add(period)
                by_period.append(sorted(sorted(group) for group in groups.values()))
            assert by_period[0] == by_period[1]


@pytest.mark.parametrize("model", PYTHON_MODELS)
def test_the_python_models_ran_on_spark_with_duckdbs_results(spark_marts, sample_marts_store, model):
    duck = duckdb_table(sample_marts_store, f"intermediate.{model}")
    spark = spark_marts.session.table(f"intermediate.{model}").toArrow()
    problems = differences(model, duck, spark, set())
    assert not problems, "\n".join(problems[:SHOWN])


def test_the_store_is_copied_whole_but_for_its_tokens(spark_run, spark_marts):
    """Every table of the store's analyst and governance schemas is in the warehouse with the store's
    rows (dbt's sources among them); the linkage schema, which holds the tokens, is not."""
    names = [table.key for table in store_tables()]
    assert {table.key for table in source_tables()} <= set(names)
    assert {
        "main.persons",
        "main.spell_procedures",
        "governance.audit_log",
        "governance.linkage_models",
    } <= set(names)
    for name in names:
        rows = spark_marts.session.table(name).count()
        assert query(spark_run[0], f"select count(*) from {name}") == [(rows,)], name
    assert not spark_marts.session.catalog.databaseExists("linkage")  # tokens stay in the store
    # Made from the models, with their documentation: an analyst's `describe` on Spark shows it.
    described = {
        row["col_name"]: row["comment"] for row in spark_marts.session.sql("describe main.persons").collect()
    }
    assert described["person_id"] == metadata.tables["persons"].columns["person_id"].comment


def test_the_stats_functions_on_spark_are_ldm_stats(spark_marts):
    """Spark hands a UDF a DECIMAL literal as decimal.Decimal, and calls it on rows a CASE discards."""
    (row,) = spark_marts.session.sql(
        "select wilson_lower(87, 131, 0.95) as wl, wilson_upper(87, 131, 0.95) as wu, byar_lower(87, 0.95) as bl,"
        " byar_upper(0, 0.95) as bu, byar_upper(null, 0.95) as bn, wilson_lower(132, 131, 0.95) as outside"
    ).collect()
    assert row.wl == stats.wilson_lower(87, 131, 0.95) and row.wu == stats.wilson_upper(87, 131, 0.95)
    assert row.bl == stats.byar_lower(87, 0.95) and row.bu == stats.byar_upper(0, 0.95)
    assert row.bn is None and row.outside is None


@pytest.mark.parametrize("confidence", [0.95, 0.999])
def test_the_sql_spelling_of_the_stats_is_ldm_stats_on_spark(spark_marts, tmp_path_factory, confidence):
    """stats_functions 'sql' (for a SQL endpoint, where no Python UDF can be registered): Spark runs
    the marts' Wilson and Byar formulas in SQL with ldm.stats' results to 1e-12, NULL where it gives
    None (tests/test_stats_sql.py checks the same query on DuckDB)."""
    sql = compiled_stats_grid(tmp_path_factory, "sql", confidence)
    assert "wilson_lower(" not in sql and "byar_upper(" not in sql
    assert_stats_grid_is_ldm_stats([tuple(row) for row in spark_marts.session.sql(sql).collect()], confidence)


@pytest.mark.parametrize("name", ["plain", "it's", "a`b", "``", 'say "hi"', "a.b", "line\nbreak", "café ☕"])
def test_backquoted_round_trips_through_spark(spark_marts, name):
    assert spark_marts.session.sql(f"select 1 as {backquoted(name)}").columns == [name]


def test_the_driver_runs_the_throughput_collector(spark_marts):
    """ldm starts the driver's JVM with the parallel collector rather than Java's default G1
    (ldm.spark.session.GARBAGE_COLLECTOR): less CPU for the same work."""
    management = spark_marts.session.sparkContext._jvm.java.lang.management.ManagementFactory
    assert {bean.getName() for bean in management.getGarbageCollectorMXBeans()} == {
        "PS Scavenge",
        "PS MarkSweep",
    }


def test_great_expectations_still_imports_in_a_python_c_process():
    """With pyspark installed, Great Expectations imports pyspark.sql.connect, which ends a process
    whose __main__ has no file (python -c, pytest-xdist's workers) with exit status 0 unless Spark
    Connect's client packages are there too (the spark extra installs them)."""
    code = "import great_expectations; print('imported')"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "imported", done.stderr[-2000:]


def test_spark_leaves_nothing_in_the_repository_or_the_working_directory(spark_marts):
    for folder in {REPO, Path(os.getcwd())}:
        for name in ("spark-warehouse", "metastore_db", "derby.log"):
            assert not (folder / name).exists(), folder / name


def test_every_dbt_unit_test_passes_on_spark(spark_run, spark_marts, tmp_path_factory):
    """The unit tests beside the marts, on Spark's SQL (the run left them out, as a production build
    does)."""
    assert dbt_node_kinds(spark_run[1] / "target") == {"model", "seed", "test"}
    work = tmp_path_factory.mktemp("spark_unit_tests")
    variables = {"definitions_digest": definitions_digest(), "reporting_period_end": PERIOD_END.isoformat()}
    summary = run_dbt_spark(
        variables, work, full_refresh=False, select=["test_type:unit"], unit_tests=True, command="test"
    )
    declared = len(dbt_unit_tests())
    assert summary == f"PASS={declared} WARN=0 ERROR=0 SKIP=0 TOTAL={declared}", summary


def test_a_second_build_keeps_the_built_periods(spark_marts, tmp_path_factory):
    """The incremental path on Spark: int_periods reads mart_periods back from the warehouse, finds
    every period built under the same definitions from the same records, and the mart's
    insert_overwrite then replaces no period (its build reason stays the first build's)."""
    before = sorted(
        spark_marts.read("mart_periods").select(["period_type", "period_end", "build_reason"]).to_pylist(),
        key=str,
    )
    work = tmp_path_factory.mktemp("spark_rebuild")
    variables = {"definitions_digest": definitions_digest(),
                 "reporting_period_end": PERIOD_END.isoformat()}  # fmt: skip
    run_dbt_spark(variables, work, full_refresh=False, select=["int_periods", "mart_periods"])
    to_build = spark_marts.session.sql(
        "select count(*) as n from intermediate.int_periods where to_build"
    ).collect()
    assert to_build[0].n == 0
    after = sorted(
        spark_marts.read("mart_periods").select(["period_type", "period_end", "build_reason"]).to_pylist(),
        key=str,
    )
    assert after == before and {row["build_reason"] for row in after} == {"full refresh"}
