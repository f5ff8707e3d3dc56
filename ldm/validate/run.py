"""Run a feed's suite over an extract loaded in DuckDB, one distinct value at a time.

Every rule in a suite looks at one column, so a rule's verdict depends only on the value. GX
therefore checks each column's distinct values (a few thousand codes, a million NHS numbers),
not the tens of millions of rows; DuckDB then marks every row holding a failing value. The result
is the same as checking each row, at a fraction of the cost, and no row is loaded into pandas.
A rule on two values of a record (a birth after the event) looks at one derived column that DuckDB
computes per row, such as the age at the event, so it too is judged one distinct value at a time.
"""

from __future__ import annotations

import datetime
import logging
import threading
from collections import defaultdict
from dataclasses import dataclass, field

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from ldm.column_types import TYPES, days_column
from ldm.dialects import current as dialect
from ldm.errors import LdmError
from ldm.feeds.spec import Column, FeedSpec
from ldm.feeds.working import FAILING_KEYS, FAILURES, RAW
from ldm.sql import literal, quoted
from ldm.validate.suites import (
    AGE_AT_DEATH,
    AGE_AT_EVENT,
    AGE_IF_ALIVE,
    DATE_ORDER,
    gx_suite,
    span_column,
)

logging.getLogger("great_expectations").setLevel(logging.ERROR)
# Extracts are validated on several threads; GX's context and registries are not known to be
# thread-safe, so GX itself runs on one thread at a time (it is bound by the GIL anyway).
_GX_LOCK = threading.Lock()


@dataclass
class RuleResult:
    rule: str
    column: str
    severity: str
    rows: int
    examples: list[str] = field(default_factory=list)  # only for columns that are not identifiers


@dataclass
class ValidationOutcome:
    rows_in: int
    rows_quarantined: int
    rules: list[RuleResult]
    # The distinct values of each raw column that validation scanned, for reuse (not for reports).
    distinct: dict[str, pa.Array] = field(default_factory=dict, repr=False)

    @property
    def rows_accepted(self) -> int:
        return self.rows_in - self.rows_quarantined


def sql_date(column: Column) -> str:
    """SQL parsing a date or datetime column with its spec format (null if invalid)."""
    return dialect().try_parse_timestamp(f"trim({quoted(column.source)})", column.format)


class _CheckColumn:
    """What GX sees for one check column: a SQL key per row, and the value derived from the key.

    `source` names the raw column when the key is that column as it is, so the distinct values
    found here can be reused by pseudonymisation instead of scanning the extract again.
    """

    def __init__(self, key_sql: str, transform=None, identifier: bool = False, source: str | None = None):
        self.key_sql = key_sql
        self.transform = transform or (lambda keys: keys)
        self.identifier = identifier
        self.source = source


def _yyyymmdd(keys: pa.Array, fmt: str) -> pa.Array:
    """A date's text as the integer yyyymmdd, null where it does not parse."""
    parsed = pc.strptime(pc.utf8_trim_whitespace(keys), format=fmt, unit="s", error_is_null=True)
    return pc.cast(pc.strftime(parsed, format="%Y%m%d"), pa.int64())


def _check_columns(spec: FeedSpec, today: datetime.date) -> dict[str, _CheckColumn]:
    checks = {}
    sql = dialect()
    for column in spec.columns:
        source = quoted(column.source)
        plain = column.source
        check = TYPES[column.type].check  # what the seam will hold of a raw text (ldm.column_types)
        transform = (lambda keys, c=column, f=check: f(keys, c)) if check else None
        if column.type == "integer":
            # Millions of distinct record ids are all plain numbers: DuckDB folds every value that is
            # surely a number to "0" (a narrower pattern than the suite's), and GX judges "0" and
            # whatever else is there, so the verdict per row is the suite's own. Decimal columns
            # (measurements) have a few thousand distinct values and are checked whole.
            source, plain = (
                f"case when {sql.full_match(source, '[0-9]+')} then '0' else {source} end",
                None,
            )
        elif column.type in ("date", "datetime"):
            if column.type == "datetime":
                # Nearly every timestamp is distinct. One that DuckDB parses and prints back as the
                # same text is surely well formed, so it is folded to midnight of its day (same
                # format, same date); GX judges those and whatever else is there.
                parsed = sql.try_parse_timestamp(source, column.format)
                midnight = sql.format_timestamp(f"date_trunc('day', {parsed})", column.format)
                source, plain = (
                    f"case when {sql.format_timestamp(parsed, column.format)} = {source} "
                    f"then {midnight} else {source} end",
                    None,
                )
            # Dates are parsed once per distinct text, not once per row.
            checks[days_column(column.name)] = _CheckColumn(
                source, lambda keys, fmt=column.format: _yyyymmdd(keys, fmt), column.is_identifier, plain
            )
        checks[column.name] = _CheckColumn(source, transform, column.is_identifier, plain)
    checks.update(_record_check_columns(spec, today))
    return checks


def _age_sql(born: str, at: str) -> str:
    """Completed years from `born` to `at`, or -1 when `born` is later than `at`.

    Whole years truncate toward zero: a birth a few months after the date gives 0, not a negative
    age, and so passed a rule on the age alone. -1 stands for any birth after the date.
    """
    return f"case when {born} > {at} then -1 else {dialect().whole_years(born, at)} end"


