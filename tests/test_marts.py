"""The dbt marts, built for real on the committed sample.

One module-scoped fixture runs ``ldm demo`` into a temporary folder and then ``dbt build`` (every
model, seed, data test and unit test) against that store; the tests read the marts back. The marts
hold a series of periods; a figure is read for one of them (conftest.rolling_period), the latest
rolling 12 months unless the test says otherwise.
"""

from __future__ import annotations

import datetime
import json
import subprocess
from pathlib import Path

import duckdb
import pytest
import yaml
from conftest import (
    PERIOD_END,
    YEAR_BEFORE,
    dbt_node_kinds,
    dbt_results,
    dbt_unit_tests,
    query,
    rolling_period,
    store_copy,
)

from ldm import stats
from ldm.marts.build import build_marts, definitions_digest, run_dbt

REPO = Path(__file__).resolve().parent.parent
DBT_PROJECT = REPO / "dbt_project"
GROUND_TRUTH = REPO / "sample_data" / "ground_truth" / "persons.parquet"
PROJECT_VARS = yaml.safe_load((DBT_PROJECT / "dbt_project.yml").read_text())["vars"]
RULES = {r["condition"]: r for r in PROJECT_VARS["registers"]}


def dbt_command(*args: str, store: Path, work: Path) -> subprocess.CompletedProcess[str]:
    return run_dbt(*args, store=store, work=work)


@pytest.fixture(scope="module")
def built_store(sample_marts_store) -> Path:
    return sample_marts_store  # `ldm demo` has run dbt build, which fails the demo on any error


def test_dbt_build_passes_and_builds_the_marts(built_store):
    tables = {
        row[0]
        for row in query(
            built_store, "select table_name from information_schema.tables where table_schema = 'marts'"
        )
    }
    assert {"mart_prevalence", "mart_utilisation", "mart_person_analysis", "mart_periods"} <= tables
    registered = query(built_store, "select count(*) from main.persons where registered")[0][0]
    city = query(
        built_store,
        "select denominator from marts.mart_prevalence where condition = 'hypertension' and geography_level = 'city'"
        f" and {rolling_period()}",
    )
    # The sample's extracts are dated to the reporting period end, so the point-in-time list of the
    # latest period is the store's current registered population.
    assert city == [(registered,)]


def twelve_months_to(end: datetime.date) -> datetime.date:
    """The first day of the 12 months that end on `end` (the last day of a month)."""
    following = end + datetime.timedelta(days=1)
    return following.replace(year=following.year - 1)


