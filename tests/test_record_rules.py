"""Rules that one record's values can break (ldm.validate.suites.record_rules), and `ldm run` with one.

A date of birth after the registration date once passed validation (DuckDB's date_sub truncates a
negative age of a few months to 0), reached the store as a person aged -1 at the reporting date and
stopped the whole monthly run in a dbt test. These tests plant such records in small extracts built
from the committed sample and check that each is quarantined, or kept and counted, with its rule.
"""

from __future__ import annotations

import contextlib
import csv
import datetime
import io
import shutil
from pathlib import Path

import duckdb
import pytest
import yaml

from ldm.cli import main
from ldm.feeds.read import load_raw
from ldm.feeds.spec import builtin_specs
from ldm.pseudonymise.keys import init_key
from ldm.validate.run import validate
from ldm.validate.suites import MAX_AGE, load_suite_document, suite_document

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "sample_data" / "extracts"
TODAY = datetime.date(2025, 6, 1)
BORN_AFTER = "date_of_birth is after registration_start"
ALIVE_TOO_OLD = f"age is over {MAX_AGE} and no date_of_death is recorded (kept; left out of the marts)"

# (feed, file, the values set on a copy of the file's first row, the rule it must break or None,
# its severity). Each case is one row of that feed's extract; rows that break nothing are the
# boundaries the rules must let through.
CASES = [
    ("gp_registrations", {"Date of Birth": "01/05/2025", "Registration Date": "20/01/2025"},
     BORN_AFTER, "critical"),  # born 5 January, day and month swapped: 1 May, after registering
    ("gp_registrations", {"Date of Birth": "21/01/2025", "Registration Date": "20/01/2025"},
     BORN_AFTER, "critical"),  # a day out: date_sub('year', ...) gives 0 for this, not a negative age
    ("gp_registrations", {"Date of Birth": "20/01/2021", "Registration Date": "19/01/2020"},
     BORN_AFTER, "critical"),  # a year out
    ("gp_registrations", {"Date of Birth": "20/01/2025", "Registration Date": "20/01/2025"},
     None, None),  # registered on the day of birth
    ("gp_registrations", {"Date of Birth": "01/01/1880", "Registration Date": "01/01/2000",
                          "Date of Death": "02/01/2000"},
     f"age at registration_start is over {MAX_AGE} (date of birth wrong?)", "critical"),
    ("gp_registrations", {"Date of Birth": "01/01/2000", "Registration Date": "01/01/2000",
                          "Date of Death": "31/12/1999"},
     "date_of_death is before date_of_birth", "critical"),
    ("gp_registrations", {"Date of Birth": "01/06/1909", "Registration Date": "01/01/1950"},
     ALIVE_TOO_OLD, "warning"),  # 116 on TODAY, no death recorded
    ("gp_registrations", {"Date of Birth": "02/06/1909", "Registration Date": "01/01/1950"},
     None, None),  # 115 on TODAY (116 tomorrow)
    ("gp_registrations", {"Date of Birth": "01/01/1900", "Registration Date": "01/01/1950",
                          "Date of Death": "01/01/1990"},
     None, None),  # would be over 115, but died at 90
    ("apc_spells", {"START_DATE_HOSPITAL_PROVIDER_SPELL": "2024-03-10",
                    "DISCHARGE_DATE_HOSPITAL_PROVIDER_SPELL": "2024-03-09"},
     "discharge_date is before admission_date", "critical"),
    ("apc_spells", {"START_DATE_HOSPITAL_PROVIDER_SPELL": "2024-03-10",
                    "DISCHARGE_DATE_HOSPITAL_PROVIDER_SPELL": "2024-03-10"},
     None, None),  # a day case
    ("apc_spells", {"PERSON_BIRTH_DATE": "2024-03-11", "START_DATE_HOSPITAL_PROVIDER_SPELL": "2024-03-10",
                    "DISCHARGE_DATE_HOSPITAL_PROVIDER_SPELL": "2024-03-12"},
     "date_of_birth is after admission_date", "critical"),
    ("ae_attendances", {"ARRIVAL_DATETIME": "2025-03-28 11:05:00", "DEPARTURE_DATETIME": "2025-03-28 10:00:00"},
     "departure_time is before arrival_time", "warning"),  # earlier on the same day: kept, counted
    ("ae_attendances", {"ARRIVAL_DATETIME": "2025-03-28 23:05:00", "DEPARTURE_DATETIME": "2025-03-29 01:00:00"},
     None, None),  # left after midnight
    ("ae_attendances", {"BIRTH_DATE": "2025-03-28", "ARRIVAL_DATETIME": "2025-03-28 11:05:00",
                        "DEPARTURE_DATETIME": "2025-03-28 14:00:00"},
     None, None),  # brought in on the day of birth
    ("ae_attendances", {"BIRTH_DATE": "2025-03-29", "ARRIVAL_DATETIME": "2025-03-28 11:05:00",
                        "DEPARTURE_DATETIME": "2025-03-28 14:00:00"},
     "date_of_birth is after arrival_time", "critical"),
    ("deaths", {"DEC_DATE_OF_BIRTH": "20240311", "REG_DATE_OF_DEATH": "20240310", "REG_DATE": "20240312"},
     "date_of_death is before date_of_birth", "critical"),
    ("deaths", {"DEC_DATE_OF_BIRTH": "20240310", "REG_DATE_OF_DEATH": "20240310", "REG_DATE": "20240312"},
     None, None),  # died on the day of birth
    ("deaths", {"REG_DATE_OF_DEATH": "20250602", "REG_DATE": ""},
     "date_of_death is in the future or implausibly early", "critical"),  # the day after TODAY
    ("deaths", {"REG_DATE_OF_DEATH": "20250601", "REG_DATE": "20250601"},
     None, None),  # died and registered TODAY
    ("deaths", {"REG_DATE_OF_DEATH": "20240310", "REG_DATE": "20240309"},
     "registration_date is before date_of_death", "critical"),
]  # fmt: skip
FILES = {"gp_registrations": "gp_registrations.csv", "apc_spells": "apc_spells.csv",
         "ae_attendances": "ae_attendances.csv", "deaths": "deaths.csv"}  # fmt: skip


