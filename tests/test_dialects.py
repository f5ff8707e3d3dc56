"""The engine seam (ldm.dialects): DuckDB's spelling of each construct gives the value it promises on a
tiny in-memory table; Spark's spelling is checked as text (no Spark here), and where it writes a
meaning out in plain SQL (DuckDB's whole years) that SQL is run on DuckDB against DuckDB's own
function. Last, no DuckDB-only construct is written in the pipeline's Python outside the dialects.
"""

from __future__ import annotations

import ast
import datetime
import re
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ldm import dialects
from ldm.dialects import NotExpressible
from ldm.dialects.spark import java_pattern
from ldm.sql import WorkingTable, backquoted, escaped_literal

DUCKDB = dialects.DIALECTS["duckdb"]
SPARK = dialects.DIALECTS["spark"]
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def con():
    con = duckdb.connect()
    con.execute(
        """create table t as select * from (values
             (1, 'a', 10, date '2020-01-31', 'x'),
             (1, 'b', 30, null,              null),
             (2, 'c', 20, date '2021-02-28', 'y'),
             (2, 'd', null, date '2019-06-01', 'z')) v(g, s, n, d, w)"""
    )
    return con


def value(con, sql: str):
    return con.execute(sql).fetchall()


# (name, the DuckDB SQL built through the dialect, expected rows)
CASES = [
    ("arg_max", f"select g, {DUCKDB.arg_max('s', 'n')} from t group by g order by g", [(1, "b"), (2, "c")]),
    (
        "row_key puts a missing field last",
        f"select g, {DUCKDB.arg_max('s', DUCKDB.row_key(['d', 'n']))} from t group by g order by g",
        [(1, "b"), (2, "c")],
    ),
    (
        "date_number_key orders as row_key does",
        f"select g, {DUCKDB.arg_max('s', DUCKDB.date_number_key('d', 'n'))} from t where n is not null "
        "group by g order by g",
        [(1, "b"), (2, "c")],
    ),
    (
        "anti_join",
        f"select s from t {DUCKDB.anti_join()} (select 1 as g) u using (g) order by s",
        [("c",), ("d",)],
    ),
    (
        "semi_join",
        f"select s from t {DUCKDB.semi_join()} (select 1 as g) u using (g) order by s",
        [("a",), ("b",)],
    ),
    ("pair_in", f"select s from t where {DUCKDB.pair_in(['g', 'n'], '(select 2 as g, 20 as n)')}", [("c",)]),
    (
        "pair_in negated",
        f"select count(*) from t where {DUCKDB.pair_in(['g', 's'], '(select 1 as g, ' + repr('a') + ' as s)', True)}",
        [(3,)],
    ),
    (
        "first_per_group",
        DUCKDB.first_per_group("g, s", "t", "g", "n desc nulls last", ["g", "s"]) + " order by g",
        [(1, "b"), (2, "c")],
    ),
    (
        "first_per_group distinct",
        DUCKDB.first_per_group("g", "t", "s", "n", ["g"], distinct=True) + " order by g",
        [(1,), (2,)],
    ),
    (
        "star_except",
        f"select {DUCKDB.star_except(['s', 'n', 'd'], ['g', 's', 'n', 'd', 'w'])} from t limit 1",
        [(1, "x")],
    ),
    (
        "star_replace",
        f"select {DUCKDB.star_replace('t', {'n': 'n * 2'}, ['g', 's', 'n', 'd', 'w'])} from t where s = 'a'",
        [(1, "a", 20, datetime.date(2020, 1, 31), "x")],
    ),
    (
        "union_all_by_name",
        DUCKDB.union_all_by_name([("select 1 as a, 2 as b", ["a", "b"]), ("select 3 as b", ["b"])])
        + " order by b",
        [(1, 2), (None, 3)],
    ),
    ("order_by_all", f"select g, s from t {DUCKDB.order_by_all(['g', 's'])} limit 1", [(1, "a")]),
    (
        "collect_structs and explode",
        f"select e.k from (select {DUCKDB.explode('l')} as e from "
        f"(select {DUCKDB.collect_structs({'k': 's'})} as l from t)) order by 1",
        [("a",), ("b",), ("c",), ("d",)],
    ),
    (
        "unpivot",
        f"select position, value from (select {DUCKDB.unpivot(['s', 'w'])} from t where s = 'a') order by 1",
        [(0, "a"), (1, "x")],
    ),
    ("array", f"select {DUCKDB.array(['s', 'w'])} from t where s = 'a'", [(["a", "x"],)]),
    ("distinct_in_range", f"select {DUCKDB.distinct_in_range('n', 10, 40)} from t", [(3,)]),
    ("string_agg_sorted", f"select {DUCKDB.string_agg_sorted('s', '; ')} from t", [("a; b; c; d",)]),
    ("quantile_disc", f"select {DUCKDB.quantile_disc('n', 0.5)} from t", [(20,)]),
    (
        "row_number_unordered",
        f"select max(n) from (select {DUCKDB.row_number_unordered()} as n from t)",
        [(4,)],
    ),
    ("as_text", f"select {DUCKDB.as_text('n')} from t where s = 'a'", [("10",)]),
    ("type_name", f"select cast(n as {DUCKDB.type_name('varchar')}) from t where s = 'c'", [("20",)]),
    (
        "hash64 is a hash of the values",
        f"select {DUCKDB.hash64(['g', 's'])} = {DUCKDB.hash64(['g', 's'])}, "
        f"{DUCKDB.hash64(['g'])} <> {DUCKDB.hash64(['s'])} from t limit 1",
        [(True, True)],
    ),
    ("digest63 is non-negative", f"select min({DUCKDB.digest63(['g', 's'])}) >= 0 from t", [(True,)]),
    ("integer_divide truncates toward zero", f"select {DUCKDB.integer_divide('-7', '2')}, 7 // 2", [(-3, 3)]),
    (
        "full_match",
        f"select {DUCKDB.full_match(repr('123'), '[0-9]+')}, {DUCKDB.full_match(repr('12a'), '[0-9]+')}",
        [(True, False)],
    ),
    (
        "try_parse_timestamp",
        f"select {DUCKDB.try_parse_timestamp(repr('31/01/2020'), '%d/%m/%Y')}, "
        f"{DUCKDB.try_parse_timestamp(repr('2020-01-31'), '%d/%m/%Y')}",
        [(datetime.datetime(2020, 1, 31), None)],
    ),
    (
        "format_timestamp",
        "select " + DUCKDB.format_timestamp("timestamp '2020-01-31 10:11:12'", "%Y-%m-%dT%H:%M:%S"),
        [("2020-01-31T10:11:12",)],
    ),
    (
        "whole_years counts a month end as complete",
        "select "
        + DUCKDB.whole_years("date '2000-02-29'", "date '2001-02-28'")
        + ", "
        + DUCKDB.whole_years("date '2000-03-31'", "date '2001-02-28'"),
        [(1, 0)],
    ),
    (
        "days_between",
        "select " + DUCKDB.days_between("date '2020-02-27'", "timestamp '2020-03-01 10:00'"),
        [(3,)],
    ),
    (
        "days_before",
        "select "
        + DUCKDB.days_before("date '2020-03-01'", "1", False)
        + ", "
        + DUCKDB.days_before("timestamp '2020-03-01 10:00'", "2", True),
        [(datetime.date(2020, 2, 29), datetime.datetime(2020, 2, 28, 10, 0))],
    ),
]


