"""The identifiable zone end to end on real files: validation, quarantine, tokens, manifests, leaks."""

from __future__ import annotations

import csv
import datetime
import hashlib
import json
import shutil
from pathlib import Path

import duckdb
import pytest
from identifier_scan import occurring

from ldm.cli import main
from ldm.errors import LdmError
from ldm.feeds.read import StructuralError
from ldm.feeds.spec import builtin_specs, load_spec
from ldm.pseudonymise.batch import pseudonymise_folder
from ldm.pseudonymise.extract import pseudonymise_extract
from ldm.pseudonymise.keys import LINKAGE, init_key
from ldm.validate.suites import load_suite_document

REPO = Path(__file__).resolve().parent.parent
TODAY = datetime.date(2025, 4, 1)
IDENTIFIER_SOURCES = {  # provider column names holding direct identifiers, by extract file
    "gp_registrations.csv": ["NHS Number", "Forename", "Surname", "Date of Birth", "Postcode"],
    "gp_events.txt": ["PatientNHSNumber"],
    "apc_spells.csv": ["NHS_NUMBER", "LOCAL_PATIENT_ID", "PERSON_BIRTH_DATE", "POSTCODE_USUAL_ADDRESS"],
    "op_appointments.csv": ["NHSNumber", "HospitalNumber", "BirthDate", "Postcode"],
    "ae_attendances.csv": ["NHS_NUMBER", "LOCAL_PATIENT_IDENTIFIER", "BIRTH_DATE", "POSTCODE"],
    "community_contacts.txt": ["NHS_No", "Forename", "Surname", "DOB", "Postcode"],
    "deaths.csv": [
        "DEC_NHS_NUMBER",
        "DEC_FORENAMES",
        "DEC_SURNAME",
        "DEC_DATE_OF_BIRTH",
        "DEC_USUAL_ADDRESS_POSTCODE",
    ],
    "national_data_opt_out.csv": ["NHS_NUMBER"],
}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The committed sample pseudonymised once with a fresh key."""
    root = tmp_path_factory.mktemp("pseudonymised")
    shutil.copytree(REPO / "sample_data" / "extracts", root / "extracts")
    key = init_key(root / "ldm.key")
    result = pseudonymise_folder(root / "extracts", root / "out", key, builtin_specs(), TODAY)
    assert not result.failed, result.failed
    return root, key, result


DATE_OF_BIRTH_SOURCES = {
    "Date of Birth",
    "PERSON_BIRTH_DATE",
    "BirthDate",
    "BIRTH_DATE",
    "DOB",
    "DEC_DATE_OF_BIRTH",
}


def raw_identifiers(extracts: Path, dates_of_birth: bool) -> set[str]:
    """Identifier values as sent, plus their obvious clean forms (digits only, upper case, ISO date).

    Dates of birth are collected apart: they coincide with other people's event dates, so they are
    searched for in text and in every column that is not an event date.
    """
    values: set[str] = set()
    for name, columns in IDENTIFIER_SOURCES.items():
        delimiter = "|" if name.endswith(".txt") else ","
        with (extracts / name).open(newline="") as handle:
            for row in csv.DictReader(handle, delimiter=delimiter):
                for column in columns:
                    if (column in DATE_OF_BIRTH_SOURCES) != dates_of_birth:
                        continue
                    value = (row[column] or "").strip()
                    if len(value) < 4:
                        continue
                    values |= {value, value.upper(), value.replace(" ", "")}
                    if value.count("/") == 2:
                        day, month, year = value.split("/")
                        values.add(f"{year}-{month.zfill(2)}-{day.zfill(2)}")
                    if len(value) == 8 and value.isdigit() and column in DATE_OF_BIRTH_SOURCES:  # yyyymmdd
                        values.add(f"{value[:4]}-{value[4:6]}-{value[6:]}")
    return values


def test_counts_reconcile_for_every_feed(run):
    root, _, result = run
    assert {m.feed for m, _ in result.done} == set(builtin_specs())
    for manifest, _ in result.done:
        assert manifest.rows_in == manifest.rows_accepted + manifest.rows_quarantined
        out = root / "out" / manifest.feed / manifest.output_file
        assert duckdb.sql(f"select count(*) from '{out}'").fetchall()[0][0] == manifest.rows_accepted
        if manifest.rows_quarantined:
            with open(manifest.quarantine_file, newline="") as handle:
                assert sum(1 for _ in csv.reader(handle)) - 1 == manifest.rows_quarantined
        lines = (root / "extracts" / manifest.input_file).read_bytes().count(b"\n") - 1
        assert lines == manifest.rows_in


def test_no_identifier_or_key_reaches_any_output(run):
    root, key, _ = run
    identifiers = raw_identifiers(root / "extracts", dates_of_birth=False)
    births = raw_identifiers(root / "extracts", dates_of_birth=True)
    assert len(identifiers) > 5000 and len(births) > 1000
    secret = (root / "ldm.key").read_text().strip()
    leaks = []
    for path in (root / "out").rglob("*"):
        if not path.is_file():
            continue
        text = path.read_bytes()
        assert secret.encode() not in text and key.purpose_key(LINKAGE).hex().encode() not in text
        if path.suffix == ".parquet":
            con = duckdb.connect()
            con.execute(f"create table t as select * from '{path}'")
            columns = con.execute("select column_name, column_type from (describe t)").fetchall()
            for column, kind in columns:
                values = {
                    v
                    for (v,) in con.execute(f'select distinct cast("{column}" as varchar) from t').fetchall()
                }
                leaks += [(path.name, column, v) for v in values & identifiers]
                if kind not in ("DATE", "TIMESTAMP"):
                    leaks += [(path.name, column, v) for v in values & births]
                else:  # event dates only: no date column may be a date of birth under another name
                    assert "birth" not in column and column != "dob"
                assert secret not in values
        else:
            decoded = text.decode()
            leaks += [
                (path.name, v) for v in occurring((v for v in identifiers | births if len(v) >= 6), decoded)
            ]
    assert not leaks, leaks[:5]


def test_tokens_are_keyed_stable_and_not_plain_hashes(run, tmp_path):
    root, _, _ = run
    first = root / "out" / "opt_out"
    tokens = {t for (t,) in duckdb.sql(f"select nhs_number_token from '{first}/*.parquet'").fetchall()}
    numbers = [
        line.strip()
        for line in (root / "extracts" / "national_data_opt_out.csv").read_text().splitlines()[1:]
    ]
    plain = {hashlib.sha256(n.encode()).hexdigest() for n in numbers}
    plain |= {hashlib.sha256(f"nhs_number\x1f{n}".encode()).hexdigest() for n in numbers}
    assert len(tokens) == len(numbers) and not tokens & plain

    again = pseudonymise_folder(
        root / "extracts", tmp_path / "again", _same_key(root), builtin_specs(), TODAY
    )
    repeat = {
        t
        for (t,) in duckdb.sql(
            f"select nhs_number_token from '{tmp_path}/again/opt_out/*.parquet'"
        ).fetchall()
    }
    assert again.done and repeat == tokens

    other = init_key(tmp_path / "other.key")
    pseudonymise_folder(root / "extracts", tmp_path / "other", other, builtin_specs(), TODAY)
    different = {
        t
        for (t,) in duckdb.sql(
            f"select nhs_number_token from '{tmp_path}/other/opt_out/*.parquet'"
        ).fetchall()
    }
    assert len(different) == len(tokens) and not different & tokens


def _same_key(root: Path):
    from ldm.pseudonymise.keys import load_key

    return load_key(root / "ldm.key")


def test_same_nhs_number_gives_same_token_across_feeds(run):
    root, _, _ = run
    out = root / "out"
    shared = duckdb.sql(
        f"""select count(distinct g.nhs_number_token) from '{out}/gp_registrations/*.parquet' g
            join '{out}/apc_spells/*.parquet' a using (nhs_number_token) where g.nhs_number_valid"""
    ).fetchall()[0][0]
    assert shared > 100


def test_resent_extract_is_recognised_by_checksum(run):
    root, key, _ = run
    again = pseudonymise_folder(root / "extracts", root / "out", key, builtin_specs(), TODAY)
    assert not again.done and len(again.resent) == len(builtin_specs())


def test_an_extract_of_the_same_size_but_other_bytes_is_not_taken_for_a_resend(run, tmp_path):
    root, key, _ = run
    extracts = tmp_path / "extracts"
    extracts.mkdir()
    original = (root / "extracts" / "apc_spells.csv").read_bytes()
    changed = original.replace(b"2024-", b"2023-", 1)
    assert len(changed) == len(original) and changed != original
    (extracts / "apc_spells.csv").write_bytes(changed)
    again = pseudonymise_folder(extracts, root / "out", key, builtin_specs(), TODAY)
    assert not again.resent and [m.feed for m, _ in again.done] == ["apc_spells"]
    assert again.done[0][0].input_sha256 == hashlib.sha256(changed).hexdigest()
    (root / "out" / "apc_spells" / again.done[0][0].output_file).unlink()  # leave the module's run as it was
    next((root / "out" / "apc_spells").glob(f"*{again.done[0][0].input_sha256[:12]}.manifest.json")).unlink()


def test_planted_bad_rows_are_quarantined_with_the_right_reason(run):
    _, _, result = run
    truth = REPO / "sample_data" / "ground_truth" / "records.parquet"
    manifest = next(m for m, _ in result.done if m.feed == "gp_events")
    con = duckdb.connect()
    rows = con.execute(
        f"""select r.malformed, q.reasons from '{truth}' r
            left join read_csv('{manifest.quarantine_file}', all_varchar = true) q
              on q."EventId"::bigint = r.record_id
            where r.feed = 'gp_events' and r.malformed <> ''"""
    ).fetchall()
    assert rows
    for planted, reasons in rows:
        assert reasons is not None, planted
        expected = (
            "event_date is not a real date" if planted == "impossible_date" else "snomed_code is not a valid"
        )
        assert expected in reasons


def write_copy(source: Path, target: Path, transform) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(transform(source.read_bytes()))
    return target


@pytest.mark.parametrize(
    ("fault", "transform", "message"),
    [
        (
            "missing column",
            lambda b: b.replace(b"AppointmentDate", b"ApptDate", 1),
            "missing column(s) AppointmentDate",
        ),
        ("wrong delimiter", lambda b: b.replace(b",", b";"), "expected ','-delimited"),
        ("bad encoding", lambda b: b.replace(b"RR8", b"R\xe98", 3), "not readable as utf-8"),
        ("empty file", lambda b: b"", "file is empty"),
        ("header only", lambda b: b.split(b"\n")[0] + b"\n", "no rows"),
        ("truncated", lambda b: b[: len(b) // 2].rsplit(b",", 3)[0], "truncated or ragged row"),
        ("binary junk", lambda b: b"\x89PNG\r\n\x1a\n\x00\x00\x00" + bytes(range(256)) * 10, "binary data"),
    ],
)
def test_structural_faults_stop_the_extract_and_write_nothing(tmp_path, fault, transform, message):
    source = REPO / "sample_data" / "extracts" / "op_appointments.csv"
    path = write_copy(source, tmp_path / "extracts" / "op_appointments.csv", transform)
    key = init_key(tmp_path / "k.key")
    spec = builtin_specs()["op_appointments"]
    with pytest.raises(StructuralError) as raised:
        pseudonymise_extract(path, spec, key, tmp_path / "out", load_suite_document("op_appointments"), TODAY)
    assert str(path) in str(raised.value) and message in str(raised.value), str(raised.value)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.parquet"))
    assert not (tmp_path / "extracts" / "quarantine").exists()


def test_timestamps_are_judged_one_by_one_where_they_are_not_plainly_well_formed(tmp_path):
    """Well-formed timestamps are checked per day (see ldm.validate.run); the rest one by one."""
    lines = (REPO / "sample_data" / "extracts" / "ae_attendances.csv").read_text().splitlines()
    planted = {  # data row number -> (arrival time, the rule it must break, or None)
        1: ("2025-02-30 10:00:00", "arrival_time is not a real date"),
        2: ("2025-03-05T10:00:00", "arrival_time is not a real date"),
        3: ("2030-01-01 10:00:00", "arrival_time is in the future"),
        4: (" 2025-03-05 10:00:00", None),  # padded: trimmed, then valid
        5: ("2025-3-5 10:00:00", None),  # not printed back the same by DuckDB, but Python parses it
    }
    for row, (arrival, _) in planted.items():
        fields = next(csv.reader([lines[row]]))
        fields[7] = arrival
        lines[row] = ",".join(f'"{value}"' for value in fields)
    (tmp_path / "ae_attendances.csv").write_text("\n".join(lines) + "\n")
    key = init_key(tmp_path / "k.key")
    manifest, _ = pseudonymise_extract(tmp_path / "ae_attendances.csv", builtin_specs()["ae_attendances"], key,
                                       tmp_path / "out", load_suite_document("ae_attendances"), TODAY)  # fmt: skip
    with open(manifest.quarantine_file, newline="") as handle:
        reasons = {int(row["row_number"]): row["reasons"] for row in csv.DictReader(handle)}
    for row, (_, rule) in planted.items():
        if rule:
            assert rule in reasons.get(row, ""), (row, reasons.get(row))
        else:
            assert "arrival_time" not in reasons.get(row, ""), (row, reasons[row])


def test_one_broken_extract_fails_alone_while_the_others_are_pseudonymised(tmp_path):
    extracts = tmp_path / "extracts"
    extracts.mkdir()
    for name in ("gp_events.txt", "apc_spells.csv", "ae_attendances.csv"):
        shutil.copy(REPO / "sample_data" / "extracts" / name, extracts / name)
    (extracts / "op_appointments.csv").write_text("AppointmentId;NHSNumber\n1;9990000018\n")
    key = init_key(tmp_path / "k.key")
    result = pseudonymise_folder(extracts, tmp_path / "out", key, builtin_specs(), TODAY)
    assert [m.feed for m, _ in result.done] == ["ae_attendances", "apc_spells", "gp_events"]
    assert [(path.name, "expected ','-delimited" in message) for path, message in result.failed] == [
        ("op_appointments.csv", True)
    ]
    assert not (tmp_path / "out" / "op_appointments").exists()


def test_quarantine_limit_fails_the_extract_without_output(tmp_path):
    shutil.copy(REPO / "sample_data" / "extracts" / "gp_events.txt", tmp_path / "gp_events.txt")
    key = init_key(tmp_path / "k.key")
    spec = builtin_specs()["gp_events"]
    with pytest.raises(LdmError, match="above the limit"):
        pseudonymise_extract(
            tmp_path / "gp_events.txt", spec, key, tmp_path / "out", load_suite_document("gp_events"), TODAY,
            max_quarantined_share=0.0001,
        )  # fmt: skip
    assert not list((tmp_path / "out").rglob("*.parquet"))
    assert (tmp_path / "quarantine" / "gp_events.txt.rejected.csv").exists()


def test_a_renamed_reformatted_provider_is_onboarded_by_spec_alone(run, tmp_path):
    """Another trust sends outpatients with its own names, ISO dates and semicolons."""
    root, _, _ = run
    con = duckdb.connect()
    source = REPO / "sample_data" / "extracts" / "op_appointments.csv"
    (tmp_path / "extracts").mkdir()
    con.execute(
        f"""copy (select AppointmentId as appt_ref, NHSNumber as nhs_no, HospitalNumber as mrn,
                         ProviderCode as trust, strftime(strptime(BirthDate, '%d/%m/%Y'), '%Y%m%d') as born,
                         Gender as gender, Postcode as post_code,
                         strftime(strptime(AppointmentDate, '%d/%m/%Y'), '%Y%m%d') as appt_date,
                         TreatmentFunctionCode as tfc, FirstAttendance as first_att,
                         AttendanceStatus as attended
                  from read_csv('{source}', all_varchar = true)
                  where AppointmentDate not like '31/02/%')
            to '{tmp_path}/extracts/outpatients_trust_b.csv' (header, delimiter ';')"""
    )
    spec_text = (REPO / "ldm" / "feeds" / "specs" / "op_appointments.yaml").read_text()
    for old, new in {
        "AppointmentId": "appt_ref", "NHSNumber": "nhs_no", "HospitalNumber": "mrn", "ProviderCode": "trust",
        "BirthDate": "born", "Gender": "gender", "Postcode": "post_code", "AppointmentDate": "appt_date",
        "TreatmentFunctionCode": "tfc", "FirstAttendance": "first_att", "AttendanceStatus": "attended",
        '"%d/%m/%Y"': '"%Y%m%d"', 'delimiter: ","': 'delimiter: ";"',
        "op_appointments*.csv": "outpatients_*.csv",
    }.items():  # fmt: skip
        spec_text = spec_text.replace(old, new)
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "op_appointments.yaml").write_text(spec_text)
    key = _same_key(root)
    assert main(["pseudonymise", "--extracts", str(tmp_path / "extracts"), "--out", str(tmp_path / "out"),
                 "--key-file", str(root / "ldm.key"), "--specs", str(tmp_path / "specs"),
                 "--today", TODAY.isoformat()]) == 0  # fmt: skip
    assert key.key_id
    ours = f"{tmp_path}/out/op_appointments/*.parquet"
    original = f"{root}/out/op_appointments/*.parquet"
    compare = duckdb.sql(
        f"""select count(*), count(*) filter (where a.nhs_number_token is not distinct from b.nhs_number_token
                                              and a.local_id_token = b.local_id_token
                                and a.date_of_birth_token is not distinct from b.date_of_birth_token
                                              and a.appointment_date = b.appointment_date)
            from '{ours}' a join '{original}' b using (record_id)"""
    ).fetchall()[0]
    assert compare[0] > 6000 and compare[0] == compare[1]


def test_suites_match_their_specs(capsys):
    assert main(["expectations", "--check"]) == 0
    for feed in builtin_specs():
        rules = [
            (r["kwargs"]["column"], r["meta"]["rule"]) for r in load_suite_document(feed)["expectations"]
        ]
        assert len(rules) == len(set(rules)), feed  # results are matched back to rules by their text


def test_a_broken_spec_is_reported_with_its_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "feed: gp_events\nspec_version: 1\nfile_pattern: x*\ncolumns:\n  event_date: {source: D, type: date}\n"
    )
    with pytest.raises(LdmError, match=r"bad.yaml: column .event_date. is a date and needs a .format."):
        load_spec(bad)


def test_manifest_names_key_checksum_and_counts(run):
    root, key, result = run
    manifest = next(m for m, _ in result.done if m.feed == "apc_spells")
    stored = json.loads(next((root / "out" / "apc_spells").glob("*.manifest.json")).read_text())
    assert stored["key_id"] == key.key_id
    assert (
        stored["input_sha256"]
        == hashlib.sha256((root / "extracts" / "apc_spells.csv").read_bytes()).hexdigest()
    )
    assert stored["rows_in"] == manifest.rows_in and stored["nhs_numbers"]["valid"] > 0
