"""The hospital indicators of mart_utilisation and the mortality of mart_mortality, recounted.

A fresh 20,000-person generated sample (conftest's `medium_sample`) goes through the real pipeline
(`ldm run`: validate, pseudonymise, load, link, dbt build) once. Each test then counts its figures
again with its own SQL over the store's person-level tables (main.apc_spells, spell_diagnoses,
persons, registrations, deaths, death_causes) and the ICD-10 codelist files in
ldm/reference/codelists/icd10, never reading a dbt model, and asks the mart for exactly the same
numerators and denominators: in the 12 months to reporting_period_end and in the 12 months before,
for the city, by sex and by IMD quintile of residence (the residence rule is written anew in
tests/independent_counts.py).
"""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from conftest import query
from independent_counts import (
    EMERGENCY,
    PROJECT_VARS,
    REPO,
    date,
    level_code,
    pipeline_seconds,
    pipeline_store,
    registered_population,
)

from ldm.sql import literal

pytestmark = pytest.mark.slow  # the pipeline on 20,000 people takes about a minute

CODELISTS = REPO / "ldm" / "reference" / "codelists" / "icd10"
REPORTING_END = datetime.date.fromisoformat(PROJECT_VARS["reporting_period_end"])


def twelve_months_to(end: datetime.date) -> tuple[datetime.date, datetime.date]:
    return end.replace(year=end.year - 1) + datetime.timedelta(days=1), end


# The latest period and the one before it (both whole financial years: April to March).
PERIODS = [
    twelve_months_to(REPORTING_END),
    twelve_months_to(REPORTING_END.replace(year=REPORTING_END.year - 1)),
]
LEVELS = ["city", "sex", "imd_quintile"]
ADMISSION_MEASURES = [
    "acs_chronic_emergency_admissions",
    "acs_acute_emergency_admissions",
    "falls_emergency_admissions_65_plus",
    "emergency_admissions_65_plus",
]
AGED_65_PLUS = {"falls_emergency_admissions_65_plus", "emergency_admissions_65_plus"}
# A&E attendances of the registered persons aged 65+ at the period end (age_restricted_measures var).
AGE_RESTRICTED = ["ae_attendances_65_plus"]
MORTALITY_MEASURES = ["under_75_mortality_all_causes", "under_75_mortality_cardiovascular", "deaths_at_home"]


@pytest.fixture(scope="module")
def store(medium_sample: Path, tmp_path_factory) -> Path:
    built = pipeline_store(medium_sample, tmp_path_factory)
    print(f"ldm run on the 20,000-person sample: {pipeline_seconds(medium_sample, tmp_path_factory):.0f} s")
    return built


def codelist(name: str) -> str:
    return f"select code from read_csv({literal(CODELISTS / f'{name}.csv')}, all_varchar = true)"


def admission_events(start: datetime.date, end: datetime.date) -> str:
    """One row (measure, person_id) per emergency admission in the window counted by a measure."""
    primary = """exists (select 1 from main.spell_diagnoses as d
                         where d.batch_id = s.batch_id and d.row_number = s.row_number and d.position = 0
                           and d.icd10_code in ({codes}))"""
    return f"""
        emergency as (
            select * from main.apc_spells
            where person_id is not null and admission_method in {EMERGENCY}
              and admission_date between {date(start)} and {date(end)}
        ),
        events as (
            -- NHS Outcomes Framework 2.3.i and 3a: primary diagnosis in the chronic / acute ACS list
            select 'acs_chronic_emergency_admissions' as measure, person_id from emergency as s
            where {primary.format(codes=codelist("acs_chronic"))}
            union all
            select 'acs_acute_emergency_admissions', person_id from emergency as s
            where {primary.format(codes=codelist("acs_acute"))}
            union all
            -- PHOF C29: an injury as primary diagnosis, a fall (W00-W19) in any secondary position,
            -- aged 65 or over at admission
            select 'falls_emergency_admissions_65_plus', person_id from emergency as s
            where s.age_at_event >= 65
              and {primary.format(codes=codelist("falls_injury"))}
              and exists (select 1 from main.spell_diagnoses as d
                          where d.batch_id = s.batch_id and d.row_number = s.row_number and d.position > 0
                            and left(d.icd10_code, 3) between 'W00' and 'W19')
            union all
            -- Better Care Fund: every emergency admission aged 65 or over at admission
            select 'emergency_admissions_65_plus', person_id from emergency as s
            where s.age_at_event >= 65
            union all
            -- Every A&E attendance (of a person aged 65+ at the period end: see recount_admissions)
            select 'ae_attendances_65_plus', person_id from main.ae_attendances
            where person_id is not null and cast(arrival_time as date) between {date(start)} and {date(end)}
        )
    """


