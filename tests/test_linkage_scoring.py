"""Linkage quality of a store, record by record against ground truth; and what the store shows alone.

A hand-made store of four persons and a hand-made ground truth of four true persons hold one of
each case: a true link, a false link, an unlinked record of someone on the spine, records of
someone on no person of the spine (one of them wrongly linked), a true person split over two
store persons and a store person holding registrations of two true persons. Every figure below
is counted by hand from the tables in `store_and_truth`.
"""

from __future__ import annotations

import datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ldm.cli import main
from ldm.errors import LdmError
from ldm.governance.report import link_rate_lines
from ldm.linkage import bench
from ldm.linkage.scoring import score_store
from models.feeds import FEED_TABLES

# True persons: key -> (imd_decile, sex, date_of_birth, ethnic_category). P4 is on no person of the spine.
P1, P2, P3, P4 = 1, 2, 3, 4
PERSONS = {
    P1: (1, "F", datetime.date(1980, 6, 1), "A"),  # quintile 1, 44 on 2025-03-31, White
    P2: (10, "M", datetime.date(2015, 1, 1), "N"),  # quintile 5, 10, Black or Black British
    P3: (5, "F", datetime.date(1950, 1, 1), "Z"),  # quintile 3, 75, Not stated
    P4: (None, "M", datetime.date(1940, 5, 5), "A"),  # out of area: no IMD; 84, White
}
# Store persons S1..S4. S2 and S3 are both P2 (split); S4 holds P3, P3 and P1 (merged; mostly P3).
S1, S2, S3, S4 = 101, 102, 103, 104
# (record_id, person_id, link_step, nhs_number_valid, true person, imd_quintile, age_at_event, sex)
# per table; the last three are the record's own, as its provider sent them (gp_events has none).
RECORDS = {
    "registrations": [
        (1, S1, "new_person", True, P1, 1, 30, "F"),
        (2, S2, "new_person", True, P2, 1, 30, "F"),
        (3, S3, "new_person", True, P2, 1, 30, "F"),
        (4, S4, "new_person", True, P3, 1, 30, "F"),
        (5, S4, "new_person", True, P3, 1, 30, "F"),
        (6, S4, "new_person", True, P1, 1, 30, "F"),
    ],
    "gp_events": [(1, S1, "nhs_number", True, P1)],  # true link
    "apc_spells": [
        (1, S4, "dob_sex_postcode", False, P1, 1, 44, "F"),  # false link: S4 is P3
        (2, None, "unlinked", False, P3, 2, 70, "F"),  # missed: P3 is on the spine
    ],
    "ae_attendances": [
        (1, None, "unlinked", False, P4, None, 84, "M"),  # rightly unlinked: P4 is not on the spine
        (2, S1, "probabilistic", None, P4, None, 84, "M"),  # false link of someone not on the spine
    ],
    "op_appointments": [(1, S3, "nhs_number_dob", True, P2, 5, 10, "M")],  # true link to a split person
    "community_contacts": [(1, None, "unlinked", True, P2, 5, 10, "M")],  # missed
    "deaths": [],
}
FEEDS = {table: feed for feed, table in FEED_TABLES.items()}


