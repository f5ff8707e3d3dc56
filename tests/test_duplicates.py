"""Duplicates inside one extract: each record loaded once (its last version), every row counted once.

The committed sample's generator planted exact duplicate rows in every records feed and recorded
them in the ground truth (`duplicated`: the record was written twice, the copy straight after it).
So on the store `ldm demo` built from it (the shared session fixture) the duplicates counted per
batch can be checked against what was planted, and the marts against a run without them. Small
hand-made extracts on a copy of that store check the rules: same key with other content (the last
row wins), duplicates of records the store already holds, opted-out people, feeds without a key,
and the opt-out list itself.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
from pathlib import Path

import duckdb
import pytest
from conftest import REPO, query

from ldm.cli import main
from ldm.config import load_settings
from ldm.demo import SAMPLE_TODAY
from ldm.feeds.spec import builtin_specs
from ldm.governance import audit
from ldm.load.batches import BatchLoad
from ldm.load.loader import FEED_TABLES, load_folder
from ldm.pipeline import run_pipeline
from ldm.pseudonymise.batch import pseudonymise_folder
from ldm.pseudonymise.keys import init_key, load_key
from ldm.synthetic.formats import FORMATS

TRUTH = REPO / "sample_data" / "ground_truth"
EXTRACTS = REPO / "sample_data" / "extracts"
COUNTS = "rows_in, rows_accepted, rows_quarantined, rows_duplicate, rows_resent, rows_withheld, rows_loaded"


def batch_counts(store: Path) -> dict[int, dict]:
    names = ["batch_id", "feed", "provider", "spec_name", "spec_version", *COUNTS.split(", "), "rows_revised"]
    rows = query(store, f"select {', '.join(names)} from governance.batches order by batch_id")
    return {row[0]: dict(zip(names, row, strict=True)) for row in rows}


def reconciles(batch: dict) -> bool:
    """Every row of the batch counted once, in exactly one place."""
    after_validation = (
        batch["rows_duplicate"] + batch["rows_resent"] + batch["rows_withheld"] + batch["rows_loaded"]
    )
    return (
        batch["rows_in"] == batch["rows_quarantined"] + after_validation
        and batch["rows_accepted"] == after_validation
    )


# The committed sample ------------------------------------------------------------------------------


def test_every_batch_of_the_sample_reconciles_and_names_its_spec(sample_marts_store: Path) -> None:
    batches = batch_counts(sample_marts_store)
    feeds = [b["feed"] for b in batches.values()]
    assert feeds[0] == "opt_out" and sorted(feeds[1:]) == sorted(FEED_TABLES)
    details = {
        subject: json.loads(detail)
        for subject, detail in query(
            sample_marts_store, "select subject, detail from governance.audit_log where action = 'load'"
        )
    }
    for batch_id, batch in batches.items():
        assert reconciles(batch), batch
        assert batch["provider"] and batch["spec_name"] and batch["spec_version"]
        detail = details[f"batch {batch_id}"]
        assert (detail["rows_duplicate"], detail["provider"]) == (batch["rows_duplicate"], batch["provider"])
        if batch["feed"] == "opt_out":  # loaded first: its entries are the store's whole list
            assert batch["rows_withheld"] == 0
            assert (
                query(sample_marts_store, "select count(*) from linkage.opt_outs")[0][0]
                == batch["rows_loaded"]
            )
            continue
        table = FEED_TABLES[batch["feed"]]
        stored = query(sample_marts_store, f"select count(*) from main.{table} where batch_id = ?", batch_id)
        removed = query(
            sample_marts_store,
            "select coalesce(sum(records_removed), 0) from governance.opt_out_counts where batch_id = ?",
            batch_id,
        )
        assert (stored[0][0], removed[0][0]) == (batch["rows_loaded"], batch["rows_withheld"])


def test_planted_duplicates_are_counted_as_duplicates_and_stored_once(sample_marts_store: Path) -> None:
    """rows_duplicate is, per feed, the planted duplicates whose rows passed validation.

    A planted duplicate is an exact copy, so both copies pass validation or both are quarantined;
    the seam file holds the accepted ones, so "passed validation" is "its record id is in the seam".
    Duplicates are recognised before opt-outs: an opted-out person's duplicate counts here too, and
    their record once among the withheld.
    """
    batches = {b["feed"]: b for b in batch_counts(sample_marts_store).values()}
    seam = sample_marts_store.parent / "pseudonymised"
    con = duckdb.connect(str(sample_marts_store), read_only=True)
    con.execute(f"create temp view truth as select * from read_parquet('{TRUTH / 'records.parquet'}')")
    con.execute(f"create temp view people as select * from read_parquet('{TRUTH / 'persons.parquet'}')")
    measured = {}
    try:
        for feed, table in FEED_TABLES.items():
            (parquet,) = (seam / feed).glob("*.parquet")
            con.execute(f"create or replace temp view accepted as select * from read_parquet('{parquet}')")
            planted, repeats = con.execute(
                f"""select (select count(*) from truth where feed = '{feed}' and duplicated
                              and record_id in (select record_id from accepted)),
                           (select count(*) - count(distinct record_id) from accepted)"""
            ).fetchall()[0]
            measured[feed] = (planted, batches[feed]["rows_duplicate"])
            assert batches[feed]["rows_duplicate"] == planted == repeats
            # The sample's 22 deaths, at the planted rate of 0.5%, happen to have no duplicate.
            assert planted > 0 or feed == "deaths", feed
            assert con.execute(
                f"select count(*) from main.{table} group by record_id order by 1 desc limit 1"
            ).fetchall() == [(1,)]
            # Every accepted planted duplicate of someone who has not opted out is in the store, once.
            missing = con.execute(
                f"""select count(*) from truth t join people p using (person_key)
                    where t.feed = '{feed}' and t.duplicated and not p.opted_out
                      and t.record_id in (select record_id from accepted)
                      and t.record_id not in (select record_id from main.{table})"""
            ).fetchall()[0][0]
            assert missing == 0
    finally:
        con.close()
    print("planted duplicates that passed validation, and rows_duplicate, per feed:", measured)


# The build stamp says which dbt build wrote a row (and from which audit head), not what the row says.
BUILD_STAMP = ("dbt_invocation_id", "built_at", "audit_head")


def _comparable(store: Path, table: str, *leave_out: str) -> list[tuple]:
    exclude = ", ".join((*BUILD_STAMP, *leave_out))
    return query(store, f"select * exclude ({exclude}) from marts.{table} order by all")


def _same(rows: list[tuple], others: list[tuple]) -> bool:
    """Equal rows, doubles to 1e-9 (a sum's last bits depend on the order DuckDB's threads add in)."""
    if len(rows) != len(others):
        return False
    for row, other in zip(rows, others, strict=True):
        for a, b in zip(row, other, strict=True):
            if isinstance(a, float) and isinstance(b, float):
                if not (math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12) or (math.isnan(a) and math.isnan(b))):
                    return False
            elif a != b:
                return False
    return True


def test_the_marts_count_planted_duplicates_once(sample_marts_store: Path, tmp_path: Path) -> None:
    """The same extracts with every planted duplicate taken out give the same marts.

    The generator writes a duplicate straight after its record, so it is a line equal to the one
    before it; how many are taken out per file is checked against the ground truth first.
    """
    truth = dict(
        query(
            sample_marts_store,
            f"select feed, count(*) filter (where duplicated) from read_parquet('{TRUTH / 'records.parquet'}') "
            "group by feed",
        )
    )
    extracts = tmp_path / "extracts"
    extracts.mkdir()
    for feed, fmt in FORMATS.items():
        lines = (EXTRACTS / fmt.file_name).read_bytes().splitlines(keepends=True)
        kept = [line for i, line in enumerate(lines) if i == 0 or line != lines[i - 1]]
        (extracts / fmt.file_name).write_bytes(b"".join(kept))
        assert len(lines) - len(kept) == truth.get(feed, 0), feed
    init_key(tmp_path / "k.key")
    settings = load_settings(
        None,
        store=tmp_path / "store.duckdb",
        key_file=tmp_path / "k.key",
        today=SAMPLE_TODAY,
        pseudonymised=tmp_path / "seam",
    )
    report = run_pipeline(extracts, settings)
    assert sum(load.rows_duplicate for load in report.loaded.loaded) == 0
    without = tmp_path / "store.duckdb"
    for table in ("mart_prevalence", "mart_utilisation", "mart_inequalities"):
        assert _same(_comparable(sample_marts_store, table), _comparable(without, table)), table
    # Person ids are issued in the order new persons are found, so they are left out here.
    person_level = _comparable(sample_marts_store, "mart_person_analysis", "person_id")
    assert person_level == _comparable(without, "mart_person_analysis", "person_id")
    admissions = "select sum(emergency_admissions + elective_admissions) from marts.mart_person_analysis"
    assert query(without, admissions)[0][0] > 0  # admissions were counted at all


# The rules, on hand-made extracts ------------------------------------------------------------------


@dataclasses.dataclass
class Store:
    path: Path
    key_file: Path
    root: Path

    def load(self, name: str, lines: list[str], specs=None) -> BatchLoad:
        """Pseudonymise and load one extract; return what its batch did."""
        incoming = self.root / f"incoming-{name}"
        incoming.mkdir()
        (incoming / name).write_text("\n".join(lines) + "\n")
        key = load_key(self.key_file)
        seam = self.root / f"seam-{name}"
        pseudonymise_folder(incoming, seam, key, specs or builtin_specs(), SAMPLE_TODAY)
        (load,) = load_folder(seam, self.path, key).loaded
        assert reconciles(batch_counts(self.path)[load.batch_id])
        return load


@pytest.fixture
def store(sample_marts_store: Path, tmp_path: Path) -> Store:
    """A private copy of the demo's store and its audit anchor."""
    copy = tmp_path / "store.duckdb"
    shutil.copy(sample_marts_store, copy)
    shutil.copy(audit.anchor_path(sample_marts_store), audit.anchor_path(copy))
    return Store(copy, sample_marts_store.parent.parent / "demo.key", tmp_path)


