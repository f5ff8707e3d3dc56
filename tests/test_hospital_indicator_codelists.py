"""Hospital indicator codelists, and the generator planting those indicators at plausible rates.

The four codelists (chronic and acute ambulatory care sensitive conditions, fall injuries and their
external causes) are reference data: the dbt models join spell diagnoses to them exactly, so every code
must be a real 3- or 4-character ICD-10 code. The generated sample must then give the marts real counts
near the published England rates. Ranges are wide on purpose: the sample is 20,000 people over two
years (a few hundred events each), Leeds is younger than England, and the rates are crude, not
standardised. What each range is built on:

- chronic ACS (NHS Outcomes Framework 2.3.i): England about 800 emergency admissions per 100,000 a
  year, about 8% of emergency admissions; accepted 500 to 1,500 per 100,000. Nearly all should come
  from people with the matching planted condition, diagnosed by the admission (at least 90%).
- acute ACS (NHS Outcomes Framework 3a): England roughly 1,300 to 1,500 per 100,000 a year (about 1.5%
  of people); accepted 900 to 2,200, and the rate for people aged 65+ above that for younger people.
- falls (PHOF C29): England about 2,000 emergency admissions per 100,000 aged 65+ a year; accepted
  1,300 to 3,000, and the rate at 80+ well above the rate at 65-79 (England: several times higher).
- emergency readmission within 30 days (0-29 days after discharge): England about 14% of emergency
  admissions; accepted 9% to 20%.
"""

from __future__ import annotations

import csv
from pathlib import Path

import duckdb
import pytest

from ldm.reference import reference_path
from ldm.synthetic import reference, vocabulary
from ldm.synthetic.config import SampleConfig

CODELISTS = ("acs_chronic", "acs_acute", "falls_injury", "falls_external_cause")
PROVENANCE = Path(reference_path("PROVENANCE.md"))


