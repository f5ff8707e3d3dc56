"""Every place tier and breakdown of the marts partitions the registered population, so each level's
cells add up to the city in every period (the store `ldm demo` builds from the committed sample)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from conftest import PERIOD_END, REPO, query, rolling_period

PLACES = ["icb", "sub_icb", "pcn", "practice", "ward", "msoa11", "lsoa21"]
BREAKDOWNS = ["imd_quintile", "imd_decile", "age_band", "sex", "ethnic_group"]


@pytest.mark.parametrize(
    ("mart", "item"), [("mart_prevalence", "condition"), ("mart_utilisation", "measure")]
)
def test_each_level_adds_up_to_the_city(sample_marts_store: Path, mart: str, item: str):
    rows = query(
        sample_marts_store,
        f"""select l.period_type, l.period_end, l.geography_level, l.{item}, sum(l.numerator), sum(l.denominator),
                   any_value(c.numerator), any_value(c.denominator), count(distinct c.area_code)
            from marts.{mart} l join marts.{mart} c
              on c.period_type = l.period_type and c.period_end = l.period_end and c.{item} = l.{item}
             and c.geography_level = 'city'
            where l.geography_level in ({", ".join(f"'{level}'" for level in PLACES + BREAKDOWNS)})
            group by all""",
    )
    assert {row[2] for row in rows} == set(PLACES + BREAKDOWNS)
    assert len({row[:2] for row in rows}) == len(
        query(sample_marts_store, f"select distinct period_end, period_type from marts.{mart}")
    )
    for *key, numerator, denominator, city_numerator, city_denominator, cities in rows:
        assert cities == 1 and (numerator, denominator) == (city_numerator, city_denominator), key


def test_ethnic_groups_are_the_reference_groups_of_each_persons_category(sample_marts_store: Path):
    with (REPO / "ldm" / "reference" / "nhs_ethnic_category_groups.csv").open() as lookup:
        group_of = {row["ethnic_category"]: row["ethnic_group"] for row in csv.DictReader(lookup)}
    assert group_of["Z"] == "not_stated" and len(set(group_of.values())) == 6
    people = query(
        sample_marts_store,
        """select p.ethnic_category, pop.ethnic_group, count(*)
           from intermediate.int_registered_population pop join main.persons p using (person_id)
           where pop.period_end = ? group by all""",
        PERIOD_END,
    )
    assert sum(n for category, _, n in people if category == "Z") > 0  # "not stated" is shown
    for category, group, _ in people:
        assert group == group_of.get(category, "unknown"), category
    city = query(
        sample_marts_store,
        "select sum(denominator) from marts.mart_prevalence where geography_level = 'ethnic_group' "
        f"and condition = 'hypertension' and {rolling_period()}",
    )
    assert city[0][0] == sum(n for *_, n in people)


def test_practices_and_areas_have_names(sample_marts_store: Path):
    unnamed = query(
        sample_marts_store,
        """select geography_level, count(*) from marts.mart_utilisation
           where geography_level in ('icb', 'sub_icb', 'practice', 'pcn', 'ward', 'msoa11') and area_code <> 'unknown'
             and area_name is null group by all""",
    )
    assert unnamed == []