OPTED_OUT = set((EXTRACTS / "national_data_opt_out.csv").read_text().split()[1:])
APPOINTMENTS = (EXTRACTS / "op_appointments.csv").read_text().splitlines()
STATUS = APPOINTMENTS[0].split(",").index("AttendanceStatus")


def appointment(record_id: int, source: list[str], status: str | None = None) -> str:
    fields = [str(record_id), *source[1:]]
    if status is not None:
        fields[STATUS] = f'"{status}"'
    return ",".join(fields)


def sample_rows(opted_out: bool) -> list[list[str]]:
    return [
        line.split(",")
        for line in APPOINTMENTS[1:]
        if (line.split(",")[1].strip('"') in OPTED_OUT) == opted_out
    ]


def test_the_last_version_in_the_file_is_kept_and_the_others_counted_as_duplicates(store: Store) -> None:
    first, second = sample_rows(opted_out=False)[:2]
    lines = [
        appointment(990300, first, "5"),
        appointment(990301, second),
        appointment(990300, first, "3"),  # the same appointment, its latest version: did not attend
        appointment(990301, second),
    ]
    load = store.load("op_appointments_twice.csv", [APPOINTMENTS[0], *lines])
    assert (load.rows_accepted, load.rows_duplicate, load.rows_resent, load.rows_revised) == (4, 2, 0, 0)
    assert (load.rows_loaded, load.withheld_by_opt_out) == (2, 0)
    stored = query(
        store.path,
        "select record_id, row_number, attendance_status from main.op_appointments where batch_id = ? order by 1",
        load.batch_id,
    )
    assert stored == [(990300, 3, "3"), (990301, 4, second[STATUS].strip('"'))]