def quarter_ends(first: datetime.date, last: datetime.date) -> list[datetime.date]:
    """The last days of the quarters (March, June, September, December) from `first`'s to `last`'s."""
    ends, year, month = [], first.year, first.month
    while (year, month) <= (last.year, last.month):
        following = datetime.date(year + month // 12, month % 12 + 1, 1)
        ends.append(following - datetime.timedelta(days=1))
        year, month = (year + 1, month - 9) if month > 9 else (year, month + 3)
    return ends


def test_the_marts_hold_the_series_of_periods_the_data_cover(built_store):
    """The sample's activity runs from April 2023 to March 2025: a rolling 12 months at every quarter
    end from June 2023 (registers are counted at each end) and both financial years; activity is
    counted only over the periods whose 12 months the data cover (from the year to March 2024)."""
    data_start = datetime.date(2023, 4, 1)
    expected = [
        ("financial_year", f"{end.year - 1}/{end.year % 100:02d}", twelve_months_to(end), end, True)
        for end in (YEAR_BEFORE, PERIOD_END)
    ] + [
        (
            "rolling_12_months",
            f"12 months to {end.isoformat()}",
            twelve_months_to(end),
            end,
            twelve_months_to(end) >= data_start,
        )
        for end in quarter_ends(datetime.date(2023, 6, 30), PERIOD_END)
    ]
    assert len(expected) == 10 and sum(complete for *_, complete in expected) == 7
    periods = query(
        built_store,
        "select period_type, period_label, period_start, period_end, activity_complete from marts.mart_periods"
        " order by all",
    )
    assert periods == sorted(expected)
    every = {(kind, label, start, end) for kind, label, start, end, _ in expected}
    complete = {(kind, label, start, end) for kind, label, start, end, done in expected if done}
    for mart, held in (
        ("mart_prevalence", every),
        ("mart_utilisation", complete),
        ("mart_inequalities", every),
    ):
        found = query(
            built_store,
            f"select distinct period_type, period_label, period_start, period_end from marts.{mart}",
        )
        assert set(found) == held, mart
    # mart_person_analysis stays one row per person at reporting_period_end.
    assert query(built_store, "select distinct reporting_period_end from marts.mart_person_analysis") == [
        (PERIOD_END,)
    ]
    assert query(
        built_store, "select count(*) - count(distinct person_id) from marts.mart_person_analysis"
    ) == [(0,)]


def test_a_financial_year_agrees_with_the_rolling_period_of_the_same_months(built_store):
    """The financial year 2024/25 and the rolling 12 months to March 2025 are the same window: every
    count and rate agrees (registers are points in time, activity is counted over the same days)."""
    figures = "geography_level, area_code, numerator, denominator"
    for mart, item in (("mart_prevalence", "condition"), ("mart_utilisation", "measure")):
        for end in (YEAR_BEFORE, PERIOD_END):
            rolling = query(
                built_store, f"select {item}, {figures} from marts.{mart} where {rolling_period(end)}"
            )
            year = query(
                built_store,
                f"select {item}, {figures} from marts.{mart}"
                f" where period_type = 'financial_year' and period_end = date '{end.isoformat()}'",
            )
            assert rolling and sorted(rolling) == sorted(year), (mart, end)
    # and periods that are not the same window differ
    counts = query(
        built_store,
        "select period_end, numerator from marts.mart_utilisation where measure = 'emergency_admissions'"
        " and geography_level = 'city' and period_type = 'rolling_12_months'",
    )
    assert len(counts) == 5 and len({numerator for _, numerator in counts}) > 1


def test_every_row_carries_the_stamp_of_the_build_that_wrote_it(built_store):
    """One dbt build wrote every mart here: one invocation id and time on every row, and the audit
    head the build read (the entry just before the build's own entry in the chain)."""
    [(seq, entry_hash)] = query(
        built_store,
        """select seq, entry_hash from governance.audit_log
           where seq = (select max(seq) from governance.audit_log where action = 'marts') - 1""",
    )
    marts = {
        table
        for (table,) in query(
            built_store, "select table_name from information_schema.tables where table_schema = 'marts'"
        )
    }
    assert {
        "mart_prevalence",
        "mart_utilisation",
        "mart_inequalities",
        "mart_person_analysis",
        "mart_periods",
    } <= marts
    stamps = set()
    for mart in sorted(marts):
        rows = query(
            built_store,
            f"select distinct dbt_invocation_id, built_at, audit_head from marts.{mart}"
            " where dbt_invocation_id is not null and built_at is not null",
        )
        assert len(rows) == 1 and query(built_store, f"select count(*) from marts.{mart}")[0][0] > 0, mart
        stamps |= set(rows)
    [(invocation, built_at, head)] = stamps
    assert head == f"{seq}:{entry_hash}" and len(invocation) == 36 and isinstance(built_at, datetime.datetime)


SERIES_MARTS = (
    "mart_prevalence",
    "mart_utilisation",
    "mart_inequalities",
    "mart_mortality",
    "mart_life_expectancy",
)
STAMP = "dbt_invocation_id, built_at, audit_head"


def built_periods(store: Path) -> dict[tuple[str, datetime.date], tuple[str, str]]:
    rows = query(
        store, "select period_type, period_end, build_reason, dbt_invocation_id from marts.mart_periods"
    )
    return {(kind, end): (reason, invocation) for kind, end, reason, invocation in rows}


@pytest.mark.slow
def test_a_late_record_computes_again_the_periods_it_is_under_and_only_those(built_store, tmp_path):
    """A GP event arriving in a later batch, dated in an old period: the next build computes every
    period ending on or after its date again, keeps the earlier ones, and the marts are then what a
    full refresh of the same records gives."""
    late = datetime.date(2024, 2, 15)
    statement = f"""insert into main.gp_events
        select * replace (999999 as batch_id, date '{late}' as event_date) from main.gp_events
        where (batch_id, row_number) = (select (batch_id, row_number) from main.gp_events
                                        where person_id is not null order by all limit 1)"""
    for folder in ("incremental", "refreshed"):
        (tmp_path / folder).mkdir()
    incremental = store_copy(built_store, tmp_path / "incremental", statement)
    refreshed = store_copy(built_store, tmp_path / "refreshed", statement)
    before = built_periods(built_store)
    build_marts(incremental, tmp_path / "dbt1")
    after = built_periods(incremental)
    assert after.keys() == before.keys()
    for period, (reason, invocation) in after.items():
        if period[1] >= late:
            assert reason == "records changed" and invocation != before[period][1], period
        else:
            assert (reason, invocation) == before[period], period
    build_marts(refreshed, tmp_path / "dbt2", full_refresh=True)
    for mart in SERIES_MARTS:
        differ = query(
            incremental,
            f"""attach '{refreshed}' as refreshed (read_only);
                select count(*) from (
                    (select * exclude ({STAMP}) from marts.{mart}
                     except all select * exclude ({STAMP}) from refreshed.marts.{mart})
                    union all
                    (select * exclude ({STAMP}) from refreshed.marts.{mart}
                     except all select * exclude ({STAMP}) from marts.{mart}))""",
        )
        assert differ == [(0,)], mart


def test_diabetes_prevalence_is_higher_in_the_most_deprived_quintile(built_store):
    for end in (PERIOD_END, YEAR_BEFORE):
        rows = dict(
            query(
                built_store,
                "select area_code, crude_rate from marts.mart_prevalence"
                " where condition = 'diabetes' and geography_level = 'imd_quintile' and area_code in ('1', '5')"
                f" and {rolling_period(end)}",
            )
        )
        assert rows["1"] > rows["5"], end


def true_register(condition: str, prefix: str, resolvable: bool, end: datetime.date) -> tuple[int, int]:
    """(register, list) at a period end from the generator's ground truth, with the same rules."""
    resolved = f"{prefix}_resolved_on" if resolvable else "null::date"
    sql = f"""
        with listed as (
            select *,
                date_diff('year', date_of_birth, $end)
                    - case when strftime(date_of_birth, '%m%d') > strftime($end, '%m%d') then 1 else 0 end as age
            from read_parquet('{GROUND_TRUTH}')
            where not opted_out
              and registered_on <= $end
              and (deregistered_on is null or deregistered_on > $end)
              and (died_on is null or died_on > $end)
        )
        select
            count(*) filter (
                where {prefix}_diagnosed_on <= $end
                  and not coalesce({resolved} > {prefix}_diagnosed_on and {resolved} <= $end, false)
            ),
            count(*)
        from listed
        where age >= $min_age
    """
    con = duckdb.connect()
    row = con.execute(sql, {"end": end, "min_age": RULES[condition]["min_age"]}).fetchone()
    con.close()
    return row[0], row[1]


# COPD, CKD, dementia and depression are not compared: their QOF clusters share codes with another
# register (asthma-COPD overlap, hypertensive CKD, dementia with depression), and the generator,
# which draws a planted condition's codes from its own cluster, does not plan for that, so those
# registers correctly hold more people than were planted with the condition.
@pytest.mark.parametrize("end", [PERIOD_END, YEAR_BEFORE], ids=str)
@pytest.mark.parametrize(
    ("condition", "prefix", "resolvable"),
    [("diabetes", "dm", True), ("hypertension", "hyp", False), ("asthma", "ast", True)],
)
def test_planted_prevalence_is_recovered_within_the_interval(built_store, condition, prefix, resolvable, end):
    register, listed = true_register(condition, prefix, resolvable, end)
    [(lower, upper, numerator, denominator)] = query(
        built_store,
        "select crude_rate_lower, crude_rate_upper, numerator, denominator"
        f" from marts.mart_prevalence where condition = ? and geography_level = 'city' and {rolling_period(end)}",
        condition,
    )
    truth = register / listed
    assert lower <= truth <= upper, (condition, numerator, denominator, register, listed)
    assert abs(denominator - listed) <= 0.05 * listed


@pytest.mark.parametrize("end", [PERIOD_END, YEAR_BEFORE], ids=str)
def test_sql_dsr_agrees_with_ldm_stats(built_store, end):
    bands = query(
        built_store,
        """
        select esp.age_band, esp.standard_population, count(pop.person_id) as n,
               count(reg.person_id) as x
        from staging.stg_reference__esp2013 as esp
        join intermediate.int_registered_population as pop on pop.age_band = esp.age_band
        left join intermediate.int_registers as reg
          on reg.period_end = pop.period_end and reg.person_id = pop.person_id and reg.condition = 'hypertension'
        where pop.period_end = ?
        group by esp.age_band, esp.standard_population, esp.age_lower
        order by esp.age_lower
        """,
        end,
    )
    assert len(bands) == 19, "every ESP2013 band is populated in the sample"
    value, lower, upper = stats.dsr(
        [b[3] for b in bands], [b[2] for b in bands], [b[1] for b in bands], multiplier=1
    )
    [mart] = query(
        built_store,
        "select dsr, dsr_lower, dsr_upper from marts.mart_prevalence"
        f" where condition = 'hypertension' and geography_level = 'city' and {rolling_period(end)}",
    )
    assert mart == pytest.approx((value, lower, upper), rel=1e-9)


def test_no_dsr_from_fewer_than_ten_events(built_store):
    assert PROJECT_VARS["dsr_min_total_count"] == stats.DSR_MIN_TOTAL_COUNT
    small = query(
        built_store,
        "select count(*) from marts.mart_prevalence where numerator < ? and dsr is not null",
        stats.DSR_MIN_TOTAL_COUNT,
    )[0][0]
    assert small == 0


def test_person_table_agrees_with_the_marts(built_store):
    flags, persons = query(
        built_store,
        "select sum(case when has_diabetes then 1 else 0 end), count(*) from marts.mart_person_analysis",
    )[0]
    # mart_person_analysis is at reporting_period_end: the latest period's registers and 12 months
    numerator = query(
        built_store,
        "select numerator from marts.mart_prevalence where condition = 'diabetes' and geography_level = 'city'"
        f" and {rolling_period()}",
    )
    assert [(flags,)] == numerator
    assert persons == query(built_store, "select count(*) from main.persons")[0][0]
    emergency = query(
        built_store,
        "select numerator from marts.mart_utilisation where measure = 'emergency_admissions'"
        f" and geography_level = 'city' and {rolling_period()}",
    )
    assert emergency == query(
        built_store,
        "select sum(emergency_admissions) from marts.mart_person_analysis where in_registered_population",
    )


def test_marts_hold_no_identifier_columns(built_store):
    columns = {
        row[0]
        for row in query(
            built_store, "select column_name from information_schema.columns where table_schema = 'marts'"
        )
    }
    assert not columns & {"nhs_number", "date_of_birth", "postcode", "forename", "surname", "name"}


def test_every_dbt_unit_test_passes(built_store, tmp_path):
    """The unit tests beside the marts (fixtures in their YAML), which a production build leaves out."""
    store = store_copy(built_store, tmp_path)  # dbt opens its store for writing
    result = dbt_command("test", "--select", "test_type:unit", store=store, work=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:]
    results = dbt_results(tmp_path / "target")
    ran = {tuple(r["unique_id"].split(".")[2:4]) for r in results if r["unique_id"].startswith("unit_test.")}
    assert len(dbt_unit_tests()) >= 15 and ran == dbt_unit_tests()
    assert {r["status"] for r in results} == {"pass"}


def test_a_production_build_leaves_the_unit_tests_out(built_store):
    """`ldm demo` built the shared store: its dbt run ran no unit test."""
    kinds = dbt_node_kinds(built_store.parent / ".ldm-dbt" / "target")
    assert kinds == {"model", "seed", "test"}, kinds


def test_dbt_docs_generate_works_offline(built_store, tmp_path):
    """Analysts read the column documentation in dbt docs; it must build without a network. (On a
    copy: dbt opens its store for writing, and the shared store may be open in another worker.)"""
    store = store_copy(built_store, tmp_path)
    result = dbt_command("docs", "generate", store=store, work=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:]
    catalog = json.loads((tmp_path / "target" / "catalog.json").read_text())
    assert any(node.endswith("mart_prevalence") for node in catalog["nodes"])
    manifest = json.loads((tmp_path / "target" / "manifest.json").read_text())
    prevalence = next(n for k, n in manifest["nodes"].items() if k.endswith(".mart_prevalence"))
    assert all(column["description"] for column in prevalence["columns"].values())


@pytest.mark.parametrize(
    ("changed", "recomputes"),
    [
        ("dbt_project/models/marts/mart_prevalence.sql", True),
        ("ldm/reference/codelists/a_codelist.csv", True),
        ("ldm/reference/boundaries/wards.geojson", False),
        ("ldm/reference/PROVENANCE.md", False),
    ],
)
def test_the_definitions_digest_changes_with_what_dbt_reads_only(tmp_path, changed, recomputes):
    """A changed model or seed computes every period again; a boundary file or a provenance note,
    which dbt never reads, does not."""
    for name in (
        "dbt_project/models/marts/mart_prevalence.sql",
        "ldm/reference/codelists/a_codelist.csv",
        "ldm/reference/boundaries/wards.geojson",
        "ldm/reference/PROVENANCE.md",
    ):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("one\n")
    folders = (tmp_path / "dbt_project", tmp_path / "ldm" / "reference")
    before = definitions_digest(*folders)
    (tmp_path / changed).write_text("two\n")
    assert (definitions_digest(*folders) != before) == recomputes