def recount_admissions(store: Path, start: datetime.date, end: datetime.date, level: str) -> dict:
    """{(measure, area): (numerator, denominator)} of the admission indicators and the emergency
    readmission rate, for the registered population at `end` by where they lived then."""
    population = registered_population(end)
    cohort = f"cohort as (select person_id, age, {level_code(level)} as area from ({population}) as pop)"
    persons = {
        area: (everyone, aged_65)
        for area, everyone, aged_65 in query(
            store,
            f"with {cohort} select area, count(*), count(*) filter (where age >= 65) from cohort group by 1",
        )
    }
    events = {
        (measure, area): count
        for measure, area, count in query(
            store,
            f"""with {cohort}, {admission_events(start, end)}
                select measure, area, count(*) from events join cohort using (person_id)
                where measure not in (select unnest(?)) or age >= 65
                group by all""",
            AGE_RESTRICTED,
        )
    }
    expected = {}
    for area, (everyone, aged_65) in persons.items():
        for measure in [*ADMISSION_MEASURES, *AGE_RESTRICTED]:
            denominator = aged_65 if measure in AGED_65_PLUS or measure in AGE_RESTRICTED else everyone
            if denominator:
                expected[(measure, area)] = (events.pop((measure, area), 0), denominator)
    assert not events, f"admissions of registered people counted in no cell: {events}"
    # Emergency readmissions: spells discharged in the period (not maternity: methods 31, 32) of
    # linked people, readmitted when the same person has another emergency admission 0 to 29 days
    # after the discharge date.
    readmissions = query(
        store,
        f"""with {cohort},
            discharges as (
                select s.person_id,
                       exists (select 1 from main.apc_spells as n
                               where n.person_id = s.person_id and n.admission_method in {EMERGENCY}
                                 and n.admission_date >= s.discharge_date
                                 and n.admission_date <= s.discharge_date + interval 29 day
                                 and (n.batch_id, n.row_number) <> (s.batch_id, s.row_number)) as readmitted
                from main.apc_spells as s
                where s.person_id is not null and s.admission_method not in ('31', '32')
                  and s.discharge_date between {date(start)} and {date(end)}
            )
            select area, count(*) filter (where readmitted), count(*)
            from discharges join cohort using (person_id) group by all""",
    )
    for area, readmitted, discharged in readmissions:
        expected[("emergency_readmission_rate", area)] = (readmitted, discharged)
    for area in persons.keys() - {area for area, _, _ in readmissions}:
        expected[("emergency_readmission_rate", area)] = (0, 0)
    return expected


def published(store: Path, table: str, period_type: str, end: datetime.date, level: str, measures) -> dict:
    rows = query(
        store,
        f"""select measure, area_code, numerator, denominator, period_start from marts.{table}
            where period_type = ? and period_end = ? and geography_level = ?
              and measure in (select unnest(?))""",
        period_type,
        end,
        level,
        list(measures),
    )
    assert {start for *_, start in rows} == {twelve_months_to(end)[0]}, rows[:3]
    return {(measure, area): (numerator, denominator) for measure, area, numerator, denominator, _ in rows}