def test_duplicates_of_a_stored_record_are_duplicates_and_the_kept_row_is_re_sent_or_revised(
    store: Store,
) -> None:
    stored_ids = {r for (r,) in query(store.path, "select record_id from main.op_appointments")}
    row = next(r for r in sample_rows(opted_out=False) if int(r[0]) in stored_ids)
    record = int(row[0])
    again = store.load("op_appointments_again.csv", [APPOINTMENTS[0], ",".join(row), ",".join(row)])
    assert (again.rows_duplicate, again.rows_resent, again.rows_revised, again.rows_loaded) == (1, 1, 0, 0)
    status = "2" if row[STATUS] != '"2"' else "6"
    revised = store.load(
        "op_appointments_revised.csv", [APPOINTMENTS[0], *[appointment(record, row, status)] * 3]
    )
    assert (revised.rows_duplicate, revised.rows_resent, revised.rows_revised, revised.rows_loaded) == (
        2,
        0,
        1,
        1,
    )
    assert query(
        store.path, "select attendance_status, batch_id from main.op_appointments where record_id = ?", record
    ) == [(status, revised.batch_id)]


def test_an_opted_out_person_s_record_sent_twice_is_one_duplicate_and_withheld_once(store: Store) -> None:
    row = sample_rows(opted_out=True)[0]
    load = store.load("op_appointments_opted_out.csv", [APPOINTMENTS[0], *[appointment(990400, row)] * 2])
    assert (load.rows_duplicate, load.withheld_by_opt_out, load.rows_loaded) == (1, 1, 0)
    assert batch_counts(store.path)[load.batch_id]["rows_withheld"] == 1