@pytest.mark.parametrize(("name", "sql", "expected"), CASES, ids=[case[0] for case in CASES])
def test_duckdb_spelling_gives_its_value(con, name, sql, expected):
    assert value(con, sql) == expected


def test_duckdb_reads_and_writes_files(con, tmp_path):
    awkward = tmp_path / "it's.parquet"
    pq.write_table(pa.table({"a": [1, 2]}), awkward)
    assert value(con, f"select sum(a) from {DUCKDB.parquet(awkward)}") == [(3,)]
    con.execute(DUCKDB.write_parquet("select 5 as a", tmp_path / "out.parquet", "zstd"))
    con.execute(DUCKDB.write_csv("select 5 as a, 'x' as b", tmp_path / "out.csv"))
    assert value(con, f"select * from {DUCKDB.parquet(tmp_path / 'out.parquet')}") == [(5,)]
    assert (tmp_path / "out.csv").read_text() == "a,b\n5,x\n"
    assert value(con, f"select * from {DUCKDB.csv(tmp_path / 'out.csv', header=True, all_varchar=True)}") == [
        ("5", "x")
    ]
    assert [row[0] for row in value(con, DUCKDB.describe("t"))] == ["g", "s", "n", "d", "w"]
    assert value(con, f"select min({DUCKDB.row_id()}) from t") == [(0,)]


