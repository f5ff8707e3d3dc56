"""Helpers of tests/test_indicators.py and tests/test_life_expectancy_marts.py: a generated sample run
through the real pipeline (built once per session and sample), and the registered population and
the residence rule written anew over the store's person-level tables.

The SQL here reads only `main.*` tables and never a dbt model, so a test that compares a mart with
it checks the mart's definitions against a second, independent statement of them: the registered
list of int_registered_list.sql, the age limits of int_registered_population.sql and the residence
rule of governance/residence.md.
"""

from __future__ import annotations

import datetime
import shutil
import time
from pathlib import Path

import yaml
from conftest import built_once

from ldm.config import load_settings
from ldm.pipeline import run_pipeline
from ldm.pseudonymise.keys import init_key

REPO = Path(__file__).resolve().parent.parent
PROJECT_VARS = yaml.safe_load((REPO / "dbt_project" / "dbt_project.yml").read_text())["vars"]
TODAY = datetime.date(2025, 4, 1)  # the day after the generator's extract date (SampleConfig.as_of)
MAX_AGE = 115  # ldm.validate.suites.MAX_AGE, the max_plausible_age var
EMERGENCY = "('21', '22', '23', '24', '25', '2A', '2B', '2C', '2D', '28')"  # admission methods 21-28

# The store tables whose records carry an address, with the date each record saw it: the evidence
# of governance/residence.md ("a GP registration on its start date, a spell on its admission date,
# an outpatient appointment, an A&E arrival, a community contact on theirs", and a death).
ADDRESS_EVIDENCE = {
    "gp_registrations": ("registrations", "registration_start"),
    "apc_spells": ("apc_spells", "admission_date"),
    "op_appointments": ("op_appointments", "appointment_date"),
    "ae_attendances": ("ae_attendances", "cast(arrival_time as date)"),
    "community_contacts": ("community_contacts", "contact_date"),
    "deaths": ("deaths", "date_of_death"),
}


def pipeline_store(sample: Path, tmp_path_factory, leave_out: tuple[str, ...] = ()) -> Path:
    """The store `ldm run` builds from a copy of `sample`'s extracts (the copy keeps the shared
    sample free of the quarantine files a run writes beside its extracts), less the extract files
    named in `leave_out` (a test that needs no GP events need not load them), built once per test run
    (conftest.built_once: shared by the workers, so it is only ever opened read-only); its build time
    is in `pipeline_seconds`."""
    return _built(sample, tmp_path_factory, leave_out) / "store.duckdb"


def pipeline_seconds(sample: Path, tmp_path_factory, leave_out: tuple[str, ...] = ()) -> float:
    return float((_built(sample, tmp_path_factory, leave_out) / "seconds").read_text())


def _built(sample: Path, tmp_path_factory, leave_out: tuple[str, ...]) -> Path:
    def build(root: Path) -> None:
        shutil.copytree(sample / "extracts", root / "extracts", ignore=lambda folder, names: leave_out)
        init_key(root / "ldm.key")
        settings = load_settings(None, store=root / "store.duckdb", key_file=root / "ldm.key", today=TODAY)
        started = time.perf_counter()
        run_pipeline(root / "extracts", settings)
        (root / "seconds").write_text(f"{time.perf_counter() - started:.3f}")

    return built_once(tmp_path_factory, "_".join([f"{sample.name}_run", *leave_out]), build)


def date(value: datetime.date | str) -> str:
    return f"date '{datetime.date.fromisoformat(str(value)).isoformat()}'"


def registered_population(at: datetime.date | str) -> str:
    """A query of the registered population at a date (a period end, the last day of a month): one
    row per person with `age` in completed years, `sex` and `imd_quintile` of where they lived then.

    Registered: a registration open at the date (started by it, not ended by it, no death on it by
    then); not dead by it, neither by the person's GP record nor by a registered death in
    main.deaths; aged 0 to 115. Where they lived: the area whose address was most recently *first
    seen* on or before the date, over every linked record with an address in the city (ties broken
    by feed, batch and row); with no such record, the area of the latest registration (persons).
    """
    day = date(at)
    evidence = "\n union all\n ".join(
        f"""select person_id, '{feed}' as feed, {seen_on} as seen_on, batch_id, row_number,
                  lsoa21_code, imd_quintile
           from main.{table}
           where person_id is not null and lsoa21_code is not null and {seen_on} is not null"""
        for feed, (table, seen_on) in ADDRESS_EVIDENCE.items()
    )
    return f"""
        with evidence as (
            {evidence}
        ),
        first_sightings as (
            -- each person's first record in each 2021 LSOA (its areas as that record derived them)
            select person_id, lsoa21_code,
                   min({{'seen_on': seen_on, 'feed': feed, 'batch_id': batch_id, 'row': row_number}}) as first_seen,
                   arg_min(imd_quintile, {{'seen_on': seen_on, 'feed': feed, 'batch_id': batch_id,
                                           'row': row_number}}) as imd_quintile
            from evidence
            group by person_id, lsoa21_code
        ),
        placed as (
            -- the LSOA most recently first seen by the date
            select person_id, arg_max(imd_quintile, first_seen) as imd_quintile
            from first_sightings
            where first_seen.seen_on <= {day}
            group by person_id
        ),
        listed as (
            select p.person_id, p.sex,
                   year({day}) - p.year_of_birth
                     - case when p.month_of_birth > month({day}) then 1 else 0 end as age,
                   case when placed.person_id is null then p.imd_quintile else placed.imd_quintile end
                     as imd_quintile
            from main.persons as p
            left join placed on placed.person_id = p.person_id
            where (p.date_of_death is null or p.date_of_death > {day})
              and not exists (
                  select 1 from main.deaths as d
                  where d.person_id = p.person_id and d.date_of_death <= {day})
              and exists (
                  select 1 from main.registrations as r
                  where r.person_id = p.person_id
                    and r.registration_start <= {day}
                    and (r.registration_end is null or r.registration_end > {day})
                    and (r.date_of_death is null or r.date_of_death > {day}))
        )
        select person_id, sex, age, imd_quintile from listed where age between 0 and {MAX_AGE}
    """


def level_code(level: str, alias: str = "pop") -> str:
    """The area code of a geography level, as the marts write it ('unknown' when not known)."""
    return {
        "city": f"'{PROJECT_VARS['city_code']}'",
        "sex": f"coalesce({alias}.sex, 'unknown')",
        "imd_quintile": f"coalesce(cast({alias}.imd_quintile as varchar), 'unknown')",
    }[level]
