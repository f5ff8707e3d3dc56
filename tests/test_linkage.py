"""Linkage: each trace step on hand-built tables, and the quality targets on the committed sample."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ldm.errors import LdmError
from ldm.linkage import link_tables
from ldm.linkage.engine_only import run_on_sample
from ldm.linkage.workspace import DuckDBWorkspace, workspace
from ldm.pseudonymise.keys import init_key

REPO_SAMPLE = Path(__file__).resolve().parent.parent / "sample_data"

# NHS numbers in the 999 test range that pass Modulus 11.
NUMBER_A, NUMBER_B, NUMBER_C, NUMBER_D = "9990000018", "9990000026", "9990000034", "9990000042"

SPINE = pa.table(
    {
        "id": [101, 102, 103, 104, 105, 106],
        "nhs_number": [NUMBER_A, NUMBER_B, None, None, None, NUMBER_C],
        "date_of_birth": ["1950-03-04", "1961-07-08", "1972-11-12", "1983-01-02", "1983-01-02", "1990-09-09"],
        "sex": ["F", "M", "F", "M", "M", "F"],
        "postcode": ["LS1 4AP", "LS2 9JT", "LS6 1AN", "LS7 3QB", "LS7 3QB", "NOT A POSTCODE"],
        "forename": ["ANNE", "BRUNO", "CARLA", "GEORGE", "DANIEL", "EVA"],
        "surname": ["ALDER", "BIRCH", "CEDAR", "DOGWOOD", "DOGWOOD", "ELM"],
        "local_id": [None, None, None, None, None, None],
    }
)


@pytest.fixture
def key(tmp_path):
    return init_key(tmp_path / "linkage.key")


def by_id(result: pa.Table) -> dict:
    return {row["id"]: (row["person_id"], row["step"]) for row in result.to_pylist()}


def test_each_step_and_ambiguity(key):
    records = pa.table(
        {
            "id": ["nhs_dob", "nhs_only", "dsp", "names", "ambiguous", "local_a", "local_b", "nobody"],
            "nhs_number": [" 999 000 0018", NUMBER_B, None, None, None, NUMBER_A, None, None],
            "date_of_birth": [
                "1950-03-04",
                "1961-08-07",
                "12/11/1972",
                "1983-01-02",
                "1983-01-02",
                "1950-03-04",
                None,
                None,
            ],
            "sex": ["F", "M", "2", None, "M", "F", None, None],
            "postcode": [None, None, "ls61an", None, "LS7 3QB", None, None, None],
            "forename": [None, None, None, " daniel", None, None, None, None],
            "surname": [None, None, None, "Dogwood", None, None, None, None],
            "local_id": [None, None, None, None, None, "RR8:X1", "RR8:X1", None],
        }
    )
    result = by_id(link_tables(SPINE, records, key))
    assert result["nhs_dob"] == (101, "nhs_number_dob")
    assert result["nhs_only"] == (102, "nhs_number")  # day and month swapped: NHS number alone
    assert result["dsp"] == (103, "dob_sex_postcode")
    assert result["names"] == (105, "dob_names")  # same dob and surname, one forename fits
    assert result["ambiguous"] == (None, "ambiguous:dob_sex_postcode")  # two persons fit: not linked
    assert result["local_a"] == (101, "nhs_number_dob")
    assert result["local_b"] == (101, "local_id")  # learnt from the NHS-number link of local_a
    assert result["nobody"] == (None, "unlinked")


def test_conflicting_valid_nhs_number_blocks_a_weaker_step(key):
    records = pa.table(
        {
            "id": [1],
            "nhs_number": [NUMBER_D],  # valid, on no one's registration
            "date_of_birth": ["1950-03-04"],  # but the rest is the person who has NUMBER_A
            "sex": ["F"],
            "postcode": ["LS1 4AP"],
        }
    )
    assert by_id(link_tables(SPINE, records, key))[1] == (None, "unlinked")


def test_missing_columns_unrecognised_postcode_and_nulls(key):
    records = pa.table(
        {
            "id": [1, 2, 3],
            "date_of_birth": ["1990-09-09", None, "1990-09-09"],
            "sex": ["F", None, "F"],
            "postcode": ["not a  postcode", None, "LS99 9ZZ"],
        }
    )
    assert link_tables(SPINE, records, bytes(32)).num_rows == 3  # raw master key bytes work too
    result = by_id(link_tables(SPINE, records, key))
    assert result[1] == (106, "dob_sex_postcode")  # kept as cleaned text, and it agrees
    assert result[2] == (None, "unlinked")
    assert result[3] == (None, "unlinked")


def test_one_row_per_record_in_order_with_duplicates(key):
    records = pa.table({"id": [5, 5, 7, 6], "nhs_number": [NUMBER_A, NUMBER_A, None, "garbage"]})
    result = link_tables(SPINE, records, key)
    assert result.column_names == ["id", "person_id", "step", "weight"]
    assert result["id"].to_pylist() == [5, 5, 7, 6]
    assert result["person_id"].to_pylist() == [101, 101, None, None]
    assert result["person_id"].type == pa.int64()


def test_key_must_be_a_master_key_or_32_bytes():
    with pytest.raises(LdmError):
        link_tables(SPINE, pa.table({"id": [1]}), b"short")


def test_quality_targets_on_the_committed_sample():
    report = run_on_sample(REPO_SAMPLE)
    overall = report.overall
    assert overall["precision"] >= 0.999
    assert overall["recall"] >= 0.99
    assert overall["records"] == report.run.records  # nothing dropped
    # Records with a missing or invalid NHS number must still link on their other tokens.
    no_valid = next(row for row in report.by["nhs_number"] if row["group"] == "not valid")
    assert no_valid["in_spine"] > 500 and no_valid["recall"] >= 0.90
    assert no_valid["precision"] >= 0.999
    for row in report.by["feed"]:
        assert row["precision"] is None or row["precision"] >= 0.999


def test_the_duckdb_workspace_makes_adds_to_reads_and_drops_working_tables(tmp_path):
    """The linkage engine's working tables on DuckDB (the Spark workspace's twin is tested on a real
    session in test_spark_marts.py)."""
    con = duckdb.connect()
    ws = workspace(con)
    assert isinstance(ws, DuckDBWorkspace) and workspace(ws) is ws
    ws.create("w_one", "select 1 as id, 'a' as step")
    ws.append("w_one", "select 2, 'b'")
    ws.append("w_one", "select id + 10, step from w_one")  # reads the table it adds to
    pq.write_table(pa.table({"id": [1, 2]}), tmp_path / "given.parquet")
    ws.register("w_given", tmp_path / "given.parquet")
    assert ws.columns("w_one") == ["id", "step"]
    assert sorted(ws.rows("select * from w_one")) == [(1, "a"), (2, "b"), (11, "a"), (12, "b")]
    assert ws.value("select count(*) from w_one join w_given using (id)") == 2
    assert ws.arrow("select id from w_given order by id")["id"].to_pylist() == [1, 2]
    ws.drop("w_one")
    ws.drop("w_given")  # a registered relation is unregistered, not dropped as a table
    for name in ("w_one", "w_given"):
        with pytest.raises(duckdb.CatalogException):
            con.execute(f"select * from {name}")
