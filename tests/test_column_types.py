"""One place per column type: the seam writer and `link_tables` give the same tokens for the same identifiers."""

from __future__ import annotations

import datetime
import shutil
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
import yaml

from ldm import column_types
from ldm.feeds.spec import IDENTIFIER_TYPES, SPEC_DIR, builtin_specs, load_spec
from ldm.linkage.tables import LOCAL_ID_ISSUER, linkage_key, tokens
from ldm.pseudonymise.extract import pseudonymise_extract
from ldm.pseudonymise.keys import init_key
from ldm.validate.suites import suite_document

REPO = Path(__file__).resolve().parent.parent
TODAY = datetime.date(2025, 4, 1)


@pytest.fixture(scope="module")
def key(tmp_path_factory):
    return init_key(tmp_path_factory.mktemp("key") / "k.key")


def seam_rows(path: Path, spec, key, out: Path) -> pa.Table:
    manifest, _ = pseudonymise_extract(path, spec, key, out, suite_document(spec), TODAY, 1.0)
    parquet = out / spec.feed / manifest.output_file
    return duckdb.sql(f"select * from read_parquet('{parquet}') order by row_number").to_arrow_table()


def test_the_seam_and_link_tables_tokenise_names_numbers_dates_sexes_and_postcodes_alike(tmp_path, key):
    """Messy spellings included: both paths normalise with the same rules, so the tokens agree."""
    extract = tmp_path / "community_contacts.txt"
    shutil.copy(REPO / "sample_data" / "extracts" / "community_contacts.txt", extract)
    extract.write_text(
        extract.read_text()
        + '90001|" 999 891 4922 "|" olivia-may "|"o\'Brien"|"9/8/1983"|"female"|"ls16  0fz"|||PT|||Y\n'
        + '90002|"9998914922"|"Zoë"|"ÅSTRÖM"|"09/08/1983"|"2"|"LS16"|||PT|||Y\n'
    )
    seam = seam_rows(extract, builtin_specs()["community_contacts"], key, tmp_path / "out")
    raw = duckdb.sql(
        f"""select "NHS_No" as nhs_number, "Forename" as forename, "Surname" as surname, "DOB" as date_of_birth,
                   "Gender" as sex, "Postcode" as postcode
            from read_csv('{extract}', delim='|', header=true, all_varchar=true) order by "Contact_ID"::int"""
    ).to_arrow_table()
    raw = raw.take(pa.array([n - 1 for n in seam["row_number"].to_pylist()]))  # the rows validation accepted
    expected = tokens(raw, linkage_key(key), TODAY)
    compared = [name for name in expected.column_names if name in seam.column_names]
    assert {"nhs_number_token", "date_of_birth_token", "postcode_token", "postcode_district_token",
            "forename_token", "surname_phonetic_token", "sex", "year_of_birth"} <= set(compared)  # fmt: skip
    for name in compared:
        assert seam[name].to_pylist() == expected[name].to_pylist(), name
    assert seam.num_rows > 1000


def test_local_ids_tokenise_alike_when_qualified_by_the_same_issuer(tmp_path, key):
    """link_tables qualifies local ids by one issuer; a spec with that issuer as a constant matches it."""
    spec_file = tmp_path / "op.yaml"
    document = yaml.safe_load((SPEC_DIR / "op_appointments.yaml").read_text())
    document["columns"]["local_id"]["issuer"] = "local_id_issuer"
    document["columns"]["local_id_issuer"] = {"constant": LOCAL_ID_ISSUER, "type": "text", "keep": False}
    spec_file.write_text(yaml.safe_dump(document))
    spec = load_spec(spec_file)
    extract = tmp_path / "op_appointments.csv"
    shutil.copy(REPO / "sample_data" / "extracts" / "op_appointments.csv", extract)
    seam = seam_rows(extract, spec, key, tmp_path / "out")
    raw = duckdb.sql(
        f"""select "HospitalNumber" as local_id from read_csv('{extract}', header=true, all_varchar=true)
            order by "AppointmentId"::int"""
    ).to_arrow_table()
    raw = raw.take(pa.array([n - 1 for n in seam["row_number"].to_pylist()]))
    assert seam["local_id_token"].to_pylist() == tokens(raw, linkage_key(key))["local_id_token"].to_pylist()
    assert seam["local_id_token"].null_count < seam.num_rows


def test_every_spec_type_has_one_definition_and_identifiers_are_marked():
    assert {"nhs_number", "local_id", "postcode", "name"} == IDENTIFIER_TYPES
    for spec in builtin_specs().values():
        for column in spec.columns:
            kind = column_types.TYPES[column.type]
            assert kind.identifier == (column.type in IDENTIFIER_TYPES)
            assert (
                kind.payload is not None
                or kind.identifier
                or column.type in ("date", "datetime", "code", "sex")
            )


def test_ages_at_events_do_not_give_back_the_day_of_birth(tmp_path, key):
    """Born 15 May 1980: events the day before and the day after the birthday give the same age."""
    spec = builtin_specs()["community_contacts"]
    extract = tmp_path / "community_contacts.txt"
    header = "|".join(spec.sources)
    rows = [
        f'{n}|"9998914922"|"OLIVIA"|"EDWARDS"|"15/05/1980"|"F"|"LS16 0FZ"||"{day}"|"PT"|||"Y"'
        for n, day in enumerate(["14/05/2020", "16/05/2020", "30/04/2020", "01/05/2020"], start=1)
    ]
    extract.write_text("\n".join([header, *rows]) + "\n")
    seam = seam_rows(extract, spec, key, tmp_path / "out")
    assert seam["age_at_event"].to_pylist() == [40, 40, 39, 40]
    assert "date_of_birth" not in seam.column_names and seam["month_of_birth"].to_pylist() == [5] * 4