def test_the_measures_tested_here_are_those_the_project_defines():
    indicators = {i["measure"]: i for i in PROJECT_VARS["admission_indicators"]}
    assert set(ADMISSION_MEASURES) <= set(indicators)
    assert {m for m in ADMISSION_MEASURES if indicators[m].get("min_age") == 65} == AGED_65_PLUS
    assert PROJECT_VARS["premature_mortality_age"] == 75
    causes = {c["cause"]: c for c in PROJECT_VARS["mortality_causes"]}
    assert (causes["cardiovascular"]["icd10_from"], causes["cardiovascular"]["icd10_to"]) == ("I00", "I99")
    assert "icd10_from" not in causes["all_causes"]
    restricted = {m["measure"]: m for m in PROJECT_VARS["age_restricted_measures"]}
    assert {m: (restricted[m]["of"], restricted[m]["min_age"]) for m in AGE_RESTRICTED} == {
        "ae_attendances_65_plus": ("ae_attendances", 65)
    }


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("period", PERIODS, ids=lambda p: f"12_months_to_{p[1]}")
def test_admission_indicators_and_readmissions_agree_exactly_with_an_independent_count(store, period, level):
    start, end = period
    expected = recount_admissions(store, start, end, level)
    measures = [*ADMISSION_MEASURES, *AGE_RESTRICTED, "emergency_readmission_rate"]
    assert published(store, "mart_utilisation", "rolling_12_months", end, level, measures) == expected
    if level == "city":  # every indicator has events to count, so agreement is not of zeros
        assert all(numerator > 0 for numerator, _ in expected.values()), expected


def recount_mortality(store: Path, start: datetime.date, end: datetime.date, level: str) -> dict:
    """{(measure, area): (numerator, denominator)} of deaths under 75 (all causes; underlying cause
    I00-I99) per registered person under 75 at `end`, and deaths at home among all deaths: the deaths
    in the period of the city's residents (a death record with an LSOA in the city), linked or not,
    by the area of residence on the death record."""
    persons = dict(
        query(
            store,
            f"""select {level_code(level)}, count(*) from ({registered_population(end)}) as pop
                where age < 75 group by 1""",
        )
    )
    deaths = query(
        store,
        f"""select {level_code(level, "d")} as area,
                   count(*) filter (where d.age_at_event between 0 and 74),
                   count(*) filter (where d.age_at_event between 0 and 74
                                      and left(c.icd10_code, 3) between 'I00' and 'I99'),
                   count(*) filter (where d.place_of_death = 'HOME'),
                   count(*)
            from main.deaths as d
            left join main.death_causes as c
              on c.batch_id = d.batch_id and c.row_number = d.row_number and c.position = 0
            where d.lsoa21_code is not null and d.date_of_death between {date(start)} and {date(end)}
            group by 1""",
    )
    expected = {}
    for area, under_75 in persons.items():
        expected[("under_75_mortality_all_causes", area)] = (0, under_75)
        expected[("under_75_mortality_cardiovascular", area)] = (0, under_75)
    for area, all_causes, cardiovascular, at_home, everyone in deaths:
        expected[("under_75_mortality_all_causes", area)] = (all_causes, persons.get(area, 0))
        expected[("under_75_mortality_cardiovascular", area)] = (cardiovascular, persons.get(area, 0))
        expected[("deaths_at_home", area)] = (at_home, everyone)
    return expected


@pytest.mark.parametrize("level", ["city", "imd_quintile"])
@pytest.mark.parametrize("period", PERIODS, ids=lambda p: f"financial_year_to_{p[1]}")
def test_premature_mortality_and_deaths_at_home_agree_exactly_with_an_independent_count(store, period, level):
    start, end = period
    expected = recount_mortality(store, start, end, level)
    assert published(store, "mart_mortality", "financial_year", end, level, MORTALITY_MEASURES) == expected
    if level == "city":
        assert all(numerator > 0 for numerator, _ in expected.values()), expected
    label = query(
        store,
        "select distinct period_label from marts.mart_mortality"
        " where period_type = 'financial_year' and period_end = ?",
        end,
    )
    assert label == [(f"{start.year}/{str(end.year)[2:]}",)]