def planted_extract(feed: str, folder: Path) -> Path:
    """The sample extract's header and, for each case of the feed, its first row with the case's values."""
    with open(SAMPLE / FILES[feed], newline="") as handle:
        reader = csv.DictReader(handle)
        first = next(reader)
        header = reader.fieldnames
    path = folder / FILES[feed]
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, header)
        writer.writeheader()
        for number, (case_feed, values, _, _) in enumerate(CASES):
            if case_feed == feed:
                # The sample's first row already has an empty deregistration and death date.
                writer.writerow({**first, header[0]: str(number + 1), **values})
    return path


@pytest.fixture(scope="module")
def judged(tmp_path_factory) -> dict[str, tuple[dict[int, set[str]], dict[str, tuple[str, int]]]]:
    """Each feed's planted extract validated with its suite: reasons by row, and (severity, rows) by rule."""
    folder = tmp_path_factory.mktemp("record_rules")
    specs = builtin_specs()
    out = {}
    for feed in FILES:
        con = duckdb.connect()
        load_raw(con, planted_extract(feed, folder), specs[feed])
        outcome = validate(con, specs[feed], suite_document(specs[feed]), TODAY)
        reasons: dict[int, set[str]] = {}
        for row, rule in con.execute("select row_number, rule from failures").fetchall():
            reasons.setdefault(row, set()).add(rule)
        rows = con.execute("select count(*) from raw").fetchall()[0][0]
        assert outcome.rows_in == rows and outcome.rows_quarantined == len(reasons)
        out[feed] = (reasons, {r.rule: (r.severity, r.rows) for r in outcome.rules})
        con.close()
    return out


@pytest.mark.parametrize(
    ("case", "feed", "rule", "severity"),
    [(number, feed, rule, severity) for number, (feed, _, rule, severity) in enumerate(CASES)],
    ids=[f"{feed}-{rule or 'passes'}-{number}" for number, (feed, _, rule, _) in enumerate(CASES)],
)
def test_a_record_breaking_a_rule_is_quarantined_or_counted_with_its_rule(judged, case, feed, rule, severity):
    reasons, by_rule = judged[feed]
    row = 1 + sum(1 for earlier, *_ in CASES[:case] if earlier == feed)  # its row in the feed's extract
    if severity == "critical":
        assert reasons.get(row) == {rule}, reasons.get(row)  # quarantined for this reason alone
    else:
        assert row not in reasons, reasons[row]  # kept
    if severity == "warning":
        planted = sum(1 for f, _, r, _ in CASES if (f, r) == (feed, rule))
        assert by_rule[rule] == ("warning", planted)


