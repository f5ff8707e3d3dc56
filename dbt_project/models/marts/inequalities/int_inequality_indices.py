"""Slope and relative indices of inequality (SII, RII) of every headline indicator.

A dbt Python model (run by dbt-duckdb, or on Spark by ldm.spark.python_models; ldm.marts.frames
reads and returns its frames on either): it reads int_inequality_quantiles and, for each period,
indicator, value type and IMD scale (quintiles or deciles), calls ldm.stats.sii, the same code
analysts call from Python (there is no second copy of the method). Quantiles are passed from 1 (most deprived)
upwards, with their denominators as populations and the standard errors derived from their
intervals; the simulated limits use a fixed seed (sii_seed) so that every build gives the same
numbers. An index is NULL when any quantile is missing or has no value (e.g. a DSR withheld below
10 events), as phe_sii does not compute it from incomplete quantiles.

Each call simulates sii_repetitions draws (about 5 ms of numpy each, some 50 calls per period, near the
end of the build when little else runs): the calls are independent (each seeds its own generator),
so they run on a thread pool of one thread per core; numpy does most of the work without holding
the GIL, and the results are those of calling them one after another.
"""

import os
from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa

from ldm import stats
from ldm.marts import frames

KEYS = ["period_type", "period_end", "indicator_domain", "indicator", "value_type", "imd_scale"]
INDICES = ["sii", "sii_lower", "sii_upper", "rii", "rii_lower", "rii_upper"]


def indices(group, quantile_count, confidence, repetitions, seed):
    """ldm.stats.sii on one indicator's quantile rows (sorted by imd_group), or None."""
    complete = (
        list(group["imd_group"]) == list(range(1, quantile_count + 1))
        and group[["rate", "standard_error", "denominator"]].notna().all().all()
        and (group["denominator"] > 0).all()
    )
    if not complete:
        return None
    return stats.sii(
        group["rate"].tolist(),
        group["denominator"].tolist(),
        group["standard_error"].tolist(),
        confidence=confidence,
        repetitions=repetitions,
        seed=seed,
    )


def model(dbt, session):
    dbt.config(materialized="table")
    meta = dbt.config.get("meta")
    confidence = float(meta["confidence_level"])
    repetitions = int(meta["sii_repetitions"])
    seed = int(meta["sii_seed"])

    quantiles = frames.to_pandas(dbt.ref("int_inequality_quantiles"))
    groups = [
        (key, group, int(group["quantile_count"].iloc[0]))
        for key, group in quantiles.sort_values([*KEYS, "imd_group"]).groupby(KEYS, sort=True)
    ]
    with ThreadPoolExecutor(max_workers=max(1, len(os.sched_getaffinity(0)))) as pool:
        results = list(
            pool.map(lambda item: indices(item[1], item[2], confidence, repetitions, seed), groups)
        )

    rows = {name: [] for name in [*KEYS, "quantile_count", *INDICES, "sii_repetitions", "sii_seed"]}
    for (key, _, quantile_count), result in zip(groups, results, strict=True):
        for name, value in zip(KEYS, key, strict=True):
            rows[name].append(value)
        rows["quantile_count"].append(quantile_count)
        for name in INDICES:
            rows[name].append(None if result is None else result[name])
        rows["sii_repetitions"].append(repetitions)
        rows["sii_seed"].append(seed)

    schema = pa.schema(
        [(name, pa.date32() if name == "period_end" else pa.string()) for name in KEYS]
        + [("quantile_count", pa.int32())]
        + [(name, pa.float64()) for name in INDICES]
        + [("sii_repetitions", pa.int32()), ("sii_seed", pa.int64())]
    )
    return frames.result(pa.table(rows, schema=schema), session)