def test_without_a_record_key_only_identical_rows_are_duplicates(store: Store) -> None:
    specs = {
        name: dataclasses.replace(spec, record_key=()) if spec.feed == "gp_events" else spec
        for name, spec in builtin_specs().items()
    }
    header, *events = (EXTRACTS / "gp_events.txt").read_text().splitlines()
    fields = next(
        line.split("|")
        for line in events
        if line.split("|")[1].strip('"') not in OPTED_OUT and line.split("|")[5]
    )
    event = "|".join(["990500", *fields[1:]])
    other_value = "|".join(["990500", *fields[1:5], "1.5", *fields[6:]])  # same id: a key would make it one
    load = store.load("gp_events_no_key.txt", [header, event, event, other_value], specs)
    assert (load.rows_duplicate, load.rows_resent, load.rows_loaded + load.withheld_by_opt_out) == (1, 0, 2)


def test_an_opt_out_list_counts_a_repeated_nhs_number_once(store: Store) -> None:
    listed = (EXTRACTS / "national_data_opt_out.csv").read_text().split()
    valid = listed[1]
    invalid = valid[:-1] + str((int(valid[-1]) + 1) % 10)  # the check digit is wrong
    load = store.load("national_data_opt_out_2.csv", [*listed, valid, invalid])
    batch = batch_counts(store.path)[load.batch_id]
    assert (batch["rows_in"], batch["rows_duplicate"], batch["rows_loaded"], batch["rows_withheld"]) == (
        len(listed) + 1,
        1,
        len(listed),  # the entries: every number of the list once, the invalid one too
        0,
    )
    assert query(
        store.path, "select nhs_numbers_invalid from governance.batches where batch_id = ?", load.batch_id
    ) == [(1,)]
    assert query(store.path, "select count(*) from linkage.opt_outs")[0][0] == len(listed) - 1


def test_the_ig_report_shows_provider_spec_and_where_every_row_went(store: Store, tmp_path: Path) -> None:
    out = tmp_path / "report.md"
    assert (
        main(
            [
                "audit",
                "report",
                "--store",
                str(store.path),
                "--out",
                str(out),
                "--key-file",
                str(store.key_file),
            ]
        )
        == 0
    )
    text = out.read_text()
    assert "| batch_id | feed | provider | spec_name | spec_version | input_file | sha256_prefix |" in text
    header = (
        "| batch_id | feed | rows_in | rows_accepted | rows_quarantined | rows_duplicate | rows_resent | "
        "rows_revised | rows_withheld | rows_loaded | reconciles |"
    )
    assert header in text
    rows = text.split(header)[1].split("\n\n")[0].strip().splitlines()[1:]
    # the opt-out list's batch and one batch per feed of the sample
    assert len(rows) == 1 + len(FEED_TABLES) and all(row.endswith("| yes |") for row in rows)
