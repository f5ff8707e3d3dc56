"""The deaths feed end to end: its spec and suite, quarantine, linkage to the planted person, the store,
and the planted mortality behind the generated deaths.

Everything runs on generated extracts, real DuckDB files and the real pipeline; the expected figures
come from the published ONS life expectancies and from the ground truth, never from the sample.
"""

from __future__ import annotations

import csv
import datetime
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from scipy import stats

from ldm.cli import main
from ldm.feeds.codes import VALUE_SETS, reference_values
from ldm.feeds.spec import builtin_specs
from ldm.load.loader import load_folder
from ldm.pseudonymise.batch import pseudonymise_folder
from ldm.pseudonymise.keys import init_key
from ldm.store import connect, upgrade
from ldm.synthetic import deaths as death_records
from ldm.synthetic import mortality
from ldm.synthetic.config import SampleConfig
from ldm.synthetic.formats import FORMATS
from ldm.synthetic.generate import generate
from ldm.validate.suites import load_suite_document, suite_document
from models.feeds import FEED_TABLES, FEEDS, REPEATED_FIELDS

TODAY = datetime.date(2025, 4, 1)
# ONS, Health state life expectancies by national deprivation deciles, England: 2018 to 2020:
# life expectancy at birth in the most (1) and least (10) deprived deciles, and the published gaps.
ONS_2018_2020 = {"M": {1: 73.5, 10: 83.2, "gap": 9.7}, "F": {1: 78.3, 10: 86.3, "gap": 7.9}}
TOLERANCE = 0.5  # years


def read_csv(path: Path) -> list[dict]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


# --- the feed's definition: store tables, spec, suite -----------------------------------------------


def test_the_feed_is_loaded_into_deaths_with_its_causes_in_death_causes():
    assert FEEDS.index("deaths") > FEEDS.index("gp_registrations")
    assert FEED_TABLES["deaths"] == "deaths"
    cause = REPEATED_FIELDS["deaths"]["cause"]
    assert (cause.table, cause.column, cause.code_system) == ("death_causes", "icd10_code", "icd10")
    spec = builtin_specs()["deaths"]
    assert spec.event_date == "date_of_death" and spec.record_key == ("record_id",)
    assert spec.column("place_of_death").code_system == "place_of_death"
    assert [c.source for c in spec.columns if c.field == "cause"][:2] == [
        "S_UNDERLYING_COD_ICD10",
        "S_COD_CODE_1",
    ]


def test_the_spec_passes_the_check_and_its_suite_is_the_committed_one(capsys):
    assert main(["specs", "check", str(Path(builtin_specs()["deaths"].path).parent)]) == 0
    assert "deaths.yaml (deaths, provider standard)" in capsys.readouterr().out
    assert suite_document(builtin_specs()["deaths"]) == load_suite_document("deaths")
    assert main(["expectations", "--check"]) == 0


@pytest.mark.parametrize(
    ("column", "rule"),
    [
        ("age_at_death", "date_of_death is before date_of_birth"),
        ("date_of_death__yyyymmdd", "date_of_death is in the future or implausibly early"),
        ("days_date_of_death_to_registration_date", "registration_date is before date_of_death"),
        ("date_of_death", "date_of_death is missing"),
        ("cause_0", "cause_0 is missing"),
    ],
)
def test_impossible_deaths_are_critical_rules_of_the_suite(column, rule):
    rules = {
        (r["kwargs"]["column"], r["meta"]["rule"]): r["severity"]
        for r in load_suite_document("deaths")["expectations"]
    }
    assert rules[(column, rule)] == "critical"


# --- a generated sample through the pipeline --------------------------------------------------------


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    """5,000 people with their deaths, plus two planted rows: an impossible death, and the death of
    someone who was never registered (a valid NHS number and a name nobody in the sample has)."""
    folder = tmp_path_factory.mktemp("deaths_sample")
    generate(SampleConfig(persons=5_000, seed=11), folder)
    path = folder / "extracts" / "deaths.csv"
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        header, rows = reader.fieldnames, list(reader)
    born_after = {
        **rows[0],
        "DEATH_RECORD_ID": "900001",
        "DEC_DATE_OF_BIRTH": "20240601",
        "REG_DATE": "20240305",
        "REG_DATE_OF_DEATH": "20240301",
    }
    stranger = {
        **rows[0],
        "DEATH_RECORD_ID": "900002",
        "DEC_NHS_NUMBER": "9990000026",  # valid (Modulus 11), outside the generator's numbers
        "DEC_FORENAMES": "ZEBEDEE",
        "DEC_SURNAME": "QUIXLEY",
        "DEC_DATE_OF_BIRTH": "19300101",
        "DEC_USUAL_ADDRESS_POSTCODE": "LS1 1AA",
    }
    with path.open("a", newline="") as handle:
        csv.DictWriter(handle, header).writerows([born_after, stranger])
    return folder


