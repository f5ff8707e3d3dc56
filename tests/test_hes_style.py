"""The HES-style APC converter: its formatting rules, and the committed sample rewritten with it."""

from __future__ import annotations

import csv
import datetime
import io
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from ldm.feeds.codes import clean_code
from ldm.synthetic.hes import (
    SOURCE_DIAGNOSES,
    SOURCE_OPERATIONS,
    hes_birth_date,
    hes_date,
    hes_diagnoses,
    hes_icd10,
    hes_opcs4,
    hes_operations,
    write_hes_apc,
)

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data" / "extracts" / "apc_spells.csv"
TRUTH = SAMPLE.parent.parent / "ground_truth" / "records.parquet"
EXPECTED_HEADER = [
    "PROCODE3", "SITETRET", "EPIKEY", "EPIORDER", "ADMIDATE", "DISDATE", "ADMIMETH", "ADMISORC",
    "NEWNHSNO", "LOPATID", "DOB", "SEX", "HOMEADD",
    *(f"DIAG_{i:02d}" for i in range(1, 21)),
    *(f"OPERTN_{i:02d}" for i in range(1, 25)),
]  # fmt: skip
DIAGNOSES = [f"DIAG_{i:02d}" for i in range(1, 21)]
OPERATIONS = [f"OPERTN_{i:02d}" for i in range(1, 25)]


def read_source() -> list[dict[str, str]]:
    with SAMPLE.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def read_hes(path: Path) -> list[dict[str, str]]:
    text = path.read_bytes().decode("cp1252")
    return list(csv.DictReader(io.StringIO(text, newline=""), delimiter=";"))


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> dict[str, Path]:
    """The committed sample as HES: plain, with extra codes (seed 1, twice) and with another seed."""
    folder = tmp_path_factory.mktemp("hes")
    paths = {name: folder / f"{name}.csv" for name in ("plain", "extra", "extra_again", "other_seed")}
    write_hes_apc(SAMPLE, paths["plain"])
    write_hes_apc(SAMPLE, paths["extra"], extra_codes=True, seed=1)
    write_hes_apc(SAMPLE, paths["extra_again"], extra_codes=True, seed=1)
    write_hes_apc(SAMPLE, paths["other_seed"], extra_codes=True, seed=2)
    return paths


# --- formatting rules ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2023-07-21", "21-Jul-2023"),
        ("2024-01-01", "01-Jan-2024"),
        ("2024-02-29", "29-Feb-2024"),
        ("2023-7-1", "01-Jul-2023"),  # the loader's %Y-%m-%d takes this too
        (" 2023-12-05 ", "05-Dec-2023"),  # the loader trims, so a padded date is still a date
        ("2024-02-30", "2024-02-30"),  # an impossible date passes through for validation to reject
        ("2023-02-29", "2023-02-29"),
        ("21/07/2023", "21/07/2023"),
        ("20230721", "20230721"),
        ("", ""),
    ],
)
def test_admission_and_discharge_dates(value, expected):
    assert hes_date(value) == expected


@pytest.mark.parametrize(
    ("month", "name"),
    list(enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)),
)
def test_month_names_are_english_whatever_the_locale(month, name):
    assert hes_date(f"2023-{month:02d}-09") == f"09-{name}-2023"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1948-06-17", "19480617"),
        ("2000-12-31", "20001231"),
        ("1999-02-30", "1999-02-30"),
        ("17/06/1948", "17/06/1948"),
        ("", ""),
    ],
)
def test_birth_dates(value, expected):
    assert hes_birth_date(value) == expected


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("I10", "I10X"),
        ("R55", "R55X"),
        ("R101", "R101"),
        ("I21.9", "I219"),
        ("R55.", "R55X"),
        ("I10X", "I10X"),
        ("U999", "U999"),  # the generator's unknown code: kept for validation to reject
        (" i10", " i10"),  # not a clean code: left for ldm's cleaning, which gives I10 either way
        ("", ""),
    ],
)
def test_icd10_codes_are_dotless_with_a_filler(code, expected):
    assert hes_icd10(code) == expected


