"""The Great Expectations suite of each feed, derived from its spec and kept in expectations/.

The suite files are the reviewable statement of every row rule and its severity:
"critical" rules send a row to quarantine, "warning" rules are counted and the row is kept.
`ldm expectations --write` regenerates them; a test keeps them in step with the specs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from ldm.column_types import TYPES, expectation
from ldm.feeds.spec import Column, FeedSpec

if TYPE_CHECKING:
    import great_expectations as gx

EXPECTATIONS_DIR = Path(__file__).resolve().parents[2] / "expectations"  # the repository's expectations/
MAX_AGE = 115
# Derived check columns of the record rules (ldm.validate.run computes them per row in DuckDB).
AGE_AT_EVENT = "age_at_event"  # completed years from birth to the event date; -1 when born after it
AGE_AT_DEATH = "age_at_death"  # the same from birth to death; null without a date of death
AGE_IF_ALIVE = "age_if_alive"  # completed years at the run's date (`today`) when no death is recorded
# Dates of one record that cannot come before another: (earlier, later, critical). A spell discharged
# before its admission has no length of stay the marts can use (bed days), so it is quarantined; no
# mart uses an A&E departure time, so a departure before arrival is counted and the attendance kept.
# A death registered before it happened has one of its two dates wrong, and mortality counts deaths by
# either (occurrence or registration), so it is quarantined.
DATE_ORDER = (
    ("admission_date", "discharge_date", True),
    ("arrival_time", "departure_time", False),
    ("date_of_death", "registration_date", True),
)


def span_column(earlier: str, later: str) -> str:
    """Name of the derived check column holding the days from one date of a record to another."""
    return f"days_{earlier}_to_{later}"


def _column_rules(column: Column) -> list[dict]:
    """A column's rules: present if required, then its type's own (ldm.column_types)."""
    rules = []
    if column.required:
        rules.append(
            expectation("expect_column_values_to_not_be_null", column.name, f"{column.name} is missing", True)
        )
    return rules + TYPES[column.type].rules(column)


def suite_document(spec: FeedSpec) -> dict:
    """The suite for a feed, as the JSON document kept in expectations/."""
    rules = [rule for column in spec.columns for rule in _column_rules(column)]
    rules += record_rules(spec)
    return {"name": spec.feed, "meta": {"feed_spec_version": spec.spec_version}, "expectations": rules}


def record_rules(spec: FeedSpec) -> list[dict]:
    """Rules on two values of one record, which one bad record can break: kept here, not in dbt.

    Found in a dbt test, such a record stopped the whole monthly run and was named only by the test;
    as a validation rule it costs its own row at most and is named in the quarantine file. Each rule
    is checked on a derived age (ldm.validate.run makes the check columns), one distinct age at a time:
    - a birth after the feed's event date (a day/month swap, a year out) is critical, as is an age
      over MAX_AGE at the event: the age at the event and the date of birth used to link are wrong;
    - a death before birth is critical: one of the two dates is wrong, and both place the person (in
      the deaths feed, whose event is the death, this is the one rule on the order of the two);
    - in a feed that records deaths, an age over MAX_AGE at the run's date with no death recorded is
      a warning: the record is kept (the person is registered) and counted, and dbt leaves the
      person out of the registered population (int_registered_population) with a count;
    - a date before the one it follows (DATE_ORDER), critical or not as the marts use the later date.
    """

    def between(column: str, rule: str, critical: bool, **bounds) -> dict:
        return expectation("expect_column_values_to_be_between", column, rule, critical, **bounds)

    born = spec.column("date_of_birth")
    death_feed = spec.event_date == "date_of_death"  # a record of a death (the deaths feed)
    rules = []
    if born and spec.event_date:
        event = spec.event_date
        if not death_feed:  # for a death, the rule below says the same in a death's words
            rules.append(between(AGE_AT_EVENT, f"date_of_birth is after {event}", True, min_value=0))
        too_old = f"age at {event} is over {MAX_AGE} (date of birth wrong?)"
        rules.append(between(AGE_AT_EVENT, too_old, True, max_value=MAX_AGE))
    if born and spec.column("date_of_death"):
        rules.append(between(AGE_AT_DEATH, "date_of_death is before date_of_birth", True, min_value=0))
        if not death_feed:  # every record of a death records one
            too_old = f"age is over {MAX_AGE} and no date_of_death is recorded (kept; left out of the marts)"
            rules.append(between(AGE_IF_ALIVE, too_old, False, max_value=MAX_AGE))
    for earlier, later, critical in DATE_ORDER:
        if spec.column(earlier) and spec.column(later):
            rules.append(
                between(span_column(earlier, later), f"{later} is before {earlier}", critical, min_value=0)
            )
    return rules


def write_suites(specs: dict[str, FeedSpec], folder: Path = EXPECTATIONS_DIR) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, spec in sorted(specs.items()):
        path = folder / f"{name}.json"
        path.write_text(json.dumps(suite_document(spec), indent=2) + "\n")
        written.append(path)
    return written


def load_suite_document(feed: str, folder: Path = EXPECTATIONS_DIR) -> dict:
    return json.loads((folder / f"{feed}.json").read_text())


def to_gx_expectations(document: dict) -> list:
    """GX expectation objects for each rule of a suite document, in order.

    Great Expectations is imported here, when a suite is first run, not with the module: it takes
    about 4 s to import, which every `ldm` command would otherwise pay, `ldm audit verify` included."""
    from great_expectations.expectations.registry import get_expectation_impl

    import ldm.validate.custom  # noqa: F401 - registers ldm's expectations with GX

    expectations = []
    for rule in document["expectations"]:
        implementation = get_expectation_impl(rule["type"])
        expectations.append(implementation(**rule["kwargs"], severity=rule["severity"], meta=rule["meta"]))
    return expectations


def gx_suite(document: dict) -> gx.ExpectationSuite:
    import great_expectations as gx

    return gx.ExpectationSuite(name=document["name"], expectations=to_gx_expectations(document))