def codelist(name: str) -> list[str]:
    with reference_path(f"codelists/icd10/{name}.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows and all(row["term"].strip() for row in rows), name
    return [row["code"] for row in rows]


def dictionary() -> set[str]:
    with reference_path("icd10_codes.csv").open(encoding="utf-8", newline="") as handle:
        return {row["code"] for row in csv.DictReader(handle)}


@pytest.mark.parametrize("name", CODELISTS)
def test_codelist_is_unique_real_icd10_and_documented(name):
    codes = codelist(name)
    assert len(codes) == len(set(codes)), name
    assert set(codes) <= dictionary(), sorted(set(codes) - dictionary())
    assert f"codelists/icd10/{name}.csv" in PROVENANCE.read_text(encoding="utf-8")


def test_each_listed_category_carries_all_its_subcodes():
    """An exact join must match a spell coded at 3 or at 4 characters, so a listed 3-character
    category brings every 4-character code under it."""
    known = dictionary()
    for name in CODELISTS:
        codes = set(codelist(name))
        for category in (code for code in codes if len(code) == 3):
            children = {code for code in known if len(code) == 4 and code.startswith(category)}
            assert children <= codes, (name, category, sorted(children - codes))


def test_falls_lists_are_injuries_and_fall_causes():
    injuries, causes = codelist("falls_injury"), codelist("falls_external_cause")
    assert all(code[0] in "ST" for code in injuries)
    assert {code[:3] for code in causes} == {f"W{i:02d}" for i in range(20)}
    assert {"S720", "S00", "T98"} <= set(injuries)


def test_the_generator_plants_only_codes_on_the_lists():
    """The planted acute, fall and cause codes are on their lists; the general admission reasons
    are on none, so the indicators count what was planted."""
    acute, chronic = set(codelist("acs_acute")), set(codelist("acs_chronic"))
    injuries, causes = set(codelist("falls_injury")), set(codelist("falls_external_cause"))
    assert {code for code, *_ in vocabulary.ACUTE_ACS_DIAGNOSES} <= acute
    assert {code for code, _ in vocabulary.FALL_INJURIES} <= injuries
    assert {code for code, _ in vocabulary.FALL_CAUSES} <= causes
    assert not set(vocabulary.ADMISSION_DIAGNOSES) & (acute | chronic | injuries)
    # The planted long-term conditions that are chronic ACS conditions reach that list.
    for condition in ("DM", "HYP", "AST", "COPD", "AF", "HF", "CHD", "DEM"):
        assert set(reference.icd10_codes(condition)) & chronic, condition


@pytest.fixture(scope="module")
def spells(medium_sample):
    """Distinct, well-formed emergency spells of Leeds residents, with age at admission and sex."""
    truth = medium_sample / "ground_truth"
    lists = reference_path("codelists/icd10")
    con = duckdb.connect()
    con.sql(
        f"""
        create table spells as
        select distinct e.SPELL_ID::bigint as spell, r.person_key, p.sex,
               e.START_DATE_HOSPITAL_PROVIDER_SPELL::date as admitted,
               try_cast(e.DISCHARGE_DATE_HOSPITAL_PROVIDER_SPELL as date) as discharged,
               e.ADMISSION_METHOD like '2%' as emergency,
               upper(trim(e.PRIMARY_DIAGNOSIS_ICD)) as dx,
               upper(trim(coalesce(e.SECONDARY_DIAGNOSIS_ICD_1, ''))) as dx2,
               floor(date_diff('day', p.date_of_birth, e.START_DATE_HOSPITAL_PROVIDER_SPELL::date)
                     / 365.25) as age
        from read_csv('{medium_sample}/extracts/apc_spells.csv', all_varchar = true) e
        join '{truth}/records.parquet' r on r.feed = 'apc_spells' and r.record_id = e.SPELL_ID::bigint
        join '{truth}/persons.parquet' p using (person_key)
        where r.malformed = '' and not p.out_of_area
        """
    )
    for name in CODELISTS:
        con.sql(f"create table {name} as select code from read_csv('{lists}/{name}.csv', all_varchar = true)")
    con.sql(f"create table persons as select * from '{truth}/persons.parquet' where not out_of_area")
    return con


def person_years(con, where: str = "true") -> float:
    config = SampleConfig(persons=1, seed=1)
    middle = config.as_of.replace(year=config.as_of.year - config.activity_years // 2).isoformat()
    people = con.sql(
        f"""select count(*) from (select floor(date_diff('day', date_of_birth, date '{middle}') / 365.25)
            as age from persons) where {where}"""
    ).fetchall()[0][0]
    return people * config.activity_years


def rate(con, where: str, population: str = "true") -> float:
    """Emergency spells matching `where` per 100,000 person-years of the population `population`."""
    count = con.sql(f"select count(*) from spells where emergency and {where}").fetchall()[0][0]
    return count / person_years(con, population) * 100_000


def test_chronic_acs_admissions_come_from_people_with_the_condition(spells):
    chronic = "dx in (select code from acs_chronic)"
    assert 500 <= rate(spells, chronic) <= 1_500, rate(spells, chronic)
    matched = " union ".join(
        f"""select s.spell from spells s join persons p using (person_key)
            where s.dx in {(*(str(code) for code in reference.icd10_codes(condition)), "")}
              and p.{condition.lower()}_diagnosed_on <= s.admitted"""
        for condition in reference.CONDITIONS
    )
    share = spells.sql(
        f"""select avg((spell in ({matched}))::int) from spells where emergency and {chronic}"""
    ).fetchall()[0][0]
    assert share >= 0.9, share


def test_acute_acs_admissions_at_a_plausible_rate_rising_with_age(spells):
    acute = "dx in (select code from acs_acute)"
    assert 900 <= rate(spells, acute) <= 2_200, rate(spells, acute)
    older = rate(spells, f"{acute} and age >= 65", "age >= 65")
    younger = rate(spells, f"{acute} and age < 65", "age < 65")
    assert older > younger, (older, younger)


def test_falls_in_people_aged_65_and_over(spells):
    fall = "dx in (select code from falls_injury) and dx2 in (select code from falls_external_cause)"
    assert 1_300 <= rate(spells, f"{fall} and age >= 65", "age >= 65") <= 3_000
    oldest = rate(spells, f"{fall} and age >= 80", "age >= 80")
    old = rate(spells, f"{fall} and age between 65 and 79", "age between 65 and 79")
    assert oldest > 2 * old, (oldest, old)


def test_emergency_readmissions_within_30_days(spells):
    last_followed = SampleConfig(persons=1, seed=1).as_of.isoformat()
    share = spells.sql(
        f"""
        select avg(((select count(*) from spells n
                    where n.emergency and n.person_key = s.person_key and n.spell <> s.spell
                      and n.admitted >= s.discharged and n.admitted < s.discharged + 30) > 0)::int)
        from spells s
        where s.emergency and s.discharged is not null
          and s.discharged + 30 <= date '{last_followed}'
        """
    ).fetchall()[0][0]
    assert 0.09 <= share <= 0.20, share
