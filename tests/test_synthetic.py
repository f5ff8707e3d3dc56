"""The synthetic extract generator: reproducible, realistic, and messy at the configured rates."""

from __future__ import annotations

import csv
from pathlib import Path

import duckdb
import pytest

from ldm.cli import main
from ldm.demo import file_digests
from ldm.reference import reference_path
from ldm.synthetic import vocabulary
from ldm.synthetic.config import NoiseRates, SampleConfig
from ldm.synthetic.formats import FORMATS
from ldm.synthetic.generate import generate

REPO = Path(__file__).resolve().parent.parent


def modulus_11_ok(number: str) -> bool:
    """Independent Modulus 11 check, written out from the NHS number specification."""
    if len(number) != 10 or not number.isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(number[:9], range(10, 1, -1), strict=True))
    check = 11 - total % 11
    check = 0 if check == 11 else check
    return check != 10 and check == int(number[9])


def verhoeff_ok(code: str) -> bool:
    """Independent Verhoeff check (SNOMED CT concept ids end in a Verhoeff check digit)."""
    d = [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 2, 3, 4, 0, 6, 7, 8, 9, 5],
        [2, 3, 4, 0, 1, 7, 8, 9, 5, 6], [3, 4, 0, 1, 2, 8, 9, 5, 6, 7],
        [4, 0, 1, 2, 3, 9, 5, 6, 7, 8], [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
        [6, 5, 9, 8, 7, 1, 0, 4, 3, 2], [7, 6, 5, 9, 8, 2, 1, 0, 4, 3],
        [8, 7, 6, 5, 9, 3, 2, 1, 0, 4], [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
    ]  # fmt: skip
    p = [[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]]
    step = [1, 5, 7, 6, 2, 8, 3, 0, 9, 4]
    for _ in range(7):
        p.append([step[x] for x in p[-1]])
    check = 0
    for i, ch in enumerate(reversed(code)):
        check = d[check][p[i % 8][int(ch)]]
    return check == 0


def read_extract(folder: Path, feed: str, con=None) -> duckdb.DuckDBPyRelation:
    fmt = FORMATS[feed]
    path = folder / "extracts" / fmt.file_name
    con = con or duckdb.connect()
    return con.read_csv(str(path), delimiter=fmt.delimiter, header=True, all_varchar=True)


def joined(folder: Path, feed: str) -> list[tuple]:
    """Extract rows of a feed with their ground truth: (nhs number as sent, true number, fault)."""
    id_column = FORMATS[feed].columns[0].name
    nhs_column = next(c.name for c in FORMATS[feed].columns if c.source == "nhs_number")
    con = duckdb.connect()
    con.register("extract", read_extract(folder, feed, con))
    truth = folder / "ground_truth"
    return con.sql(
        f"""
        select e."{nhs_column}", p.nhs_number, r.nhs_fault
        from extract e
        join '{truth}/records.parquet' r on r.feed = '{feed}' and r.record_id = e."{id_column}"::bigint
        join '{truth}/persons.parquet' p using (person_key)
        """
    ).fetchall()


def test_same_seed_gives_identical_files_and_another_seed_does_not(tmp_path):
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        generate(SampleConfig(persons=1500, seed=seed), tmp_path / name)
    assert file_digests(tmp_path / "a") == file_digests(tmp_path / "b")
    assert file_digests(tmp_path / "a") != file_digests(tmp_path / "c")


def test_committed_sample_is_reproduced_byte_for_byte(tmp_path):
    assert main(["sample", "--persons", "2000", "--seed", "1", "--out", str(tmp_path)]) == 0
    assert file_digests(tmp_path) == file_digests(REPO / "sample_data")


def test_cli_refuses_to_overwrite_and_explains(tmp_path, capsys):
    assert main(["sample", "--persons", "50", "--out", str(tmp_path)]) == 0
    assert main(["sample", "--persons", "50", "--out", str(tmp_path)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["sample", "--persons", "0", "--out", str(tmp_path / "x")]) == 2


def test_every_feed_is_written_in_its_own_style(medium_sample):
    delimiters = {fmt.delimiter for fmt in FORMATS.values()}
    assert delimiters == {",", "|"}
    for feed, fmt in FORMATS.items():
        with (medium_sample / "extracts" / fmt.file_name).open() as handle:
            header = handle.readline().rstrip("\n").split(fmt.delimiter)
        assert header == [c.name for c in fmt.columns], feed
    registrations = read_extract(medium_sample, "gp_registrations").limit(50).fetchall()
    assert all(row[4].count("/") == 2 for row in registrations)  # dd/mm/yyyy


def test_nhs_numbers_valid_where_intended_and_invalid_where_planted(medium_sample):
    for feed in ("gp_registrations", "apc_spells", "ae_attendances", "community_contacts"):
        rows = joined(medium_sample, feed)
        assert rows
        for sent, true, fault in rows:
            cleaned = None if sent is None else sent.replace(" ", "")
            if fault == "missing":
                assert sent is None
            elif fault in ("check_digit", "transposed"):
                assert not modulus_11_ok(cleaned)
                assert sorted(cleaned) == sorted(true) or fault == "check_digit"
            else:
                assert cleaned == true and modulus_11_ok(cleaned)
                assert cleaned.startswith("999")


def test_planted_rates_match_the_configuration(medium_sample):
    rates = NoiseRates()
    con = duckdb.connect()
    truth = medium_sample / "ground_truth" / "records.parquet"
    observed = dict(
        con.sql(f"select feed, avg((nhs_fault = 'missing')::int) from '{truth}' group by feed").fetchall()
    )
    for feed, expected in rates.missing_nhs_number.items():
        n = con.sql(f"select count(*) from '{truth}' where feed = '{feed}'").fetchall()[0][0]
        tolerance = 4 * (expected * (1 - expected) / n) ** 0.5 + 1e-4
        assert abs(observed[feed] - expected) <= tolerance, (feed, observed[feed], expected)
    overall = con.sql(
        f"""select count(*), avg((nhs_fault = 'check_digit')::int), avg((nhs_fault = 'transposed')::int),
                   avg(dob_typo::int), avg(messy_text::int), avg(duplicated::int),
                   avg((malformed <> '')::int)
            from '{truth}' where feed not in {(*rates.system_held_nhs_number, "")}"""
    ).fetchall()[0]
    n = overall[0]
    expected = (rates.wrong_check_digit, rates.transposed_digits, rates.dob_typo * 0.9,
                rates.messy_text, rates.duplicate_row, rates.malformed)  # fmt: skip
    for got, want in zip(overall[1:], expected, strict=True):
        assert abs(got - want) <= 4 * (want / n) ** 0.5 + 0.1 * want, (got, want)
    system_held = con.sql(
        f"select count(*) from '{truth}' where feed = 'gp_events' "
        "and nhs_fault in ('check_digit', 'transposed')"
    ).fetchall()[0][0]
    assert system_held == 0
    named = con.sql(
        f"select avg(name_variant::int) from '{truth}' where feed = 'community_contacts'"
    ).fetchall()[0][0]
    assert abs(named - rates.name_variant) < 0.01


def test_duplicates_and_malformed_rows_are_really_there(medium_sample):
    con = duckdb.connect()
    con.register("events", read_extract(medium_sample, "gp_events", con))
    truth = medium_sample / "ground_truth" / "records.parquet"
    duplicated = con.sql(
        f"select count(*) from '{truth}' where feed = 'gp_events' and duplicated"
    ).fetchall()[0][0]
    repeated = con.sql(
        'select count(*) from (select "EventId" from events group by 1 having count(*) = 2)'
    ).fetchall()[0][0]
    assert duplicated > 0 and repeated == duplicated
    bad = con.sql(
        f"""select r.malformed, e."EventDate", e."ConceptId" from events e
            join '{truth}' r on r.feed = 'gp_events' and r.record_id = e."EventId"::bigint
            where r.malformed <> ''"""
    ).fetchall()
    assert {reason for reason, _, _ in bad} == {"impossible_date", "unknown_code"}
    for reason, date, code in bad:
        if reason == "impossible_date":
            assert con.sql(f"select try_strptime('{date}', '%Y-%m-%d')").fetchall()[0][0] is None
        else:
            assert not verhoeff_ok(code)


def reference_set(name: str, column: str) -> set[str]:
    with reference_path(name).open(newline="", encoding="utf-8-sig") as handle:
        return {row[column] for row in csv.DictReader(handle)}


def test_places_and_practices_are_real(medium_sample):
    postcodes = reference_set("leeds_postcode_ward_lsoa21.csv", "pcds")
    practices = reference_set("leeds_practices_2023_pcn_imd.csv", "org_code")
    lsoas = reference_set("leeds_mid2020_pop_lsoa11_syoa_persons.csv", "lsoa11_code")
    truth = medium_sample / "ground_truth" / "persons.parquet"
    con = duckdb.connect()
    leeds = con.sql(
        f"select postcode, previous_postcode, lsoa11_code, practice_code, previous_practice_code "
        f"from '{truth}' where not out_of_area"
    ).fetchall()
    for postcode, previous, lsoa, practice, previous_practice in leeds:
        assert postcode in postcodes and lsoa in lsoas and practice in practices
        assert previous is None or previous in postcodes
        assert previous_practice is None or previous_practice in practices
    away = con.sql(f"select postcode from '{truth}' where out_of_area").fetchall()
    assert away and not any(postcode in postcodes for (postcode,) in away)
    sent = read_extract(medium_sample, "gp_registrations").fetchall()
    assert {row[7] for row in sent} <= practices
    assert {row[6].strip().upper() for row in sent if " " in row[6].strip()} <= postcodes


def test_prevalence_falls_with_deprivation_in_the_gp_extract(medium_sample):
    """Diabetes, COPD and depression codes are commoner in the most deprived areas, as in QOF."""
    con = duckdb.connect()
    con.register("events", read_extract(medium_sample, "gp_events", con))
    con.register("registrations", read_extract(medium_sample, "gp_registrations", con))
    con.sql(f"create table imd as select * from read_csv('{reference_path('imd2019_leeds_lsoa11.csv')}')")
    con.sql(
        f"create table pc as select * from read_csv('{reference_path('leeds_postcode_ward_lsoa21.csv')}')"
    )
    con.sql(
        f"create table l11 as select * from read_csv('{reference_path('leeds_lsoa11_to_lsoa21_lookup.csv')}')"
    )
    # QOF 2019/20, England, deciles 1-2 against 9-10: diabetes 1.35x, COPD 1.5x, depression 1.2x.
    for condition, ratio in (("dm_cod", 1.1), ("copd_cod", 1.0), ("depr_cod", 1.1)):
        codes = reference_path(f"codelists/snomed/{condition}.csv")
        rates = con.sql(
            f"""
            with people as (
                select distinct replace(r."NHS Number", ' ', '') as nhs, any_value(i.imd_decile) as decile
                from registrations r
                join pc on pc.pcds = upper(trim(r."Postcode"))
                join l11 on l11.lsoa21_code = pc.lsoa21_code
                join imd i on i.lsoa11_code = l11.lsoa11_code
                group by 1
            ), cases as (
                select distinct replace("PatientNHSNumber", ' ', '') as nhs from events
                where "ConceptId" in (select code::varchar from read_csv('{codes}', all_varchar=true))
            )
            select decile <= 2 as most_deprived, avg((c.nhs is not null)::int)
            from people left join cases c using (nhs) where decile <= 2 or decile >= 9 group by 1
            """
        ).fetchall()
        by_group = dict(rates)
        assert by_group[True] > by_group[False] * ratio, (condition, by_group)


def test_codes_in_the_vocabulary_are_real():
    icd10 = reference_set("icd10_codes.csv", "code")
    assert set(vocabulary.ADMISSION_DIAGNOSES) <= icd10
    snomed = [c for c, *_ in vocabulary.GP_MEASUREMENTS] + list(vocabulary.GP_UNVALUED)
    snomed += [vocabulary.HBA1C[0], *vocabulary.RESOLVED.values(), *vocabulary.AE_CHIEF_COMPLAINTS]
    snomed += [*vocabulary.AE_ACUITY, *vocabulary.AE_DESTINATIONS]
    assert all(verhoeff_ok(code) for code in snomed)


@pytest.mark.parametrize("feed", ["apc_spells", "op_appointments", "ae_attendances"])
def test_hospital_feeds_carry_a_local_patient_identifier(medium_sample, feed):
    column = next(c.name for c in FORMATS[feed].columns if c.source == "local_id")
    values = [row[0] for row in read_extract(medium_sample, feed).select(f'"{column}"').fetchall()]
    assert values and all(values)


def test_sample_files_are_small_enough_to_commit():
    size = sum(p.stat().st_size for p in (REPO / "sample_data").rglob("*") if p.is_file())
    assert size < 8_000_000