# (what, the Spark SQL built through the dialect, the text expected)
SPARK_CASES = [
    ("parquet", SPARK.parquet("/data/it's `x`.parquet"), "parquet.`/data/it's ``x``.parquet`"),
    ("describe", SPARK.describe("t"), "describe query select * from t"),
    ("anti_join", SPARK.anti_join(), "left anti join"),
    ("semi_join", SPARK.semi_join(), "left semi join"),
    ("pair_in", SPARK.pair_in(["a", "b"], "r"), "(a, b) in (select a, b from r)"),
    ("pair_in negated", SPARK.pair_in(["a", "b"], "r", True), "(a, b) not in (select a, b from r)"),
    (
        "first_per_group",
        SPARK.first_per_group("a, b", "t where c", "a", "b desc, coalesce(c, d), e nulls first", ["a", "b"]),
        "select a, b from (select a, b, row_number() over (partition by a order by b desc nulls last, "
        "coalesce(c, d) nulls last, e nulls first) as ldm_first_in_group from t where c) where ldm_first_in_group = 1",
    ),
    ("star_except", SPARK.star_except(["b"], ["a", "b", "c"], "s"), "s.`a`, s.`c`"),
    ("star_replace", SPARK.star_replace("s", {"b": "x + 1"}, ["a", "b"]), "s.`a`, x + 1 as `b`"),
    (
        "union_all_by_name",
        SPARK.union_all_by_name([("select 1 as a", ["a"]), ("select 2 as b", ["b"])]),
        "select `a`, null as `b` from (select 1 as a) union all select null as `a`, `b` from (select 2 as b)",
    ),
    ("order_by_all", SPARK.order_by_all(["a", "b"]), "order by `a` nulls last, `b` nulls last"),
    ("arg_max", SPARK.arg_max("v", "k"), "max_by(v, k)"),
    ("row_key", SPARK.row_key(["a", "b"]), "struct(a is null, a, b is null, b)"),
    ("date_number_key", SPARK.date_number_key("d", "n"), "struct(d is null, d, n is null, n)"),
    ("collect_structs", SPARK.collect_structs({"a": "x.a"}), "collect_list(named_struct('a', x.a))"),
    ("explode", SPARK.explode("l"), "explode(l)"),
    ("unpivot", SPARK.unpivot(["a", "b"]), "posexplode(array(a, b)) as (position, value)"),
    ("array", SPARK.array(["a", "b"]), "array(a, b)"),
    ("distinct_in_range", SPARK.distinct_in_range("k", 0, 9), "count(distinct k)"),
    (
        "string_agg_sorted",
        SPARK.string_agg_sorted("r", "; "),
        "case when count(r) > 0 then array_join(array_sort(collect_list(r)), '; ') end",
    ),
    ("quantile_disc", SPARK.quantile_disc("w", 0.5), "percentile_disc(0.5) within group (order by w)"),
    (
        "row_number_unordered",
        SPARK.row_number_unordered(),
        "row_number() over (order by monotonically_increasing_id())",
    ),
    ("type_name varchar", SPARK.type_name("varchar"), "string"),
    ("type_name hugeint", SPARK.type_name("hugeint"), "decimal(38, 0)"),
    ("as_text", SPARK.as_text("n"), "cast(n as string)"),
    ("hash64", SPARK.hash64(["a", "b"]), "xxhash64(a, b)"),
    ("digest63", SPARK.digest63(["a"]), "(xxhash64(a) & 9223372036854775807)"),
    ("integer_divide", SPARK.integer_divide("a", "2"), "a div 2"),
    ("full_match", SPARK.full_match("c", "[0-9]+"), "(c rlike '^(?:[0-9]+)\\\\z')"),
    ("try_parse_timestamp", SPARK.try_parse_timestamp("c", "%d/%m/%Y"), "try_to_timestamp(c, 'dd/MM/yyyy')"),
    (
        "format_timestamp",
        SPARK.format_timestamp("c", "%Y-%m-%dT%H:%M"),
        "date_format(c, 'yyyy-MM-dd\\'T\\'HH:mm')",
    ),
    ("days_between", SPARK.days_between("a", "b"), "datediff(b, a)"),
    ("days_before date", SPARK.days_before("d", "n", False), "date_sub(d, n)"),
    ("days_before timestamp", SPARK.days_before("t", "n", True), "t - make_interval(0, 0, 0, n)"),
    (
        "write_parquet",
        SPARK.write_parquet("select 1", "/out/x", "zstd"),
        "insert overwrite directory '/out/x' using parquet options (compression 'zstd') select 1",
    ),
    (
        "write_csv",
        SPARK.write_csv("select 1", "/out/it's"),
        "insert overwrite directory '/out/it\\'s' using csv options (header 'true') select 1",
    ),
]


@pytest.mark.parametrize(("what", "sql", "expected"), SPARK_CASES, ids=[case[0] for case in SPARK_CASES])
def test_spark_spelling(what, sql, expected):
    assert sql == expected


@pytest.mark.parametrize(
    "call",
    [
        lambda: SPARK.row_id(),
        lambda: SPARK.csv("x.csv", header=True),
        lambda: SPARK.parquet("x/*.parquet", union_by_name=True),
    ],
    ids=["row_id", "csv with header", "parquet by name"],
)
def test_spark_says_what_it_cannot_express(call):
    with pytest.raises(NotExpressible, match="Spark"):
        call()


