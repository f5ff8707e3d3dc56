"""The Great Expectations suite of each feed, derived from its spec and kept in expectations/.

The suite files are the reviewable statement of every row rule and its severity:
"critical" rules send a row to quarantine, "warning" rules are counted and the row is kept.
`ldm expectations --write` regenerates them; a test keeps them in step with the specs.
"""

from __future__ import annotations

import json
from pathlib import Path

import great_expectations as gx
from great_expectations.expectations.registry import get_expectation_impl

import ldm.validate.custom  # noqa: F401 - registers ldm's expectations with GX
from ldm.feeds.codes import OPCS4_SHAPE, VALUE_SETS
from ldm.feeds.spec import Column, FeedSpec

EXPECTATIONS_DIR = Path(__file__).resolve().parents[2] / "expectations"  # the repository's expectations/
UK_POSTCODE = r"^[A-Z]{1,2}[0-9][A-Z0-9]? [0-9][A-Z]{2}$"
SEX_CODES = ["M", "F", "U", "I", "X", "1", "2", "9", "0", "MALE", "FEMALE"]
EARLIEST = {"date_of_birth": 18700101}
EARLIEST_EVENT = 19000101
MAX_AGE = 115
TODAY = {"$PARAMETER": "today_yyyymmdd"}  # supplied at run time: dates may not be in the future


def days_column(column: str) -> str:
    """Name of the derived check column holding a date as yyyymmdd."""
    return f"{column}__yyyymmdd"


def _rule(kind: str, column: str, rule: str, critical: bool, **kwargs) -> dict:
    return {
        "type": kind,
        "kwargs": {"column": column, **kwargs},
        "severity": "critical" if critical else "warning",
        "meta": {"rule": rule},
    }


def _column_rules(column: Column) -> list[dict]:
    name, blocking = column.name, column.required
    rules = []
    if column.required:
        rules.append(_rule("expect_column_values_to_not_be_null", name, f"{name} is missing", True))
    if column.type == "integer":
        rules.append(_rule("expect_column_values_to_match_regex", name, f"{name} is not a whole number",
                           blocking, regex=r"^\s*[0-9]+\s*$"))  # fmt: skip
    elif column.type == "decimal":
        rules.append(_rule("expect_column_values_to_match_regex", name, f"{name} is not a number",
                           False, regex=r"^\s*-?[0-9]+(?:\.[0-9]+)?\s*$"))  # fmt: skip
    elif column.type in ("date", "datetime"):
        rules.append(_rule("expect_column_values_to_match_strftime_format", name,
                           f"{name} is not a real date in the form {column.format}", True,
                           strftime_format=column.format))  # fmt: skip
        rules.append(_rule("expect_column_values_to_be_between", days_column(name),
                           f"{name} is in the future or implausibly early", True,
                           min_value=EARLIEST.get(name, EARLIEST_EVENT), max_value=TODAY))  # fmt: skip
    elif column.type == "nhs_number":
        rules.append(_rule("expect_column_values_to_be_valid_nhs_numbers", name,
                           f"{name} fails the NHS number format or Modulus 11 check (kept, not used to link)",
                           False))  # fmt: skip
    elif column.type == "postcode":
        rules.append(_rule("expect_column_values_to_match_regex", name,
                           f"{name} is not shaped like a UK postcode (kept as text)", False,
                           regex=UK_POSTCODE))  # fmt: skip
    elif column.type == "sex":
        rules.append(_rule("expect_column_values_to_be_in_set", name, f"{name} is not a known sex code",
                           False, value_set=SEX_CODES))  # fmt: skip
    elif column.type == "code":
        rules.append(_code_rule(column))
    return rules


def _code_rule(column: Column) -> dict:
    name, system, blocking = column.name, column.code_system, column.required
    if system == "snomed_ct":
        return _rule("expect_column_values_to_be_valid_snomed_concept_ids", name,
                     f"{name} is not a valid SNOMED CT concept id (Verhoeff check)", blocking)  # fmt: skip
    if system in ("icd10", "gp_practice"):
        what = "an ICD-10 code in the dictionary" if system == "icd10" else "a known Leeds GP practice"
        return _rule("expect_column_values_to_be_in_code_system", name, f"{name} is not {what}",
                     blocking, code_system=system)  # fmt: skip
    if system == "opcs4":
        return _rule("expect_column_values_to_match_regex", name, f"{name} is not shaped like an OPCS-4 code",
                     blocking, regex=OPCS4_SHAPE)  # fmt: skip
    return _rule("expect_column_values_to_be_in_set", name, f"{name} is not a valid {system} code",
                 blocking, value_set=list(VALUE_SETS[system]))  # fmt: skip


def suite_document(spec: FeedSpec) -> dict:
    """The suite for a feed, as the JSON document kept in expectations/."""
    rules = [rule for column in spec.columns for rule in _column_rules(column)]
    if spec.event_date and spec.column("date_of_birth"):
        rules.append(_rule("expect_column_values_to_be_between", "age_at_event",
                           f"age at {spec.event_date} is negative or over {MAX_AGE} (date of birth wrong?)",
                           True, min_value=0, max_value=MAX_AGE))  # fmt: skip
    return {"name": spec.feed, "meta": {"feed_spec_version": spec.spec_version}, "expectations": rules}


def write_suites(specs: dict[str, FeedSpec], folder: Path = EXPECTATIONS_DIR) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for feed, spec in sorted(specs.items()):
        path = folder / f"{feed}.json"
        path.write_text(json.dumps(suite_document(spec), indent=2) + "\n")
        written.append(path)
    return written


def load_suite_document(feed: str, folder: Path = EXPECTATIONS_DIR) -> dict:
    return json.loads((folder / f"{feed}.json").read_text())


def to_gx_expectations(document: dict) -> list:
    """GX expectation objects for each rule of a suite document, in order."""
    expectations = []
    for rule in document["expectations"]:
        implementation = get_expectation_impl(rule["type"])
        expectations.append(implementation(**rule["kwargs"], severity=rule["severity"], meta=rule["meta"]))
    return expectations


def gx_suite(document: dict) -> gx.ExpectationSuite:
    return gx.ExpectationSuite(name=document["name"], expectations=to_gx_expectations(document))
