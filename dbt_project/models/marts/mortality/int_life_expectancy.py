"""Life expectancy at birth and at 65 of every life table in int_life_table, and the slope index of
inequality in life expectancy across IMD deciles and quintiles.

A dbt Python model (run by dbt-duckdb, or on Spark by ldm.spark.python_models; ldm.marts.frames
reads and returns its frames on either): each table (period, level, area, sex) goes to
ldm.stats.life_expectancy (PHEindicatormethods' phe_life_expectancy: Chiang II abridged life table,
Silcocks limits), the same code analysts call from Python. A table is not computed (life_expectancy NULL, with the reason in
`not_computed`) where ldm.stats refuses it or suppresses it: a band with no population, more deaths
than population in a band, or 5,000 person-years or fewer in all (phe_life_expectancy's minimum);
and a value whose 95% interval is wider than 20 years is NULL, as in the package.

The SII (Fingertips' method, phe_sii) of each period, sex and start age is computed over the IMD
groups of a scale from their life expectancies, person-years and the standard errors implied by
their intervals; NULL when any group has no value. Its sign: positive when life expectancy is
higher in less deprived groups (the gap in years across the whole scale).
"""

import math
import warnings
from statistics import NormalDist

import pyarrow as pa

from ldm import stats
from ldm.marts import frames

TABLE_KEYS = ["period_start", "period_end", "geography_level", "area_code", "sex"]
START_AGES = (0, 65)


def life_table(bands, deaths, people, confidence):
    """(LifeExpectancy by start age, or None, and the reason it was not computed)."""
    if min(people) <= 0:
        return None, "an age band has no population"
    if any(d > p for d, p in zip(deaths, people, strict=True)):
        return None, "more deaths than population in an age band"
    if sum(people) <= stats.LE_MIN_TOTAL_POPULATION:
        return None, f"{stats.LE_MIN_TOTAL_POPULATION:,} person-years or fewer"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return stats.life_expectancy(deaths, people, bands, confidence=confidence), None


def finite(value):
    return None if value is None or not math.isfinite(value) else float(value)


def model(dbt, session):
    dbt.config(materialized="table")
    meta = dbt.config.get("meta")
    confidence = float(meta["confidence_level"])
    repetitions, seed = int(meta["sii_repetitions"]), int(meta["sii_seed"])
    z = NormalDist().inv_cdf(1 - (1 - confidence) / 2)

    # int_life_table has every band of every table: after sorting, each table is a run of
    # len(LE_AGE_STARTS) rows (walked as plain lists: a pandas group per table costs more than its
    # life table).
    tables = frames.to_pandas(dbt.ref("int_life_table")).sort_values([*TABLE_KEYS, "band_start"], kind="stable")
    n_bands = len(stats.LE_AGE_STARTS)
    names = [*TABLE_KEYS, "area_name", "band_start", "deaths", "person_years"]
    columns = {name: tables[name].tolist() for name in names}
    rows = []
    for first in range(0, len(tables), n_bands):
        span = slice(first, first + n_bands)
        bands, deaths, people = (
            columns["band_start"][span],
            columns["deaths"][span],
            columns["person_years"][span],
        )
        if bands != list(stats.LE_AGE_STARTS):
            raise ValueError(f"int_life_table: a table without its {n_bands} bands at row {first}")
        result, reason = life_table(bands, deaths, people, confidence)
        for start_age in START_AGES:
            value = result[start_age] if result else None
            from_age = [band >= start_age for band in bands]
            rows.append(
                {
                    **{key: columns[key][first] for key in TABLE_KEYS},
                    "area_name": columns["area_name"][first],
                    "start_age": start_age,
                    "deaths": int(sum(d for d, keep in zip(deaths, from_age, strict=True) if keep)),
                    "person_years": float(sum(p for p, keep in zip(people, from_age, strict=True) if keep)),
                    "life_expectancy": finite(value.value) if value else None,
                    "life_expectancy_lower": finite(value.lower) if value else None,
                    "life_expectancy_upper": finite(value.upper) if value else None,
                    "not_computed": reason
                    or (None if value and math.isfinite(value.value) else "95% interval wider than 20 years"),
                }
            )

    # SII across the groups of each IMD scale.
    scales = {"imd_decile": 10, "imd_quintile": 5}
    by_scale = {}
    for row in rows:
        if row["geography_level"] in scales and row["area_code"] != "unknown":
            by_scale.setdefault(
                (
                    row["period_start"],
                    row["period_end"],
                    row["geography_level"],
                    row["sex"],
                    row["start_age"],
                ),
                [],
            ).append(row)
    indices = {}
    for key, group in by_scale.items():
        group = sorted(group, key=lambda row: int(row["area_code"]))
        complete = [int(row["area_code"]) for row in group] == list(range(1, scales[key[2]] + 1)) and all(
            row["life_expectancy"] is not None and row["life_expectancy_lower"] is not None for row in group
        )
        if complete:
            indices[key] = stats.sii(
                [row["life_expectancy"] for row in group],
                [row["person_years"] for row in group],
                [(row["life_expectancy_upper"] - row["life_expectancy_lower"]) / (2 * z) for row in group],
                confidence=confidence,
                repetitions=repetitions,
                seed=seed,
            )
    for row in rows:
        key = (row["period_start"], row["period_end"], row["geography_level"], row["sex"], row["start_age"])
        found = indices.get(key)
        for name in ("sii", "sii_lower", "sii_upper"):
            row[name] = found[name] if found else None

    schema = pa.schema(
        [("period_start", pa.date32()), ("period_end", pa.date32()), ("geography_level", pa.string()),
         ("area_code", pa.string()), ("sex", pa.string()), ("area_name", pa.string()), ("start_age", pa.int32()),
         ("deaths", pa.int64()), ("person_years", pa.float64()), ("life_expectancy", pa.float64()),
         ("life_expectancy_lower", pa.float64()), ("life_expectancy_upper", pa.float64()),
         ("not_computed", pa.string()), ("sii", pa.float64()), ("sii_lower", pa.float64()), ("sii_upper", pa.float64())]
    )  # fmt: skip
    return frames.result(pa.Table.from_pylist(rows, schema=schema), session)