@pytest.fixture(scope="module")
def loaded(sample: Path, tmp_path_factory):
    root = tmp_path_factory.mktemp("deaths_store")
    key = init_key(root / "ldm.key")
    result = pseudonymise_folder(sample / "extracts", root / "out", key, builtin_specs(), TODAY)
    assert not result.failed, result.failed
    store = root / "store.duckdb"
    upgrade(store)
    load_folder(root / "out", store, key)
    return store


def test_a_death_before_birth_is_quarantined_naming_file_row_and_rule(sample: Path, loaded: Path):
    rejected = read_csv(sample / "extracts" / "quarantine" / "deaths.csv.rejected.csv")
    planted = [row for row in rejected if row["DEATH_RECORD_ID"] == "900001"]
    assert len(planted) == 1
    rows_in_file = len(read_csv(sample / "extracts" / "deaths.csv"))
    assert int(planted[0]["row_number"]) == rows_in_file - 1  # the row in the file, from 1
    assert planted[0]["reasons"] == "date_of_death is before date_of_birth"
    con = connect(loaded, read_only=True)
    counted = con.execute(
        "select q.rows from governance.quarantine_counts q join governance.batches b using (batch_id) "
        "where b.feed = 'deaths' and q.rule = 'date_of_death is before date_of_birth'"
    ).fetchall()
    con.close()
    assert counted == [(1,)]


def _truth(con) -> None:
    con.execute("create temp table truth as select * from truth_records")
    con.execute(
        """create temp table person_truth as
           select r.person_id, any_value(t.person_key) as person_key, count(distinct t.person_key) as keys
           from main.registrations r join truth t on t.feed = 'gp_registrations' and t.record_id = r.record_id
           group by r.person_id"""
    )


def test_deaths_link_to_the_planted_person_and_never_to_another(sample: Path, loaded: Path):
    """Recall and precision of the deaths' links against the ground truth: every link is right, and
    nearly every death of a registered person who has not opted out is linked."""
    con = connect(loaded, read_only=True)
    con.register("truth_records", pq.read_table(sample / "ground_truth" / "records.parquet"))
    con.register("truth_persons", pq.read_table(sample / "ground_truth" / "persons.parquet"))
    _truth(con)
    assert con.execute("select max(keys) from person_truth").fetchall()[0][0] == 1
    linked, right, total = con.execute(
        """select count(d.person_id), count(*) filter (where p.person_key = t.person_key), count(*)
           from main.deaths d join truth t on t.feed = 'deaths' and t.record_id = d.record_id
           left join person_truth p on p.person_id = d.person_id"""
    ).fetchall()[0]
    assert total > 50
    assert right == linked  # no false link
    assert linked / total >= 0.97
    # Every death of the sample's registered people reached the store unless opted out or quarantined.
    dead, stored = con.execute(
        """select count(*) filter (where not p.opted_out),
                  count(*) filter (where not p.opted_out and d.record_id is not null)
           from truth_persons p join truth t on t.person_key = p.person_key and t.feed = 'deaths'
           left join main.deaths d on d.record_id = t.record_id"""
    ).fetchall()[0]
    assert stored >= dead * 0.99
    con.close()


def test_a_death_of_someone_never_registered_is_kept_unlinked(loaded: Path):
    con = connect(loaded, read_only=True)
    rows = con.execute(
        "select person_id, link_step, age_at_event, lsoa11_code is not null from main.deaths where record_id = 900002"
    ).fetchall()
    causes = con.execute(
        "select count(*) from main.death_causes c join main.deaths d using (batch_id, row_number) "
        "where d.record_id = 900002 and c.position = 0"
    ).fetchall()
    con.close()
    assert rows == [(None, "unlinked", rows[0][2], True)] and rows[0][2] >= 90
    assert causes == [(1,)]


def test_opted_out_people_have_no_death_in_the_store(sample: Path, loaded: Path):
    con = connect(loaded, read_only=True)
    con.register("truth_records", pq.read_table(sample / "ground_truth" / "records.parquet"))
    con.register("truth_persons", pq.read_table(sample / "ground_truth" / "persons.parquet"))
    leaked = con.execute(
        """select count(*) from main.deaths d join truth_records t on t.feed = 'deaths' and t.record_id = d.record_id
           join truth_persons p on p.person_key = t.person_key where p.opted_out and d.nhs_number_valid"""
    ).fetchall()[0][0]
    con.close()
    assert leaked == 0