def test_each_feed_with_the_dates_has_its_record_rules_and_the_committed_suites_hold_them():
    """Rules are data in the suites derived from the specs: a feed gets the rules its columns allow."""
    expected = {
        "gp_registrations": {(BORN_AFTER, "critical"), ("date_of_death is before date_of_birth", "critical"),
                             (f"age at registration_start is over {MAX_AGE} (date of birth wrong?)", "critical"),
                             (ALIVE_TOO_OLD, "warning")},
        "apc_spells": {("date_of_birth is after admission_date", "critical"),
                       (f"age at admission_date is over {MAX_AGE} (date of birth wrong?)", "critical"),
                       ("discharge_date is before admission_date", "critical")},
        "ae_attendances": {("date_of_birth is after arrival_time", "critical"),
                           (f"age at arrival_time is over {MAX_AGE} (date of birth wrong?)", "critical"),
                           ("departure_time is before arrival_time", "warning")},
        "gp_events": set(),  # no date of birth, no second date
        # A death is the event: one rule on its order with the birth, none on people alive too long.
        "deaths": {("date_of_death is before date_of_birth", "critical"),
                   (f"age at date_of_death is over {MAX_AGE} (date of birth wrong?)", "critical"),
                   ("registration_date is before date_of_death", "critical")},
    }  # fmt: skip
    derived = {"age_at_event", "age_at_death", "age_if_alive", "days_admission_date_to_discharge_date",
               "days_arrival_time_to_departure_time", "days_date_of_death_to_registration_date"}  # fmt: skip
    for feed, rules in expected.items():
        for document in (suite_document(builtin_specs()[feed]), load_suite_document(feed)):
            found = {
                (r["meta"]["rule"], r["severity"])
                for r in document["expectations"]
                if r["kwargs"]["column"] in derived
            }
            assert found == rules, feed


def test_the_marts_oldest_plausible_age_is_validations():
    """dbt leaves out of the registered population the ages that validation counts as implausible."""
    project = yaml.safe_load((REPO / "dbt_project" / "dbt_project.yml").read_text())
    assert project["vars"]["max_plausible_age"] == MAX_AGE


@pytest.mark.slow
def test_ldm_run_completes_with_a_day_and_month_swapped_birth_after_registration(tmp_path):
    """The issue's record: a baby born 5 January 2025, registered 20 January, sent as born 1 May.

    Aged -1 at the reporting date (31 March 2025), it stopped `ldm run` in a dbt test. Now the row
    is quarantined with its rule, the batch's counts reconcile, and the run completes.
    """
    extracts = tmp_path / "extracts"
    shutil.copytree(SAMPLE, extracts)
    registrations = extracts / "gp_registrations.csv"
    with open(registrations, newline="") as handle:
        rows = list(csv.DictReader(handle))
    planted = rows[-1]
    planted.update({"Date of Birth": "01/05/2025", "Registration Date": "20/01/2025",
                    "Deregistration Date": "", "Date of Death": ""})  # fmt: skip
    with open(registrations, "w", newline="") as handle:
        writer = csv.DictWriter(handle, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    store = tmp_path / "store.duckdb"
    init_key(tmp_path / "ldm.key")
    args = ["run", "--extracts", str(extracts), "--store", str(store), "--key-file", str(tmp_path / "ldm.key"),
            "--today", TODAY.isoformat()]  # fmt: skip
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
        code = main(args)
    assert code == 0, printed.getvalue()[-3000:]

    with open(extracts / "quarantine" / "gp_registrations.csv.rejected.csv", newline="") as handle:
        rejected = {row["Registration ID"]: row["reasons"] for row in csv.DictReader(handle)}
    assert rejected[planted["Registration ID"]] == BORN_AFTER
    con = duckdb.connect(str(store), read_only=True)
    try:
        batch, rows_in, accepted, quarantined = con.execute(
            """select batch_id, rows_in, rows_accepted, rows_quarantined from governance.batches
               where feed = 'gp_registrations'"""
        ).fetchall()[0]
        assert rows_in == len(rows) and rows_in == accepted + quarantined and quarantined == len(rejected)
        counted = dict(
            con.execute(
                "select rule, rows from governance.quarantine_counts where batch_id = ? and severity = 'critical'",
                [batch],
            ).fetchall()
        )
        assert counted[BORN_AFTER] == sum(BORN_AFTER in reasons for reasons in rejected.values())
        assert sum(counted.values()) >= quarantined  # a row may break more than one rule
        ages = con.execute("select min(age), max(age) from intermediate.int_registered_list").fetchall()[0]
        assert ages[0] >= 0 and ages[1] <= MAX_AGE
    finally:
        con.close()
