"""Run a feed's suite over an extract loaded in DuckDB, one distinct value at a time.

Every rule in a suite looks at one column, so a rule's verdict depends only on the value. GX
therefore checks each column's distinct values (a few thousand codes, a million NHS numbers),
not the tens of millions of rows; DuckDB then marks every row holding a failing value. The result
is the same as checking each row, at a fraction of the cost, and no row is loaded into pandas.
"""

from __future__ import annotations

import datetime
import logging
from collections import defaultdict
from dataclasses import dataclass, field

import duckdb
import great_expectations as gx
import pyarrow as pa
import pyarrow.compute as pc
from great_expectations.data_context.types.base import ProgressBarsConfig

from ldm.errors import LdmError
from ldm.feeds.codes import clean_code
from ldm.feeds.spec import Column, FeedSpec
from ldm.pseudonymise import normalise
from ldm.sql import quoted
from ldm.validate.suites import days_column, gx_suite

logging.getLogger("great_expectations").setLevel(logging.ERROR)


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

    @property
    def rows_accepted(self) -> int:
        return self.rows_in - self.rows_quarantined


def sql_date(column: Column, alias: str = "") -> str:
    """DuckDB expression parsing a date or datetime column with its spec format (null if invalid)."""
    prefix = f"{alias}." if alias else ""
    return f"try_strptime(trim({prefix}{quoted(column.source)}), '{column.format}')"


class _CheckColumn:
    """What GX sees for one check column: a SQL key per row, and the value derived from the key."""

    def __init__(self, key_sql: str, transform=None, identifier: bool = False):
        self.key_sql = key_sql
        self.transform = transform or (lambda keys: keys)
        self.identifier = identifier


def _yyyymmdd(keys: pa.Array, fmt: str) -> pa.Array:
    """A date's text as the integer yyyymmdd, null where it does not parse."""
    parsed = pc.strptime(pc.utf8_trim_whitespace(keys), format=fmt, unit="s", error_is_null=True)
    return pc.cast(pc.strftime(parsed, format="%Y%m%d"), pa.int64())


def _check_columns(spec: FeedSpec) -> dict[str, _CheckColumn]:
    checks = {}
    for column in spec.columns:
        source = quoted(column.source)
        transform = None
        if column.type == "code":
            transform = lambda keys, system=column.code_system: clean_code(keys, system)  # noqa: E731
        elif column.type == "postcode":
            transform = normalise.postcode
        elif column.type == "sex":
            transform = lambda keys: pc.utf8_upper(pc.utf8_trim_whitespace(keys))  # noqa: E731
        elif column.type in ("integer", "decimal"):
            # Millions of distinct record ids are all plain numbers: DuckDB folds every value that is
            # surely a number to "0" (a narrower pattern than the suite's), and GX judges "0" and
            # whatever else is there, so the verdict per row is the suite's own.
            plain = "[0-9]+" if column.type == "integer" else r"-?[0-9]+(\.[0-9]+)?"
            source = f"case when regexp_full_match({source}, '{plain}') then '0' else {source} end"
        elif column.type in ("date", "datetime"):
            transform = pc.utf8_trim_whitespace
            # Dates are parsed once per distinct text, not once per row.
            checks[days_column(column.name)] = _CheckColumn(
                source, lambda keys, fmt=column.format: _yyyymmdd(keys, fmt), identifier=column.is_identifier
            )
        checks[column.name] = _CheckColumn(source, transform, column.is_identifier)
    if spec.event_date and spec.column("date_of_birth"):
        born, event = sql_date(spec.column("date_of_birth")), sql_date(spec.column(spec.event_date))
        checks["age_at_event"] = _CheckColumn(f"date_sub('year', {born}, {event})")
    return checks


def _gx_context():
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    source = context.data_sources.add_pandas("distinct_values")
    return context, source.add_dataframe_asset("column").add_batch_definition_whole_dataframe("all")


def validate(
    con: duckdb.DuckDBPyConnection, spec: FeedSpec, document: dict, today: datetime.date, table: str = "raw"
) -> ValidationOutcome:
    """Record every failing (row, rule) in temp table `failures`; return counts per rule."""
    checks = _check_columns(spec)
    rules_by_column: dict[str, list[dict]] = defaultdict(list)
    for rule in document["expectations"]:
        rules_by_column[rule["kwargs"]["column"]].append(rule)
    con.execute("create or replace temp table failures (row_number bigint, rule varchar, severity varchar)")
    context, batch = _gx_context()
    results = []
    for check_name, rules in rules_by_column.items():
        check = checks.get(check_name)
        if check is None:
            raise LdmError(
                f"suite {document['name']} has a rule on '{check_name}', which the spec does not define"
            )
        keys = con.sql(f"select distinct {check.key_sql} as key from {table}").to_arrow_table()["key"]
        keys = keys.combine_chunks()
        values = check.transform(keys)
        frame = pa.table({check_name: values}).to_pandas()
        suite = context.suites.add(gx_suite({"name": f"{spec.feed}.{check_name}", "expectations": rules}))
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(name=suite.name, data=batch, suite=suite)
        )
        run = definition.run(
            batch_parameters={"dataframe": frame},
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
            results.append(_record_failures(con, table, check, keys, failing, rule, check_name))
    quarantined = con.execute(
        "select count(distinct row_number) from failures where severity = 'critical'"
    ).fetchone()[0]
    rows_in = con.execute(f"select count(*) from {table}").fetchone()[0]
    return ValidationOutcome(rows_in=rows_in, rows_quarantined=quarantined, rules=results)


def _record_failures(con, table, check, keys, failing, rule, check_name) -> RuleResult:
    result = RuleResult(rule=rule["meta"]["rule"], column=check_name, severity=rule["severity"], rows=0)
    if not failing:
        return result
    bad_keys = keys.take(pa.array(failing, type=pa.int64()))
    non_null = pc.drop_null(bad_keys)
    failing_keys = pa.table({"key": non_null})  # noqa: F841 - read by DuckDB below
    null_clause = f" or {check.key_sql} is null" if bad_keys.null_count else ""
    inserted = con.execute(
        f"""insert into failures
            select rowid + 1, ?, ? from {table}
            where {check.key_sql} in (select key from failing_keys){null_clause}""",
        [result.rule, result.severity],
    ).fetchone()[0]
    result.rows = inserted
    if not check.identifier:
        result.examples = [str(v) for v in non_null.slice(0, 5).to_pylist()] + (
            ["(missing)"] if bad_keys.null_count else []
        )
    return result
