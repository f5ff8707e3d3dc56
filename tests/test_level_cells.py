"""level_cells() (dbt_project/macros/geography_levels.sql): the marts' cells of every geography level,
counted in two passes (by families of nesting levels, then by level), are the plain count of each
level's areas, whether or not the levels of a family nest."""

from __future__ import annotations

import json
import random

import duckdb
import pytest
from conftest import compiled_inline

# Every level's code column, as int_population_by_area has them (all_geography_levels()).
LEVELS = [
    "city", "pcn", "practice", "ward", "msoa11", "lsoa21", "imd_quintile", "imd_decile",
    "age_band", "sex", "ethnic_group", "icb", "sub_icb",
]  # fmt: skip
EXTRA = {"level": "dose", "code": "case when x > 5 then 'high' else 'low' end"}


def compiled_level_cells(folder, only: list[str] | None, extra_levels: list[dict]) -> str:
    """level_cells() over table `people` with keys k and age_band and measures n (count) and s (sum of
    x), compiled by dbt."""
    arguments = ", ".join(
        [
            "'people'",
            "['k', 'age_band']",
            "[['n', 'count(*)'], ['s', 'sum(x)']]",
            f"only={json.dumps(only) if only else 'none'}",
            f"extra_levels={json.dumps(extra_levels)}",
        ]
    )
    return compiled_inline(folder, f"{{{{ level_cells({arguments}) }}}}")


def people(rows: int, seed: int) -> duckdb.DuckDBPyConnection:
    """A table of persons whose codes are drawn independently (so no family of levels nests), some
    of them NULL, with two keys and a measure."""
    rng = random.Random(seed)
    con = duckdb.connect()
    columns = ["k", "age_band", *[f"{level}_code" for level in LEVELS], "x"]
    con.execute(f"create table people ({', '.join(f'{c} varchar' for c in columns[:-1])}, x integer)")
    data = [
        (
            rng.choice(["2024-03-31", "2025-03-31"]),
            rng.choice(["0-4", "5-9", "90+"]),
            *[rng.choice([f"{level}{i}" for i in range(rng.randint(1, 4))] + [None]) for level in LEVELS],
            rng.randint(0, 9),
        )
        for _ in range(rows)
    ]
    con.executemany(f"insert into people values ({', '.join('?' * len(columns))})", data)
    return con


def plain_cells(con, levels: list[str], extra: dict | None) -> list[tuple]:
    """Each level's cells, one group by per level."""
    codes = [(level, f"{level}_code") for level in levels] + (
        [(extra["level"], extra["code"])] if extra else []
    )
    return con.execute(
        " union all ".join(
            f"select k, age_band, '{level}', {code}, count(*), sum(x) from people group by k, age_band, {code}"
            for level, code in codes
        )
    ).fetchall()


@pytest.mark.parametrize(
    ("only", "extra"),
    [(None, None), (["city", "ward", "imd_decile", "sex"], EXTRA)],
    ids=["every level", "some levels and a breakdown of the model's own"],
)
def test_level_cells_are_each_levels_plain_counts(tmp_path, only, extra):
    sql = compiled_level_cells(tmp_path, only, [extra] if extra else [])
    assert "grouping sets" in sql
    con = people(400, seed=len(only or LEVELS))
    got = sorted(con.execute(sql).fetchall(), key=repr)
    expected = sorted(plain_cells(con, only or LEVELS, extra), key=repr)
    assert got == expected
    assert {row[2] for row in got} == set(only or LEVELS) | ({extra["level"]} if extra else set())
