"""Great Expectations suites of the dbt marts (expectations/marts.json), run over a built store.

Each mart is read from the store (DuckDB, read-only) as Arrow record batches of ``BATCH_ROWS``
rows, and each batch, converted to pandas on its own, is validated by GX through an ephemeral
context and a pandas datasource (GX over a DuckDB SQL datasource does not work here). Every column
and column-pair expectation in the suite judges each row on its own, so validating batch by batch
gives the same verdict as validating the whole table, without holding the table in pandas; the
unexpected counts are added up over the batches. Table-level expectations (the row count) are
validated once, on a frame with the table's row count and no columns.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import great_expectations as gx
import pandas as pd
from great_expectations.data_context.types.base import ProgressBarsConfig
from great_expectations.expectations.registry import get_expectation_impl

from ldm.errors import LdmError

logging.getLogger("great_expectations").setLevel(logging.ERROR)

SUITE_PATH = Path(__file__).resolve().parents[2] / "expectations" / "marts.json"
MARTS_SCHEMA = "marts"
BATCH_ROWS = 100_000
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
        self.context = gx.get_context(mode="ephemeral")
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False)
        source = self.context.data_sources.add_pandas("marts")
        self.batch = source.add_dataframe_asset("mart").add_batch_definition_whole_dataframe("batch")
        self.definitions: dict[str, gx.ValidationDefinition] = {}

    def definition(self, name: str, rules: list[dict]) -> gx.ValidationDefinition:
        if name not in self.definitions:
            # GX does not return results in the suite's order: each expectation carries its index.
            expectations = [
                get_expectation_impl(rule["type"])(
                    **rule["kwargs"], meta={**rule.get("meta", {}), "index": index}
                )
                for index, rule in enumerate(rules)
            ]
            suite = self.context.suites.add(gx.ExpectationSuite(name=name, expectations=expectations))
            self.definitions[name] = self.context.validation_definitions.add(
                gx.ValidationDefinition(name=name, data=self.batch, suite=suite)
            )
        return self.definitions[name]

    def run(self, name: str, rules: list[dict], frame: pd.DataFrame) -> list:
        result = self.definition(name, rules).run(
            batch_parameters={"dataframe": frame}, result_format={"result_format": "SUMMARY"}
        )
        return result.results


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


def validate_marts(
    store_path: Path | str, suite_path: Path = SUITE_PATH, batch_rows: int = BATCH_ROWS
) -> list[ExpectationFailure]:
    """Validate every mart named in the suite; return the failed expectations (empty when all pass).

    A mart missing from the store is reported as a failure of its row-count expectation.
    """
    suite = load_suite(suite_path)
    validator = _Validator()
    failures: list[ExpectationFailure] = []
    con = duckdb.connect(str(store_path), read_only=True)
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
            by_rule: dict[int, ExpectationFailure] = {}
            reader = con.sql(f'select * from {MARTS_SCHEMA}."{mart}"').to_arrow_reader(batch_rows)
            rows = 0
            for batch in reader:
                if batch.num_rows == 0:
                    continue
                rows += batch.num_rows
                frame = batch.to_pandas()
                _merge(by_rule, mart, row_rules, validator.run(f"{mart}.rows", row_rules, frame))
            failures.extend(by_rule[index] for index in sorted(by_rule))
            if table_rules:
                table_failures: dict[int, ExpectationFailure] = {}
                frame = pd.DataFrame(index=pd.RangeIndex(rows))
                _merge(table_failures, mart, table_rules, validator.run(f"{mart}.table", table_rules, frame))
                failures.extend(table_failures[index] for index in sorted(table_failures))
    finally:
        con.close()
    return failures