@pytest.mark.parametrize(
    ("code", "expected"), [("W40.1", "W401"), ("W401", "W401"), ("", ""), ("X40.3 ", "X403 ")]
)
def test_opcs4_codes_lose_their_dot(code, expected):
    assert hes_opcs4(code) == expected


@pytest.mark.parametrize(
    ("codes", "first_two"),
    [
        (["", ""], ["-", ""]),
        ([" ", ""], ["-", ""]),
        (["X403", ""], ["X403", ""]),
        (["W40.1", "H25.1"], ["W401", "H251"]),
        (["", "H251"], ["", "H251"]),  # a blank primary beside a procedure is kept as it came
    ],
)
def test_operation_positions_and_no_operation(codes, first_two):
    positions = hes_operations(codes)
    assert len(positions) == 24
    assert positions[:2] == first_two
    assert positions[2:] == [""] * 22


def test_diagnosis_positions():
    positions = hes_diagnoses(["I10", "R101", "", "", ""])
    assert positions == ["I10X", "R101", *[""] * 18]


def test_ldm_cleaning_gives_the_same_codes_from_either_layout():
    rows = read_source()
    diagnoses = sorted({row[c] for row in rows for c in SOURCE_DIAGNOSES} | {"R55.", " i10", "I10X"})
    operations = sorted({row[c] for row in rows for c in SOURCE_OPERATIONS} | {"W40.1"})
    for codes, formatted, system in [
        (diagnoses, [hes_icd10(c) for c in diagnoses], "icd10"),
        (operations, [hes_opcs4(c) for c in operations], "opcs4"),
    ]:
        original = clean_code(pa.array(codes, pa.string()), system).to_pylist()
        assert clean_code(pa.array(formatted, pa.string()), system).to_pylist() == original


# --- the writer on the committed sample ----------------------------------------------------------


def test_the_issuer_of_local_ids_is_always_the_provider():
    """Why HES needs no issuer column: in the generator ORG_CODE_LOCAL_PATIENT_ID is PROVIDER_CODE."""
    rows = read_source()
    assert rows
    assert all(row["ORG_CODE_LOCAL_PATIENT_ID"] == row["PROVIDER_CODE"] for row in rows)


def test_a_local_id_issued_by_another_organisation_is_refused(tmp_path):
    source = tmp_path / "apc_spells.csv"
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    row = next(csv.reader([lines[1]]))
    row[header.index("ORG_CODE_LOCAL_PATIENT_ID")] = "RXX"
    source.write_text(lines[0] + "\n" + ",".join(row) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match="HES has no column for the issuer"):
        write_hes_apc(source, tmp_path / "hes.csv")


def test_file_shape(written):
    data = written["plain"].read_bytes()
    text = data.decode("cp1252")
    assert "St James’s University Hospital" in text
    assert b"\x92" in data  # U+2019 as windows-1252 writes it
    assert data.count(b"\n") == data.count(b"\r\n") == len(read_source()) + 1
    assert b"\r" not in data.replace(b"\r\n", b"")
    assert text.split("\r\n", 1)[0] == ";".join(EXPECTED_HEADER)
    assert "," not in text.split("\r\n", 1)[0]


def is_iso_date(value: str) -> bool:
    try:
        datetime.date.fromisoformat(value)
    except ValueError:
        return False
    return True


def sent_spells() -> int:
    """The rows of the sample's APC extract, from the generator's ground truth: one per spell record
    and one more for each planted duplicate (written twice)."""
    return duckdb.sql(
        f"select count(*) + count(*) filter (where duplicated) from read_parquet('{TRUTH}')"
        " where feed = 'apc_spells'"
    ).fetchall()[0][0]