def test_the_store_keeps_months_of_death_and_registration_and_codes_as_sent(loaded: Path):
    con = connect(loaded, read_only=True)
    days, places, unknown_causes, underlying = con.execute(
        """select (select count(*) from main.deaths where day(date_of_death) <> 1 or day(registration_date) <> 1),
                  (select list(distinct place_of_death) from main.deaths),
                  (select count(*) from main.death_causes
                   where not regexp_full_match(icd10_code, '[A-Z][0-9]{2}[0-9A-Z]?')),
                  (select count(*) from main.death_causes where position = 0)"""
    ).fetchall()[0]
    deaths_rows = con.execute("select count(*) from main.deaths").fetchall()[0][0]
    con.close()
    assert days == 0
    assert set(places) <= set(VALUE_SETS["place_of_death"])
    assert unknown_causes == 0
    assert underlying == deaths_rows  # every death has its underlying cause at position 0


# --- the generator's deaths -------------------------------------------------------------------------


def test_cause_codes_are_in_the_icd10_dictionary_once_cleaned():
    dictionary = reference_values("icd10")
    for _, codes in death_records.CAUSE_GROUPS:
        for code in codes:
            cleaned = code[:3] if len(code) == 4 and code.endswith("X") else code
            assert cleaned in dictionary, code
    for code, _ in death_records.EXTRA_CAUSES:
        assert code in dictionary


def test_generated_deaths_look_like_england(large_sample: Path):
    """Place of death near England's shares; COPD makes J44 likelier as the underlying cause."""
    rows = read_csv(large_sample / "extracts" / "deaths.csv")
    places = {
        place: sum(r["POD_CATEGORY"] == place for r in rows) / len(rows)
        for place in VALUE_SETS["place_of_death"]
    }
    for place, share in {"HOME": 0.28, "HOSPITAL": 0.44, "CARE_HOME": 0.21, "HOSPICE": 0.05}.items():
        assert abs(places[place] - share) < 0.06, (place, places[place])
    persons = (
        pq.read_table(large_sample / "ground_truth" / "persons.parquet").to_pandas().set_index("person_key")
    )
    truth = pq.read_table(large_sample / "ground_truth" / "records.parquet").to_pandas()
    truth = truth[truth.feed == "deaths"].drop_duplicates("record_id").set_index("record_id")
    copd = {}
    for row in rows:
        person = persons.loc[truth.loc[int(row["DEATH_RECORD_ID"]), "person_key"]]
        copd.setdefault(bool(pd.notna(person["copd_diagnosed_on"])), []).append(
            row["S_UNDERLYING_COD_ICD10"].startswith("J44")
        )
    assert np.mean(copd[True]) > 2 * np.mean(copd[False])


# --- the planted mortality --------------------------------------------------------------------------


@pytest.mark.parametrize("sex", ["M", "F"])
def test_planted_life_expectancy_gap_is_the_published_one(sex):
    at_birth = {d: mortality.life_expectancy(mortality.hazard(sex, d))[0] for d in mortality.DECILES}
    assert abs((at_birth[10] - at_birth[1]) - ONS_2018_2020[sex]["gap"]) <= TOLERANCE
    assert all(at_birth[d] < at_birth[d + 1] for d in range(1, 10))  # a gradient, not just two ends


@pytest.mark.parametrize("decile", range(1, 11))
@pytest.mark.parametrize("sex", ["M", "F"])
def test_planted_life_expectancy_at_birth_matches_the_published_decile(sex, decile):
    """Deciles 1 and 10 as published; the deciles between as the straight line between them (the
    interior figures were not to hand: see ldm.synthetic.mortality)."""
    published = ONS_2018_2020[sex]
    expected = published[1] + (published[10] - published[1]) * (decile - 1) / 9
    assert abs(mortality.life_expectancy(mortality.hazard(sex, decile))[0] - expected) <= TOLERANCE


def test_the_ground_truth_life_expectancy_is_the_life_table_of_the_planted_hazard(medium_sample: Path):
    """Recomputed here from the hazards the ground truth records, with a life table written out anew."""
    hazards = {}
    for row in read_csv(medium_sample / "ground_truth" / "mortality_hazard.csv"):
        hazards.setdefault((row["sex"], int(row["imd_decile"])), []).append(float(row["yearly_hazard"]))
    written = read_csv(medium_sample / "ground_truth" / "life_expectancy.csv")
    assert {(r["sex"], int(r["imd_decile"]), int(r["start_age"])) for r in written} == {
        (s, d, a) for s in ("F", "M") for d in range(1, 11) for a in (0, 65)
    }
    for row in written:
        mu = hazards[(row["sex"], int(row["imd_decile"]))]
        start = int(row["start_age"])
        alive, years = 1.0, 0.0
        for age in range(start, len(mu) - 1):
            survive = math.exp(-mu[age])
            years += alive * (1 - survive) / mu[age]
            alive *= survive
        years += alive / mu[-1]
        assert float(row["life_expectancy"]) == pytest.approx(years, abs=1e-3)
        assert 10 < years < 30 if start == 65 else 70 < years < 90


