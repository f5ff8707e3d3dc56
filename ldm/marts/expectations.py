"""Great Expectations suites of the dbt marts (expectations/marts.json), run over a built store.

Each mart is read from the store (DuckDB, read-only) as Arrow record batches of ``BATCH_ROWS``
rows, and each batch, converted to pandas on its own, is validated by GX through an ephemeral
context and a pandas datasource (GX over a DuckDB SQL datasource does not work here). Every column
and column-pair expectation in the suite judges each row on its own, so validating batch by batch
gives the same verdict as validating the whole table, without holding the table in pandas; the
unexpected counts are added up over the batches. Table-level expectations (the row count) are
validated once, on a frame with the table's row count and no columns; or, when one batch holds the
whole table, with the row-level ones on that batch (the same row count, and one GX run fewer).

Speed: only the columns the row-level expectations name are read (the verdict on a row depends on
no other column); integer columns narrower than 64 bits are widened to int64 before pandas, because
GX's ``expect_column_values_to_be_between`` is vectorised only for int64 and float64 columns (on an
int32 column it calls a Python function per row); and batches are validated with ``Batch.validate``,
which keeps no results in the context. Each GX run costs ~0.2 s whatever its size, hence the batch size.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import pyarrow as pa

from ldm.errors import LdmError
from ldm.sql import quoted
from ldm.store import connect

if TYPE_CHECKING:
    import great_expectations as gx

logging.getLogger("great_expectations").setLevel(logging.ERROR)

SUITE_PATH = Path(__file__).resolve().parents[2] / "expectations" / "marts.json"
MARTS_SCHEMA = "marts"
BATCH_ROWS = 250_000  # rows per batch: GX costs ~0.3 s a run, whatever its size
EXAMPLES = 5


@dataclass
class ExpectationFailure:
    """One expectation that failed on one mart."""

    mart: str
    expectation: str  # GX expectation type, e.g. expect_column_values_to_be_between
    rule: str  # the suite's description of the rule
    columns: list[str]
    unexpected_count: int = 0
    examples: list[str] = field(default_factory=list)
    tolerated: bool = False  # within the rule's stated share (meta max_share, min_rows): a warning

    def __str__(self) -> str:
        where = f" ({', '.join(self.columns)})" if self.columns else ""
        seen = f"; e.g. {', '.join(self.examples)}" if self.examples else ""
        return f"{self.mart}: {self.expectation}{where}: {self.rule} [{self.unexpected_count} rows{seen}]"


def load_suite(path: Path = SUITE_PATH) -> dict[str, list[dict]]:
    """Mart name -> its expectations (each a dict with type, kwargs and meta.rule)."""
    document = json.loads(path.read_text())
    return {mart: spec["expectations"] for mart, spec in document["marts"].items()}


def _columns(kwargs: dict) -> list[str]:
    return [kwargs[key] for key in ("column", "column_A", "column_B") if key in kwargs]


def _is_table_level(rule: dict) -> bool:
    return rule["type"].startswith("expect_table_")


class _Validator:
    """An ephemeral GX context with one pandas dataframe batch definition, reused for every suite."""

    def __init__(self) -> None:
        import great_expectations as gx  # when first used (ldm.validate.suites.to_gx_expectations says why)
        from great_expectations.data_context.types.base import ProgressBarsConfig

        self.context = gx.get_context(mode="ephemeral")
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False)
        source = self.context.data_sources.add_pandas("marts")
        self.batch = source.add_dataframe_asset("mart").add_batch_definition_whole_dataframe("batch")
        self.suites: dict[str, gx.ExpectationSuite] = {}

    def suite(self, name: str, rules: list[dict]) -> gx.ExpectationSuite:
        if name not in self.suites:
            import great_expectations as gx
            from great_expectations.expectations.registry import get_expectation_impl

            # GX does not return results in the suite's order: each expectation carries its index.
            expectations = [
                get_expectation_impl(rule["type"])(
                    **rule["kwargs"], meta={**rule.get("meta", {}), "index": index}
                )
                for index, rule in enumerate(rules)
            ]
            self.suites[name] = self.context.suites.add(
                gx.ExpectationSuite(name=name, expectations=expectations)
            )
        return self.suites[name]

    def run(self, name: str, rules: list[dict], frame: pd.DataFrame) -> list:
        batch = self.batch.get_batch(batch_parameters={"dataframe": frame})
        result = batch.validate(self.suite(name, rules), result_format={"result_format": "SUMMARY"})
        return result.results


# Expectation kwargs that name the columns an expectation reads, and the expectation types whose
# columns are all named by them (any other type makes the whole table be read).
_COLUMN_KEYS = ("column", "column_A", "column_B", "column_list")
_COLUMN_PREFIXES = (
    "expect_column_values_",
    "expect_column_pair_values_",
    "expect_multicolumn_",
    "expect_select_column_values_",
    "expect_compound_columns_",
)


def _row_condition_columns(condition) -> set[str]:
    """Column names in a row_condition (a string, or GX's nested dict form with {"column": {"name": ...}})."""
    if isinstance(condition, dict):
        found = set()
        for key, value in condition.items():
            if key == "column" and isinstance(value, dict) and isinstance(value.get("name"), str):
                found.add(value["name"])
            else:
                found |= _row_condition_columns(value)
        return found
    if isinstance(condition, list):
        return set().union(*(_row_condition_columns(item) for item in condition)) if condition else set()
    return set()


def _needed_columns(rules: list[dict]) -> list[str] | None:
    """The columns the row-level rules read, or None when that cannot be told (read every column)."""
    needed: set[str] = set()
    for rule in rules:
        kwargs = rule["kwargs"]
        if not rule["type"].startswith(_COLUMN_PREFIXES) or isinstance(kwargs.get("row_condition"), str):
            return None
        for key in _COLUMN_KEYS:
            value = kwargs.get(key)
            if isinstance(value, str):
                needed.add(value)
            elif isinstance(value, list):
                needed.update(value)
        needed |= _row_condition_columns(kwargs.get("row_condition"))
    return sorted(needed)


_NARROW_INTEGERS = (pa.int8(), pa.int16(), pa.int32(), pa.uint8(), pa.uint16(), pa.uint32())


def _to_pandas(batch: pa.RecordBatch | pa.Table) -> pd.DataFrame:
    """The batch as pandas, integer columns narrower than 64 bits widened (exactly) to int64."""
    columns = [
        column.cast(pa.int64()) if column.type in _NARROW_INTEGERS else column for column in batch.columns
    ]
    return pa.table(columns, names=batch.schema.names).to_pandas()


def _plain(value) -> str:
    """An unexpected value (or a pair of them) as text without numpy's type names."""
    if isinstance(value, (tuple, list)):
        return "(" + ", ".join(_plain(item) for item in value) + ")"
    return str(value.item() if hasattr(value, "item") else value)


def _merge(failures: dict[int, ExpectationFailure], mart: str, rules: list[dict], results: list) -> None:
    if len(results) != len(rules):
        raise LdmError(f"{mart}: GX returned {len(results)} results for {len(rules)} expectations")
    for outcome in results:
        index = int(outcome.expectation_config.meta["index"])
        rule = rules[index]
        if outcome.exception_info.get("raised_exception"):
            message = outcome.exception_info.get("exception_message")
            raise LdmError(f"{mart}: expectation {rule['type']} could not run: {message}")
        if outcome.success:
            continue
        failure = failures.setdefault(
            index, ExpectationFailure(mart, rule["type"], rule["meta"]["rule"], _columns(rule["kwargs"]))
        )
        counts = outcome.result or {}
        failure.unexpected_count += int(counts.get("unexpected_count") or counts.get("observed_value") or 0)
        for value in counts.get("partial_unexpected_list") or []:
            if len(failure.examples) < EXAMPLES:
                failure.examples.append(_plain(value))


def _tolerate(failures: list[ExpectationFailure], mart: str, rules: list[dict], rows: int) -> None:
    """Mark as warnings the failures of rules that allow a share of rows (meta max_share and min_rows).

    As for the dbt data-quality tests: one record that breaks a rule about one person's values is
    counted and reported, and stops the run only when more than the share (and min_rows) break it.
    """
    limits = {r["meta"]["rule"]: r["meta"] for r in rules if "max_share" in r.get("meta", {})}
    for failure in failures:
        meta = limits.get(failure.rule) if failure.mart == mart else None
        if meta is not None:
            allowed = max(int(meta.get("min_rows", 10)), float(meta["max_share"]) * rows)
            failure.tolerated = failure.unexpected_count <= allowed


def validate_marts(
    store_path: Path | str, suite_path: Path = SUITE_PATH, batch_rows: int = BATCH_ROWS
) -> list[ExpectationFailure]:
    """Validate every mart named in the suite; return the failed expectations (empty when all pass).

    A mart missing from the store is reported as a failure of its row-count expectation.
    """
    suite = load_suite(suite_path)
    validator = _Validator()
    failures: list[ExpectationFailure] = []
    con = connect(store_path, read_only=True)
    try:
        con.execute("set enable_progress_bar = false")
        present = {
            row[0]
            for row in con.execute(
                "select table_name from information_schema.tables where table_schema = ?", [MARTS_SCHEMA]
            ).fetchall()
        }
        for mart, rules in suite.items():
            if mart not in present:
                failures.append(ExpectationFailure(mart, "expect_table_row_count_to_be_between",
                                                   f"{MARTS_SCHEMA}.{mart} is not in the store", []))  # fmt: skip
                continue
            row_rules = [rule for rule in rules if not _is_table_level(rule)]
            table_rules = [rule for rule in rules if _is_table_level(rule)]
            table = f"{MARTS_SCHEMA}.{quoted(mart)}"
            rows = con.execute(f"select count(*) from {table}").fetchall()[0][0]
            needed = _needed_columns(row_rules)
            select = "*" if needed is None else ", ".join(quoted(column) for column in needed)
            if row_rules and table_rules and 0 < rows <= batch_rows:
                # One batch holds the whole table, so the table-level rules see the table's row
                # count on it too: the whole suite is validated in one run.
                whole = row_rules + table_rules
                by_rule: dict[int, ExpectationFailure] = {}
                frame = _to_pandas(con.sql(f"select {select} from {table}").to_arrow_table())
                _merge(by_rule, mart, whole, validator.run(f"{mart}.whole", whole, frame))
                failures.extend(by_rule[index] for index in sorted(by_rule))  # row rules first
                _tolerate(failures, mart, whole, rows)
                continue
            by_rule = {}
            if row_rules:
                reader = con.sql(f"select {select} from {table}").to_arrow_reader(batch_rows)
                for batch in reader:
                    if batch.num_rows == 0:
                        continue
                    frame = _to_pandas(batch)
                    _merge(by_rule, mart, row_rules, validator.run(f"{mart}.rows", row_rules, frame))
            failures.extend(by_rule[index] for index in sorted(by_rule))
            _tolerate(failures, mart, rules, rows)
            if table_rules:
                table_failures: dict[int, ExpectationFailure] = {}
                frame = pd.DataFrame(index=pd.RangeIndex(rows))
                _merge(table_failures, mart, table_rules, validator.run(f"{mart}.table", table_rules, frame))
                failures.extend(table_failures[index] for index in sorted(table_failures))
    finally:
        con.close()
    return failures