@pytest.fixture(scope="module")
def store_and_truth(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("scoring")
    store, truth = folder / "store.duckdb", folder / "ground_truth"
    truth.mkdir()
    con = duckdb.connect(str(store))
    for table, rows in RECORDS.items():
        own = "" if table == "gp_events" else ", imd_quintile smallint, age_at_event smallint, sex varchar"
        con.execute(
            f"""create table main.{table} (batch_id bigint, record_id bigint, person_id bigint,
                link_step varchar, nhs_number_valid boolean{own})"""
        )
        for record_id, person_id, step, valid, _, *record_own in rows:
            values = [1, record_id, person_id, step, valid, *record_own]
            con.execute(f"insert into main.{table} values ({', '.join('?' for _ in values)})", values)
    con.close()
    truth_rows = [(FEEDS[table], row[0], row[4]) for table, rows in RECORDS.items() for row in rows]
    truth_rows += [
        ("gp_events", 2, P1),  # withheld by an opt-out: in the truth, not in the store, not scored
        ("op_appointments", 1, P2),  # a row sent twice is one record
    ]
    feed, record_id, person_key = zip(*truth_rows, strict=True)
    pq.write_table(
        pa.table({"feed": feed, "record_id": record_id, "person_key": person_key}), truth / "records.parquet"
    )
    keys = list(PERSONS)
    columns = list(zip(*PERSONS.values(), strict=True))
    pq.write_table(
        pa.table(
            {
                "person_key": keys,
                "imd_decile": pa.array(columns[0], pa.int64()),
                "sex": columns[1],
                "date_of_birth": columns[2],
                "ethnic_category": columns[3],
            }
        ),
        truth / "persons.parquet",
    )
    return store, truth


def counts(rows: list[dict]) -> list[tuple]:
    return [(r["group"], r["records"], r["in_spine"], r["linked"], r["true_links"]) for r in rows]


def test_overall_figures_and_persons(store_and_truth):
    report = score_store(*store_and_truth)
    overall = report.overall
    assert (overall["records"], overall["in_spine"], overall["linked"], overall["true_links"]) == (7, 5, 4, 2)
    assert overall["precision"] == 0.5  # 2 true of 4 linked
    assert overall["recall"] == 0.4  # 2 true of 5 whose true person is on the spine
    assert overall["link_rate"] == pytest.approx(4 / 7)
    assert report.persons == {"store_persons": 4, "true_persons": 3, "split": 1, "merged": 1}


def test_figures_by_feed_and_step(store_and_truth):
    by = score_store(*store_and_truth).by
    assert counts(by["feed"]) == [
        ("ae_attendances", 2, 0, 1, 0),
        ("apc_spells", 2, 2, 1, 0),
        ("community_contacts", 1, 1, 0, 0),
        ("gp_events", 1, 1, 1, 1),
        ("op_appointments", 1, 1, 1, 1),
    ]
    ae = by["feed"][0]
    assert (ae["precision"], ae["recall"], ae["link_rate"]) == (0.0, None, 0.5)  # nobody to find
    assert counts(by["step"]) == [
        ("dob_sex_postcode", 1, 1, 1, 0),
        ("nhs_number", 1, 1, 1, 1),
        ("nhs_number_dob", 1, 1, 1, 1),
        ("probabilistic", 1, 0, 1, 0),
        ("unlinked", 3, 2, 0, 0),
    ]
    assert counts(by["nhs_number"]) == [("not valid", 4, 2, 2, 0), ("valid", 3, 3, 2, 2)]
    assert counts(by["no_valid_nhs_number_by_feed"]) == [
        ("ae_attendances", 2, 0, 1, 0),
        ("apc_spells", 2, 2, 1, 0),
    ]


def test_figures_by_the_true_persons_groups(store_and_truth):
    report = score_store(*store_and_truth)
    by = report.by
    assert counts(by["imd_quintile"]) == [
        ("1", 2, 2, 2, 1),
        ("3", 1, 1, 0, 0),
        ("5", 2, 2, 1, 1),
        (None, 2, 0, 1, 0),
    ]
    assert report.imd_gap_points == pytest.approx(50.0)  # link rate 1.0 in quintile 1, 0.5 in quintile 5
    assert counts(by["age_band"]) == [
        ("0-15", 2, 2, 1, 1),
        ("16-44", 2, 2, 2, 1),
        ("65-79", 1, 1, 0, 0),
        ("80+", 2, 0, 1, 0),
    ]
    assert counts(by["sex"]) == [("F", 3, 3, 2, 1), ("M", 4, 2, 2, 1)]
    assert counts(by["ethnic_group"]) == [
        ("Black or Black British", 2, 2, 1, 1),
        ("Not stated", 1, 1, 0, 0),
        ("White", 4, 2, 3, 1),
    ]


def test_bench_linkage_prints_the_figures_of_a_store(store_and_truth, capsys):
    store, truth = store_and_truth
    assert main(["bench-linkage", "--store", str(store), "--truth", str(truth)]) == 0
    out = capsys.readouterr().out
    overall = next(line for line in out.splitlines() if line.startswith("overall"))
    assert overall.split() == ["overall", "7", "5", "4", "2", "0.5000", "0.4000", "0.5714"]
    assert "split persons 1 " in out and "merged persons 1 " in out
    assert "IMD quintile 1 minus quintile 5: +50.00 points" in out
    assert bench.main(["--store", str(store), "--truth", str(truth)]) == 0  # python -m ldm.linkage.bench


def test_bench_linkage_refuses_a_store_without_its_truth(store_and_truth, tmp_path, capsys):
    store, truth = store_and_truth
    assert main(["bench-linkage", "--store", str(store)]) == 2
    assert "--store and --truth go together" in capsys.readouterr().err
    with pytest.raises(LdmError, match="not a sample's ground_truth folder"):
        score_store(store, tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    pq.write_table(pq.read_table(truth / "persons.parquet"), other / "persons.parquet")
    pq.write_table(
        pa.table({"feed": ["gp_events"], "record_id": [1], "person_key": [1]}), other / "records.parquet"
    )
    with pytest.raises(LdmError, match=r"^12 record\(s\) of .* are not in "):
        score_store(store, other)


def section(lines: list[str], heading: str) -> list[str]:
    """The table rows under a heading of the report (header and rule left out)."""
    start = lines.index(heading)
    rows = []
    for line in lines[start + 1 :]:
        if line.startswith("## "):
            break
        if line.startswith("| ") and not line.startswith("| feed |"):
            rows.append(line)
    return rows


def test_report_shows_the_link_rates_the_store_holds(store_and_truth):
    store, _ = store_and_truth
    con = duckdb.connect(str(store), read_only=True)
    try:
        lines = link_rate_lines(con, [1])
        none = link_rate_lines(con, [2])  # another batch: none of these records
    finally:
        con.close()
    assert section(lines, "## Link rate by feed") == [
        "| ae_attendances | 2 | 1 | 0.5 |",
        "| apc_spells | 2 | 1 | 0.5 |",
        "| community_contacts | 1 | 0 | 0.0 |",
        "| gp_events | 1 | 1 | 1.0 |",
        "| gp_registrations | 6 | 6 | 1.0 |",
        "| op_appointments | 1 | 1 | 1.0 |",
    ]
    assert section(lines, "## Records by link step, as stored") == [
        "| ae_attendances | probabilistic | 1 | 0.5 |",
        "| ae_attendances | unlinked | 1 | 0.5 |",
        "| apc_spells | dob_sex_postcode | 1 | 0.5 |",
        "| apc_spells | unlinked | 1 | 0.5 |",
        "| community_contacts | unlinked | 1 | 1.0 |",
        "| gp_events | nhs_number | 1 | 1.0 |",
        "| gp_registrations | new_person | 6 | 1.0 |",
        "| op_appointments | nhs_number_dob | 1 | 1.0 |",
    ]
    assert section(lines, "## Link rate by IMD quintile (1 = most deprived)") == [
        "| ae_attendances | unknown | 2 | 1 | 0.5 |",
        "| apc_spells | 1 | 1 | 1 | 1.0 |",
        "| apc_spells | 2 | 1 | 0 | 0.0 |",
        "| community_contacts | 5 | 1 | 0 | 0.0 |",
        "| gp_events | not recorded | 1 | 1 | 1.0 |",
        "| gp_registrations | 1 | 6 | 6 | 1.0 |",
        "| op_appointments | 5 | 1 | 1 | 1.0 |",
    ]
    assert section(lines, "## Link rate by age band") == [
        "| ae_attendances | 80+ | 2 | 1 | 0.5 |",
        "| apc_spells | 16-44 | 1 | 1 | 1.0 |",
        "| apc_spells | 65-79 | 1 | 0 | 0.0 |",
        "| community_contacts | 0-15 | 1 | 0 | 0.0 |",
        "| gp_events | not recorded | 1 | 1 | 1.0 |",
        "| gp_registrations | 16-44 | 6 | 6 | 1.0 |",
        "| op_appointments | 0-15 | 1 | 1 | 1.0 |",
    ]
    assert section(lines, "## Link rate by sex") == [
        "| ae_attendances | M | 2 | 1 | 0.5 |",
        "| apc_spells | F | 2 | 1 | 0.5 |",
        "| community_contacts | M | 1 | 0 | 0.0 |",
        "| gp_events | not recorded | 1 | 1 | 1.0 |",
        "| gp_registrations | F | 6 | 6 | 1.0 |",
        "| op_appointments | M | 1 | 1 | 1.0 |",
    ]
    assert none.count("(none)") == 5


@pytest.mark.slow
def test_bench_linkage_builds_a_store_with_ldm_run_and_scores_it(tmp_path, capsys):
    work = tmp_path / "work"
    assert main(["bench-linkage", "--persons", "2000", "--seed", "3", "--work", str(work)]) == 0
    out = capsys.readouterr().out
    report = score_store(work / "store.duckdb", work / "sample" / "ground_truth")
    assert report.overall["records"] > 10_000 and report.overall["precision"] >= 0.999
    assert report.overall["recall"] >= 0.98
    overall = next(line for line in out.splitlines() if line.startswith("overall"))
    assert overall.split()[1:5] == [
        f"{report.overall[name]:,}" for name in ("records", "in_spine", "linked", "true_links")
    ]
    assert "link rate gap, IMD quintile 1 minus quintile 5" in out
