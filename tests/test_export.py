"""`ldm export`, on a real store built by `ldm demo` (with its marts) and the real files it writes.

The checks read the published CSV and Parquet files back, not the export's own working tables, and
compute the groups that add up to a total independently of the code under test. The marts hold a
series of periods: every group is within one period (period_type, period_end).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from ldm.cli import main
from ldm.errors import LdmError
from ldm.export.export import export
from ldm.export.rules import load_rules
from ldm.export.suppress import ROWS, published_sql, suppress
from ldm.marts import stats_udfs

RULES = load_rules()
LOW, HIGH, BASE = RULES.suppress_min, RULES.suppress_max, RULES.round_to
KEYS = {"mart_prevalence": "condition", "mart_utilisation": "measure"}
PERIOD = "period_type, period_end"


@pytest.fixture(scope="module")
def store(sample_marts_store) -> Path:
    return sample_marts_store


@pytest.fixture(scope="module")
def exported(store: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("export") / "publication"
    assert main(["export", "--store", str(store), "--out", str(out)]) == 0
    return out


def published_files(out: Path) -> list[tuple[str, Path]]:
    manifest = json.loads((out / "manifest.json").read_text())
    return [(m["mart"], out / f["file"]) for m in manifest["marts"] for f in m.get("files", [])]


def read(path: Path) -> str:
    """A DuckDB relation over one published file, read as a recipient would: a CSV with the column
    types of its Parquet twin (a column whose every value is suppressed has no type of its own)."""
    if path.suffix != ".csv":
        return f"read_parquet('{path}')"
    twin = path.with_suffix(".parquet")
    if not twin.exists():  # a CSV on its own (the dashboard's): as a recipient would read it
        return f"read_csv('{path}', header = true)"
    types = duckdb.sql(f"describe select * from read_parquet('{twin}')").fetchall()
    declared = ", ".join(f"'{name}': '{kind}'" for name, kind, *_ in types)
    return f"read_csv('{path}', header = true, types = {{{declared}}})"


def scalar(sql: str, con: duckdb.DuckDBPyConnection | None = None):
    con = con or duckdb.connect()
    row = con.execute(sql).fetchone()
    return row[0] if row else None


def test_both_aggregate_marts_are_written_as_csv_and_parquet(exported: Path) -> None:
    names = {path.name for _, path in published_files(exported)}
    assert {"mart_prevalence.csv", "mart_prevalence.parquet", "mart_utilisation.csv"} <= names
    assert "mart_utilisation.parquet" in names
    assert not any("person" in name for name in names)


def test_no_small_count_escapes(store: Path, exported: Path) -> None:
    raw_small = scalar(
        f"select count(*) from marts.mart_prevalence where numerator between {LOW} and {HIGH}",
        duckdb.connect(str(store), read_only=True),
    )
    assert raw_small > 100  # the sample has plenty of small counts for the rules to catch
    suppressed = 0
    for mart, path in published_files(exported):
        for column in RULES.marts[mart].counts:
            flag = column + RULES.flag_suffix
            bad = scalar(
                f"""select count(*) from {read(path)} where {column} is not null
                    and ({column} between 1 and {HIGH} or {column} % {BASE} <> 0 or {column} < 0)"""
            )
            assert bad == 0, f"{path.name}: {bad} published {column} values break the rules"
            # a suppressed value is NULL exactly when its flag is set
            assert scalar(f"select count(*) from {read(path)} where ({column} is null) <> {flag}") == 0
            suppressed += scalar(f"select count_if({flag}) from {read(path)}")
    assert suppressed > 0


def test_csv_and_parquet_hold_the_same_rows(exported: Path) -> None:
    for mart in KEYS:
        csv, parquet = read(exported / f"{mart}.csv"), read(exported / f"{mart}.parquet")
        assert scalar(f"select count(*) from (from {csv} except all from {parquet})") == 0
        assert scalar(f"select count(*) from (from {parquet} except all from {csv})") == 0


def test_rates_from_suppressed_counts_are_suppressed(exported: Path) -> None:
    for mart, path in published_files(exported):
        for rule in RULES.marts[mart].derived:
            hidden = " or ".join(s + RULES.flag_suffix for s in rule.sources)
            if rule.across_by:  # computed from the counts of several rows (gaps, SII): any of them hides it
                partition = ", ".join(rule.across_by)
                hidden = f"bool_or(({rule.across_where}) and ({hidden})) over (partition by {partition})"
            leaked = scalar(
                f"select count(*) from (select {hidden} as hidden, {rule.column} as value from {read(path)} as t) "
                "where hidden and value is not null"
            )
            assert leaked == 0, f"{path.name}: {rule.column} published from a suppressed count"
        published = scalar(
            f"select count(*) from {read(path)} where {RULES.marts[mart].derived[0].column} > 0"
        )
        # Life expectancy needs more than 5,000 person-years: the committed sample's 2,000 people
        # have none to publish (tests/test_dashboard_life_expectancy_rule.py publishes some).
        assert published > 0 or mart == "mart_life_expectancy"


def test_a_listed_person_count_cannot_be_recovered_by_difference(store: Path, exported: Path) -> None:
    """Where numerator and denominator are both published, those not on the register are not few."""
    con = duckdb.connect(str(store), read_only=True)
    small = scalar(
        f"""select count(*) from marts.mart_prevalence as m
            join read_parquet('{exported / "mart_prevalence.parquet"}') as p
                using (period_type, period_end, condition, geography_level, area_code)
            where not p.numerator_suppressed and not p.denominator_suppressed
            and m.denominator - m.numerator between {LOW} and {HIGH}""",
        con,
    )
    assert small == 0


def groups_with_one_suppressed(path: Path, key: str, column: str, group_by: str, where: str) -> int:
    """Groups (rows of one period with equal `key` and `group_by`) of two or more cells with exactly one
    suppressed."""
    return scalar(
        f"""select count(*) from (
                select {group_by} as g from {read(path)} where {where} group by {PERIOD}, {key}, g
                having count(*) >= 2 and count_if({column}_suppressed) = 1)"""
    )


def test_no_group_is_left_with_exactly_one_suppressed_cell(store: Path, exported: Path) -> None:
    for mart, key in KEYS.items():
        for path in (exported / f"{mart}.csv", exported / f"{mart}.parquet"):
            for column in ("numerator", "denominator"):
                # the areas of each level add up to the city; two deciles add up to a quintile
                assert (
                    groups_with_one_suppressed(
                        path, key, column, "geography_level", "geography_level <> 'city'"
                    )
                    == 0
                )
                deciles = "(try_cast(area_code as integer) + 1) // 2"
                assert (
                    groups_with_one_suppressed(path, key, column, deciles, "geography_level = 'imd_decile'")
                    == 0
                )
    con = duckdb.connect(str(store), read_only=True)
    prevalence = exported / "mart_prevalence.parquet"
    for column in ("numerator", "denominator"):
        assert (
            scalar(
                f"""select count(*) from (
                    select {PERIOD}, condition, pcn_code from read_parquet('{prevalence}') as m
                    join staging.stg_reference__practices as p on p.practice_code = m.area_code
                    where geography_level = 'practice' group by all
                    having count(*) >= 2 and count_if({column}_suppressed) = 1)""",
                con,
            )
            == 0
        )
    # outpatient appointments (the DNA rate's denominator) = attendances + DNAs, in every area
    utilisation = exported / "mart_utilisation.parquet"
    assert (
        scalar(
            f"""select count(*) from (
                select {PERIOD}, geography_level, area_code,
                    count_if(measure = 'outpatient_dna_rate' and denominator_suppressed)
                    + count_if(measure = 'outpatient_dna_rate' and numerator_suppressed)
                    + count_if(measure = 'outpatient_attendances' and numerator_suppressed) as hidden
                from read_parquet('{utilisation}') group by all) where hidden = 1"""
        )
        == 0
    )


def test_inequalities_keep_the_suppression_of_the_cells_they_republish(store: Path, exported: Path) -> None:
    path = exported / "mart_inequalities.parquet"
    if not path.exists():
        pytest.skip("this store has no mart_inequalities")
    for column in ("numerator", "denominator"):
        scale = "indicator_domain, indicator, value_type, imd_scale"
        assert groups_with_one_suppressed(path, scale, column, "0", "true") == 0
        quintile = "(imd_group + 1) // 2"
        assert groups_with_one_suppressed(path, scale, column, quintile, "imd_scale = 'imd_decile'") == 0
        for source, key in KEYS.items():
            shown_here = scalar(
                f"""select count(*) from read_parquet('{path}') as i
                    join read_parquet('{exported / f"{source}.parquet"}') as s
                    on s.period_type = i.period_type and s.period_end = i.period_end
                    and s.{key} = i.indicator and s.geography_level = i.imd_scale
                    and s.area_code = cast(i.imd_group as varchar)
                    where s.{column}_suppressed and not i.{column}_suppressed"""
            )
            assert shown_here == 0, f"{source} suppresses {column} cells that mart_inequalities publishes"
    # the SII comes from every group of its scale
    assert (
        scalar(
            f"""select count(*) from (
                select bool_or(numerator_suppressed or denominator_suppressed) as hidden, count(sii) as shown
                from read_parquet('{path}') group by {PERIOD}, indicator_domain, indicator, value_type, imd_scale)
                where hidden and shown > 0"""
        )
        == 0
    )


def test_the_manifest_matches_the_files_the_rules_and_the_store(store: Path, exported: Path) -> None:
    manifest = json.loads((exported / "manifest.json").read_text())
    for mart in manifest["marts"]:
        for entry in mart.get("files", []):
            path = exported / entry["file"]
            assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"]
            rows = pq.read_metadata(path).num_rows if path.suffix == ".parquet" else None
            rows = rows if rows is not None else scalar(f"select count(*) from {read(path)}")
            assert rows == entry["rows"] == mart["rows"]
    assert manifest["rules"]["sha256"] == hashlib.sha256(RULES.path.read_bytes()).hexdigest()
    assert manifest["rules"]["version"] == RULES.version
    head = scalar(
        "select entry_hash from governance.audit_log order by seq desc limit 1",
        duckdb.connect(str(store), read_only=True),
    )
    assert manifest["store"]["audit_head"] == head
    assert manifest["store"]["batches_loaded"] > 0
    listed = {entry["file"] for mart in manifest["marts"] for entry in mart.get("files", [])}
    assert listed | {"manifest.json"} == {path.name for path in exported.iterdir()}


def test_person_level_export_is_refused(store: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "leak"
    code = main(["export", "--store", str(store), "--out", str(out), "--mart", "mart_person_analysis"])
    assert code == 2
    error = capsys.readouterr().err
    assert "mart_person_analysis is person-level" in error and len(error.strip().splitlines()) == 1
    assert not out.exists()


def test_user_mistakes_are_one_line_errors(store: Path, tmp_path: Path) -> None:
    with pytest.raises(LdmError, match="no store at"):
        export(tmp_path / "missing.duckdb", tmp_path / "out")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "old.csv").write_text("x\n")
    with pytest.raises(LdmError, match="not an empty folder"):
        export(store, tmp_path / "full")
    with pytest.raises(LdmError, match="no disclosure-control rules for mart_unknown"):
        export(store, tmp_path / "out", marts=["mart_unknown"])


def test_a_store_without_marts_says_how_to_build_them(tmp_path: Path) -> None:
    empty = tmp_path / "empty.duckdb"
    assert main(["db", "upgrade", "--store", str(empty)]) == 0
    with pytest.raises(LdmError, match="build the marts first"):
        export(empty, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_undeclared_columns_stop_a_mart_and_an_unready_optional_mart_is_skipped(
    store: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "store.duckdb"
    shutil.copy(store, copy)
    con = duckdb.connect(str(copy))
    con.execute("drop table if exists marts.mart_inequalities")
    con.execute("create table marts.mart_inequalities as select 'diabetes' as indicator, 3 as numerator")
    con.close()
    result = export(copy, tmp_path / "out")
    assert "mart_inequalities" in result.skipped
    assert not (tmp_path / "out" / "mart_inequalities.csv").exists()
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert {"mart": "mart_inequalities", "skipped": result.skipped["mart_inequalities"]} in manifest["marts"]

    con = duckdb.connect(str(copy))
    con.execute("alter table marts.mart_utilisation add column patients bigint default 3")
    con.close()
    with pytest.raises(LdmError, match=r"columns the rules do not declare \(patients\)"):
        export(copy, tmp_path / "out2")
    assert not (tmp_path / "out2").exists()


# Rows whose store value the rules withhold on purpose (age-standardised rates in the inequalities mart).
WITHHELD_ROWS = {"mart_inequalities": "m.value_type <> 'crude'"}


@pytest.mark.parametrize("mart", ["mart_prevalence", "mart_utilisation", "mart_inequalities"])
def test_each_recompute_expression_on_exact_counts_gives_the_marts_own_value(store: Path, mart: str) -> None:
    """The rules restate the marts' formulas (published values come from rounded counts): on exact
    counts they must give the store's values, so a mart whose formula changes fails here first."""
    con = duckdb.connect(str(store), read_only=True)
    try:
        stats_udfs.register(con)
        for source in (RULES.marts[i.mart] for i in RULES.marts[mart].inherit):
            suppress(con, RULES, source)
        suppress(con, RULES, RULES.marts[mart])
        columns = [r[0] for r in con.execute(f"select * from marts.{mart} limit 0").description]
        sql = published_sql(RULES, RULES.marts[mart], columns, exact=True)
        con.execute(f"create temp table exact as {sql}")
        withheld = WITHHELD_ROWS.get(mart, "false")
        compared = 0
        for rule in (d for d in RULES.marts[mart].derived if d.recompute):
            name = rule.column
            differing, missing, both = con.execute(
                f"""select count(*) filter (where e.{name} is not null and (m.{name} is null
                                                or abs(e.{name} - m.{name}) > 1e-9 * greatest(1, abs(m.{name})))),
                           count(*) filter (where e.{name} is null and m.{name} is not null and not ({withheld})),
                           count(*) filter (where e.{name} is not null)
                    from exact as e join {ROWS} as m on m.row_id = e.export_row_id"""
            ).fetchall()[0]
            assert (differing, missing) == (0, 0), (mart, name)
            compared += both
        assert compared > 0
    finally:
        con.close()