def test_every_row_and_value_is_carried_through(written):
    source, hes = read_source(), read_hes(written["plain"])
    assert len(hes) == len(source) == sent_spells() > 0
    assert list(hes[0]) == EXPECTED_HEADER
    for before, after in zip(source, hes, strict=True):
        assert after["EPIKEY"] == before["SPELL_ID"]
        assert after["PROCODE3"] == before["PROVIDER_CODE"]
        assert after["NEWNHSNO"] == before["NHS_NUMBER"]  # blanks and stray spaces kept
        assert after["LOPATID"] == before["LOCAL_PATIENT_ID"]
        assert after["SEX"] == before["SEX"]
        assert after["HOMEADD"] == before["POSTCODE_USUAL_ADDRESS"]
        assert after["ADMIMETH"] == before["ADMISSION_METHOD"]
        assert after["ADMIDATE"] == hes_date(before["START_DATE_HOSPITAL_PROVIDER_SPELL"])
        assert after["DISDATE"] == hes_date(before["DISCHARGE_DATE_HOSPITAL_PROVIDER_SPELL"])
        assert after["DOB"] == hes_birth_date(before["PERSON_BIRTH_DATE"])
        assert (after["ADMISORC"], after["EPIORDER"]) == ("19", "01")
    # The sample's own oddities are all still there.
    assert any(row["NEWNHSNO"] == "" for row in hes)
    assert any(row["NEWNHSNO"] != row["NEWNHSNO"].strip() for row in hes)
    assert any(row["HOMEADD"] != row["HOMEADD"].strip() for row in hes)
    assert any(row["DISDATE"] == "" for row in hes)
    # An impossible admission date planted in the sample (such as 30 February) is left as it was.
    impossible = {row["START_DATE_HOSPITAL_PROVIDER_SPELL"] for row in source} - {
        value for value in (row["START_DATE_HOSPITAL_PROVIDER_SPELL"] for row in source) if is_iso_date(value)
    }
    assert impossible and impossible <= {row["ADMIDATE"] for row in hes}


def test_every_code_is_at_its_position(written):
    for before, after in zip(read_source(), read_hes(written["plain"]), strict=True):
        diagnoses = [hes_icd10(before[c]) for c in SOURCE_DIAGNOSES]
        assert [after[c] for c in DIAGNOSES] == diagnoses + [""] * 15
        operations = [hes_opcs4(before[c]) for c in SOURCE_OPERATIONS]
        if not any(operations):
            operations[0] = "-"
        assert [after[c] for c in OPERATIONS] == operations + [""] * 22
    hes = read_hes(written["plain"])
    assert {row["OPERTN_01"] for row in hes} >= {"-"}
    assert any(row["DIAG_01"].endswith("X") for row in hes)


def test_extra_codes_are_reproducible(written):
    assert written["extra"].read_bytes() == written["extra_again"].read_bytes()
    assert written["extra"].read_bytes() != written["other_seed"].read_bytes()


@pytest.mark.parametrize("name", ["extra", "other_seed"])
def test_extra_codes_fill_later_positions_only(written, name):
    plain, extra = read_hes(written["plain"]), read_hes(written[name])
    assert len(extra) == len(plain)
    assert any(row["DIAG_20"] for row in extra)
    assert any(row["OPERTN_24"] for row in extra)
    source_codes = {hes_icd10(r[c]) for r in read_source() for c in SOURCE_DIAGNOSES}
    source_codes |= {hes_opcs4(r[c]) for r in read_source() for c in SOURCE_OPERATIONS}
    changed = 0
    for before, after in zip(plain, extra, strict=True):
        if before == after:
            continue
        changed += 1
        for column, value in before.items():  # everything already filled is left as it was
            if value:
                assert after[column] == value, column
        for columns in (DIAGNOSES, OPERATIONS):
            codes = [after[c] for c in columns]
            filled = [bool(c) for c in codes]
            assert filled == sorted(filled, reverse=True), codes  # no gap inside the filled positions
            assert set(codes) - {""} <= source_codes | {"-"}
        assert "-" not in [after[c] for c in OPERATIONS[1:]]
    assert 0.05 * len(plain) < changed < 0.2 * len(plain)