def _record_check_columns(spec: FeedSpec, today: datetime.date) -> dict[str, _CheckColumn]:
    """The derived ages that the record rules (ldm.validate.suites.record_rules) judge.

    Each is a small integer per row (an age, a length of stay in days), so GX sees a few hundred
    or thousand distinct values, not the rows.
    """
    checks = _span_check_columns(spec)
    born_column = spec.column("date_of_birth")
    if born_column is None:
        return checks
    born = sql_date(born_column)
    if spec.event_date:
        checks[AGE_AT_EVENT] = _CheckColumn(_age_sql(born, sql_date(spec.column(spec.event_date))))
    if died_column := spec.column("date_of_death"):
        died = sql_date(died_column)
        checks[AGE_AT_DEATH] = _CheckColumn(_age_sql(born, died))
        alive_at = f"cast({literal(today.isoformat())} as date)"
        checks[AGE_IF_ALIVE] = _CheckColumn(f"case when {died} is null then {_age_sql(born, alive_at)} end")
    return checks


def _span_check_columns(spec: FeedSpec) -> dict[str, _CheckColumn]:
    """Days from one date of a record to a later one (DATE_ORDER); -1 when the later comes first.

    Counted in whole days, but a timestamp earlier on the same day is -1 too, so that the rule is
    about the order, not the day.
    """
    checks = {}
    for earlier, later, _ in DATE_ORDER:
        if spec.column(earlier) and spec.column(later):
            start, end = sql_date(spec.column(earlier)), sql_date(spec.column(later))
            checks[span_column(earlier, later)] = _CheckColumn(
                f"case when {end} < {start} then -1 else {dialect().days_between(start, end)} end"
            )
    return checks


def _gx_batch_definition():
    import great_expectations as gx  # when first used (ldm.validate.suites.to_gx_expectations says why)
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    source = context.data_sources.add_pandas("distinct_values")
    return source.add_dataframe_asset("column").add_batch_definition_whole_dataframe("all")


def distinct_values(con: duckdb.DuckDBPyConnection, key_sql: str) -> pa.Table:
    """Each distinct value of a SQL expression over the extract (null included), with its row count."""
    counted = con.sql(f"select {key_sql} as key, count(*) as rows from {RAW} group by all").to_arrow_table()
    return counted.combine_chunks()


def validate(
    con: duckdb.DuckDBPyConnection, spec: FeedSpec, document: dict, today: datetime.date
) -> ValidationOutcome:
    """Record each row failing a critical rule in temp table `failures`; return counts per rule.

    A rule's row count is the sum of the counts of its failing values, so only rows that fail a
    critical rule are ever looked up one by one.
    """
    checks = _check_columns(spec, today)
    rules_by_column: dict[str, list[dict]] = defaultdict(list)
    for rule in document["expectations"]:
        rules_by_column[rule["kwargs"]["column"]].append(rule)
    con.execute(
        f"create or replace temp table {FAILURES} (row_number bigint, rule {dialect().type_name('varchar')})"
    )
    with _GX_LOCK:
        batch_definition = _gx_batch_definition()
    profiles: dict[str, pa.Table] = {}
    results = []
    for check_name, rules in rules_by_column.items():
        check = checks.get(check_name)
        if check is None:
            raise LdmError(
                f"suite {document['name']} has a rule on '{check_name}', which the spec does not define"
            )
        if check.key_sql not in profiles:
            profiles[check.key_sql] = distinct_values(con, check.key_sql)
        profile = profiles[check.key_sql]
        frame = pa.table({check_name: check.transform(profile["key"])}).to_pandas()
        with _GX_LOCK:
            suite = gx_suite({"name": f"{spec.feed}.{check_name}", "expectations": rules})
            run = batch_definition.get_batch(batch_parameters={"dataframe": frame}).validate(
                suite,
                expectation_parameters={"today_yyyymmdd": int(today.strftime("%Y%m%d"))},
                result_format={"result_format": "COMPLETE"},
            )
        # GX does not promise to return results in the suite's order: match them by rule text.
        by_rule = {outcome.expectation_config.meta["rule"]: outcome for outcome in run.results}
        for rule in rules:
            outcome = by_rule[rule["meta"]["rule"]]
            if outcome.exception_info.get("raised_exception"):
                raise LdmError(f"rule '{rule['meta']['rule']}' could not run: {outcome.exception_info}")
            failing = outcome.result.get("unexpected_index_list") or []
            results.append(_record_failures(con, check, profile, failing, rule, check_name))
    quarantined = con.execute(f"select count(distinct row_number) from {FAILURES}").fetchall()[0][0]
    rows_in = con.execute(f"select count(*) from {RAW}").fetchall()[0][0]
    distinct = {
        check.source: profiles[check.key_sql]["key"]
        for check in checks.values()
        if check.source and check.key_sql in profiles
    }
    return ValidationOutcome(rows_in=rows_in, rows_quarantined=quarantined, rules=results, distinct=distinct)


def _record_failures(con, check, profile: pa.Table, failing, rule, check_name) -> RuleResult:
    result = RuleResult(rule=rule["meta"]["rule"], column=check_name, severity=rule["severity"], rows=0)
    if not failing:
        return result
    failed = profile.take(pa.array(failing, type=pa.int64()))
    result.rows = pc.sum(failed["rows"]).as_py()
    non_null = pc.drop_null(failed["key"])
    if result.severity == "critical":
        con.register(FAILING_KEYS, pa.table({"key": non_null}))
        null_clause = f" or {check.key_sql} is null" if failed["key"].null_count else ""
        con.execute(
            f"""insert into {FAILURES}
                select {dialect().row_id()} + 1, ? from {RAW}
                where {check.key_sql} in (select key from {FAILING_KEYS}){null_clause}""",
            [result.rule],
        ).fetchall()
        con.unregister(FAILING_KEYS)
    if not check.identifier:
        result.examples = [str(v) for v in non_null.slice(0, 5).to_pylist()] + (
            ["(missing)"] if failed["key"].null_count else []
        )
    return result
