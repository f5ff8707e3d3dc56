"""Linkage evidence (ldm.load.evidence): what is learnt, what is held already, what conflicts.

Tiny hand-made tables on a real DuckDB store built by the migrations.
"""

from __future__ import annotations

import datetime
from pathlib import Path

import duckdb
import pytest

from ldm.load import evidence
from ldm.store import connect, upgrade

OTHER = [name for name in evidence.IDENTITY if name != evidence.NHS]


def identity(person_id, step, **tokens) -> dict:
    row = {"person_id": person_id, "link_step": step} | dict.fromkeys(evidence.IDENTITY)
    return row | tokens


def table(con, name: str, rows: list[dict]) -> None:
    columns = ["person_id", "link_step", *evidence.IDENTITY]
    types = {"person_id": "bigint", "year_of_birth": "integer", "month_of_birth": "integer"}
    con.execute(
        f"create or replace temp table {name} ({', '.join(c + ' ' + types.get(c, 'varchar') for c in columns)})"
    )
    for row in rows:
        con.execute(f"insert into {name} values ({', '.join('?' * len(columns))})", [row[c] for c in columns])


@pytest.fixture
def con(tmp_path: Path):
    store = tmp_path / "store.duckdb"
    upgrade(store)
    con = connect(store)
    yield con
    con.close()


def new(con, candidates: list[dict], held: list[dict]) -> list[tuple]:
    table(con, "c", candidates)
    table(con, "h", held)
    sql = evidence.new_evidence_sql(evidence.candidates_sql("c"), "h")
    return con.execute(
        f"select person_id, link_step, {evidence.NHS}, postcode_token, conflict from ({sql}) order by all"
    ).fetchall()


HELD = [
    identity(1, "new_person", nhs_number_token="N1", date_of_birth_token="D1", postcode_token="P1", sex="F")
]


@pytest.mark.parametrize(
    ("candidate", "expected"),
    [
        # Everything it carries is held already (a subset adds nothing).
        (identity(1, "nhs_number", nhs_number_token="N1"), []),
        (
            identity(
                1, "nhs_number_dob", nhs_number_token="N1", date_of_birth_token="D1", postcode_token="P1"
            ),
            [],
        ),
        # Year and month of birth restate the date of birth: they never make an identity new.
        (
            identity(
                1, "nhs_number_dob", nhs_number_token="N1", date_of_birth_token="D1", year_of_birth=1980
            ),
            [],
        ),
        # A new postcode is new evidence.
        (
            identity(
                1, "nhs_number_dob", nhs_number_token="N1", date_of_birth_token="D1", postcode_token="P2"
            ),
            [(1, "nhs_number_dob", "N1", "P2", False)],
        ),
        # A probabilistic or ambiguous link teaches nothing.
        (identity(1, "probabilistic", nhs_number_token="N1", postcode_token="P9"), []),
        (identity(None, "ambiguous:dob_names", postcode_token="P9"), []),
        # An NHS number another person holds is a conflict: returned, marked, never inserted.
        (
            identity(1, "dob_sex_postcode", nhs_number_token="N2", postcode_token="P1"),
            [(1, "dob_sex_postcode", "N2", "P1", True)],
        ),
        # Nothing to link by: not evidence.
        (identity(1, "nhs_number"), []),
    ],
)
def test_new_evidence(con, candidate: dict, expected: list[tuple]) -> None:
    held = [*HELD, identity(2, "new_person", nhs_number_token="N2")]
    assert new(con, [candidate], held) == expected


def test_a_local_id_is_learnt_from_an_nhs_number_link_only(con) -> None:
    by_nhs = identity(1, "nhs_number_dob", nhs_number_token="N1", local_id_token="L1")
    by_postcode = identity(
        1, "dob_sex_postcode", date_of_birth_token="D1", postcode_token="P1", local_id_token="L2"
    )
    table(con, "c", [by_nhs, by_postcode])
    table(con, "h", HELD)
    learnt = con.execute(
        f"select link_step, local_id_token from ({evidence.new_evidence_sql(evidence.candidates_sql('c'), 'h')})"
    ).fetchall()
    assert learnt == [("nhs_number_dob", "L1")]  # the postcode link's identity is held once its local id goes


def test_the_same_identity_from_many_records_is_learnt_once(con) -> None:
    twice = identity(
        1, "nhs_number_dob", nhs_number_token="N1", date_of_birth_token="D1", postcode_token="P2"
    )
    table(con, "c", [twice, twice | {"link_step": "nhs_number"}])
    table(con, "h", HELD)
    sql = evidence.new_evidence_sql(evidence.candidates_sql("c"), "h")
    con.execute(f"create temp table n as {sql}")
    con.execute(evidence.insert_sql("n", "apc_spells"), [7, datetime.datetime(2025, 4, 1)])
    assert con.execute(
        "select person_id, feed, link_step, postcode_token, first_batch_id from linkage.person_evidence"
    ).fetchall() == [(1, "apc_spells", "nhs_number", "P2", 7)]


def test_the_spine_lends_a_person_their_nhs_number_unless_their_evidence_holds_two(con) -> None:
    """Every spine row of a person carries their one valid NHS number (so a conflicting number is
    refused whichever row matched); a person whose evidence holds two numbers gets none lent."""
    con.execute(
        "insert into linkage.person_keys (person_id, nhs_number_token, postcode_token) "
        "values (1, null, 'P1'), (2, 'N2', 'P2'), (3, null, 'P3')"
    )
    con.execute(
        "insert into linkage.person_evidence (person_id, feed, link_step, nhs_number_token, postcode_token, "
        "first_batch_id, first_seen_at) values "
        "(1, 'apc_spells', 'dob_sex_postcode', 'N1', 'P1b', 5, now()), "
        "(2, 'ae_attendances', 'nhs_number', null, 'P2b', 5, now()), "
        "(3, 'apc_spells', 'dob_names', 'N3', null, 5, now()), "
        "(3, 'op_appointments', 'dob_names', 'N4', null, 6, now())"
    )
    rows = con.execute(
        f"select person_id, postcode_token, {evidence.NHS}, evidence_rank from ({evidence.spine_sql()}) order by all"
    ).fetchall()
    assert rows == [
        (1, "P1", "N1", 0),
        (1, "P1b", "N1", 1),
        (2, "P2", "N2", 0),
        (2, "P2b", "N2", 1),
        (3, "P3", None, 0),
        (3, None, "N3", 1),
        (3, None, "N4", 1),
    ]


def test_an_opted_out_persons_evidence_goes_with_them(con) -> None:
    con.execute(
        "insert into linkage.person_evidence (person_id, feed, link_step, postcode_token, first_batch_id, "
        "first_seen_at) values (1, 'apc_spells', 'nhs_number', 'P1', 5, now()), "
        "(2, 'apc_spells', 'nhs_number', 'P2', 5, now())"
    )
    con.execute("create temp table leaving as select 2 as person_id")
    con.execute(evidence.remove_sql("leaving"))
    assert con.execute("select person_id from linkage.person_evidence").fetchall() == [(1,)]


def test_evidence_columns_are_the_models(con) -> None:
    """One definition: the identity columns are the table's, less its bookkeeping."""
    described = [row[0] for row in con.execute("describe linkage.person_evidence").fetchall()]
    assert [c for c in described if c not in evidence.BOOKKEEPING] == list(evidence.IDENTITY)
    assert duckdb.__version__  # the store opened under the installed DuckDB