@pytest.fixture(scope="module")
def large_sample(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("mortality_sample")
    generate(SampleConfig(persons=50_000, seed=5), folder)
    return folder


AGE_BANDS = (0, 60, 75, 85)


def test_generated_deaths_follow_the_planted_hazard(large_sample: Path):
    """Observed deaths against the deaths the planted hazard expects over each person's time at risk
    (from the window's start or registration until death, leaving or the extract date), by age band at
    the time, sex and IMD quintile: a chi-square test at the 0.1% level, and the total within 4 SD."""
    config = SampleConfig(persons=50_000, seed=5)
    people = pq.read_table(large_sample / "ground_truth" / "persons.parquet").to_pandas()
    people = people[~people.out_of_area]
    day = np.timedelta64(1, "D")
    born = people.date_of_birth.to_numpy().astype("datetime64[D]")
    start = np.maximum.reduce(
        [
            born,
            people.registered_on.to_numpy().astype("datetime64[D]"),
            np.full(len(people), np.datetime64(config.window_start, "D")),
        ]
    )
    left = people.deregistered_on.to_numpy().astype("datetime64[D]")
    died = people.died_on.to_numpy().astype("datetime64[D]")
    end = np.where(np.isnat(left), np.datetime64(config.as_of, "D") + day, left)
    sex = (people.sex.to_numpy() == "M").astype(int)
    decile = people.imd_decile.to_numpy().astype(int)
    table = np.zeros((2, 10, 111))
    for row in read_csv(large_sample / "ground_truth" / "mortality_hazard.csv"):
        table[int(row["sex"] == "M"), int(row["imd_decile"]) - 1, int(row["age"])] = float(
            row["yearly_hazard"]
        )
    multiplier = people.mortality_multiplier.to_numpy()
    cells = len(AGE_BANDS) * 2 * 5
    expected = np.zeros(cells)
    window = np.arange(np.datetime64(config.window_start, "D"), np.datetime64(config.as_of, "D") + day)
    for today in window:  # one day at a time: the person's hazard at their age that day
        at_risk = (start <= today) & (today < end)
        age = np.floor(((today - born) / day + 0.5) / 365.25).astype(int)
        cell = (np.searchsorted(AGE_BANDS, age, side="right") - 1) * 10 + sex * 5 + (decile - 1) // 2
        rate = table[sex, decile - 1, np.minimum(age, 110)] * multiplier / 365.25
        expected += np.bincount(cell[at_risk], weights=rate[at_risk], minlength=cells)
    dead = ~np.isnat(died)
    age_at_death = np.floor(((died[dead] - born[dead]) / day + 0.5) / 365.25).astype(int)
    cell = (
        (np.searchsorted(AGE_BANDS, age_at_death, side="right") - 1) * 10
        + sex[dead] * 5
        + (decile[dead] - 1) // 2
    )
    observed = np.bincount(cell, minlength=cells)
    assert observed.sum() > 500
    assert abs(observed.sum() - expected.sum()) < 4 * math.sqrt(expected.sum())
    used = expected >= 5
    statistic = (((observed - expected) ** 2 / expected)[used]).sum()
    assert statistic < stats.chi2.ppf(0.999, used.sum()), (observed, expected.round(1))
    # Deaths of the sample are every Leeds death in the window, each with one registration.
    registrations = {r["DEATH_RECORD_ID"] for r in read_csv(large_sample / "extracts" / "deaths.csv")}
    assert len(registrations) == dead.sum()


def test_the_dead_leave_the_gp_list_at_death(medium_sample: Path):
    rows = read_csv(medium_sample / "extracts" / "gp_registrations.csv")
    persons = pq.read_table(medium_sample / "ground_truth" / "persons.parquet").to_pandas()
    dead = persons[persons.died_on.notna()]
    assert len(dead) > 100
    assert (dead.deregistered_on == dead.died_on).all()
    recorded = {r["Date of Death"] for r in rows if r["Date of Death"]}
    assert len(recorded) > 50
    formats = FORMATS["gp_registrations"].date_format
    assert {datetime.datetime.strptime(d, formats).date() for d in recorded} <= set(dead.died_on)


def test_death_dates_fall_in_the_window_after_birth(medium_sample: Path):
    config = SampleConfig(persons=20_000, seed=7)
    persons = pq.read_table(medium_sample / "ground_truth" / "persons.parquet").to_pandas()
    dead = persons[persons.died_on.notna()]
    assert all(config.window_start <= died <= config.as_of for died in dead.died_on)
    assert (dead.died_on >= dead.date_of_birth).all()
    assert not dead.out_of_area.any()