def test_every_dialect_spells_every_construct():
    for dialect in dialects.DIALECTS.values():
        assert not getattr(type(dialect), "__abstractmethods__", None), dialect.name


def test_spark_whole_years_mean_what_duckdb_computes():
    """Spark's whole years are written out as date arithmetic; run on DuckDB (`div` as `//`), they
    must agree with DuckDB's date_sub on every pair of days of a span, month ends and 29 February too,
    either way round."""
    con = duckdb.connect()
    con.execute(
        """create table days as select cast(d as date) as d
           from range(date '1999-12-25', date '2001-03-05', interval 3 day) r(d)"""
    )
    spark_years = SPARK.whole_years("a.d", "b.d").replace(" div ", " // ")
    pairs, differ = value(
        con,
        f"""select count(*), count(*) filter (where {spark_years} <> {DUCKDB.whole_years("a.d", "b.d")})
            from days a, days b""",
    )[0]
    assert pairs > 20_000 and differ == 0


def test_java_patterns():
    assert java_pattern("%Y%m%d") == "yyyyMMdd"
    assert java_pattern("%d %b %Y at %H:%M") == "dd MMM yyyy' at 'HH:mm"
    assert java_pattern("100%% %Y") == "100% yyyy"
    with pytest.raises(ValueError, match="%Q"):
        java_pattern("%Q")


def test_quoting_helpers():
    assert backquoted("a`b") == "`a``b`"
    assert escaped_literal("it's a \\ b") == "'it\\'s a \\\\ b'"
    table = WorkingTable("lk_spine", "the spine")
    assert table == "lk_spine" and f"from {table}" == "from lk_spine" and table.about == "the spine"


def test_one_place_chooses_the_dialect():
    assert dialects.current() is DUCKDB
    with dialects.using("spark") as chosen:
        assert chosen is SPARK and dialects.current() is SPARK
        from ldm.load.records import digest_sql

        assert digest_sql(["b", "a", "row_number"]) == '(xxhash64("a", "b") & 9223372036854775807)'
    assert dialects.current() is DUCKDB
    with pytest.raises(ValueError, match="no SQL dialect"):
        dialects.use("oracle")


# DuckDB-only spellings that the pipeline's Python reaches only through ldm.dialects, and the
# modules that are DuckDB by design (each with why) where they may still be written.
DUCKDB_ONLY = {
    "read_parquet": r"\bread_parquet\s*\(",
    "arg_max": r"\barg_(max|min)\s*\(",
    "qualify": r"\bqualify\b",
    "unnest": r"\bunnest\s*\(",
    "anti or semi join": r"\b(anti|semi)\s+join\b",
    "strptime or strftime": r"\b(try_)?strptime\s*\(|\bstrftime\s*\(",
    "select * exclude or replace": r"\*\s*(exclude|replace)\s*\(",
    "struct_pack": r"\bstruct_pack\b",
    "to_days": r"\bto_days\s*\(",
    "date_sub or date_diff": r"\bdate_(sub|diff)\s*\(",
    "union all by name": r"union\s+all\s+by\s+name",
    "regexp_full_match": r"\bregexp_full_match\b",
    "quantile_disc": r"\bquantile_disc\b",
    "hash": r"(?<![\w.])hash\s*\(",
    ":: cast": r"[\w)?]::\w",
}
DUCKDB_BY_DESIGN = {
    "ldm/governance/digests.py": "the audit's digests rest on DuckDB's own hash (see its docstring)",
    "ldm/benchmark.py": "the DuckDB floor: DuckDB's plain read is the yardstick",
}


def sql_texts(source: str) -> Iterator[tuple[int, str]]:
    """(line, text) of every string constant of a module, f-string parts included, docstrings not."""
    tree = ast.parse(source)
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            yield node.lineno, node.value


def test_duckdb_only_sql_goes_through_the_dialects():
    found = []
    for path in sorted((REPO / "ldm").rglob("*.py")):
        rel = path.relative_to(REPO).as_posix()
        if rel in DUCKDB_BY_DESIGN or rel.startswith(("ldm/dialects/", "ldm/marts/", "ldm/synthetic/")):
            continue
        for number, text in sql_texts(path.read_text(encoding="utf-8")):
            found += [
                f"{rel}:{number}: {name}" for name, pattern in DUCKDB_ONLY.items() if re.search(pattern, text)
            ]
    assert not found, "DuckDB-only SQL outside ldm/dialects:\n" + "\n".join(sorted(set(found)))
