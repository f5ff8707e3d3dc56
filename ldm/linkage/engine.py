"""The linkage engine over tokens: the trace steps, then the probabilistic fallback, in DuckDB.

The work is done once per distinct combination of token values, not per record: a person seen
in a hundred GP events with the same identifiers is one combination. Results are then joined
back to every record, so each input row gets exactly one result row (duplicates included).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import duckdb

from ldm.linkage import deterministic
from ldm.linkage.columns import TOKEN_COLUMNS, columns_of, quoted, token_select
from ldm.linkage.probabilistic import ProbabilisticConfig, score

ALGORITHM_VERSION = "ldm-linkage-1"
UNLINKED = "unlinked"

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LinkageConfig:
    probabilistic: bool = True
    scoring: ProbabilisticConfig = field(default_factory=ProbabilisticConfig)


@dataclass
class LinkageRun:
    """What a run did: the result table's name and seconds and decisions per step (no identifiers)."""

    table: str
    seconds: dict[str, float] = field(default_factory=dict)
    combinations: int = 0
    records: int = 0


def _prepare(con: duckdb.DuckDBPyConnection, spine: str, records: str) -> None:
    """lk_spine and lk_combo (one row per distinct combination of record token values).

    A spine may hold several rows per person (one per local id known for them); they share one
    spine_row, so every step counts persons, not rows.
    """
    nhs_key = "case when nhs_number_valid then nhs_number_token end as nhs_key"
    con.execute(
        f"""create or replace temp table lk_spine as
            select dense_rank() over (order by person_id) as spine_row, *, {nhs_key}
            from (select person_id, {", ".join(token_select(columns_of(con, spine)))} from {spine})"""
    )
    con.execute(
        f"""create or replace temp table lk_combo as
            select row_number() over () as combo_id, *, {nhs_key}
            from (select distinct {", ".join(token_select(columns_of(con, records)))} from {records})"""
    )
    con.execute(
        """create or replace temp table lk_decided (
               combo_id bigint, spine_row bigint, step varchar, weight double, candidates bigint)"""
    )


def _write_result(con: duckdb.DuckDBPyConnection, records: str, record_key: str, out: str) -> None:
    present = columns_of(con, records)
    join = " and ".join(f"c.{name} is not distinct from r.{name}" for name in TOKEN_COLUMNS)
    con.execute(
        f"""create or replace temp table {out} as
            select r.record_key, s.person_id, coalesce(d.step, '{UNLINKED}') as step, d.weight,
                   coalesce(d.candidates, 0) as candidates, '{ALGORITHM_VERSION}' as algorithm_version
            from (select {quoted(record_key)} as record_key, {", ".join(token_select(present))}
                  from {records}) r
            join lk_combo c on {join}
            left join lk_decided d using (combo_id)
            left join (select distinct spine_row, person_id from lk_spine) s on s.spine_row = d.spine_row"""
    )


def link(
    con: duckdb.DuckDBPyConnection,
    spine: str,
    records: str,
    *,
    record_key: str = "record_key",
    out: str = "linkage_result",
    config: LinkageConfig | None = None,
) -> LinkageRun:
    """Link every record in `records` to a person of `spine`, or to no one.

    `spine` and `records` are relations in `con` (tables, views, or `read_parquet(...)`).
    `spine` has `person_id` (one row per person) and token columns; `records` has `record_key`
    and token columns; any token column may be missing or null (see ldm.linkage.columns).
    An NHS number counts as valid only where `nhs_number_valid` is true. The result, table
    `out`, has one row per record: record_key, person_id (null if unlinked), step, weight
    (match weight for probabilistic links, else null), candidates (persons that fitted at the
    deciding step) and algorithm_version.
    """
    config = config or LinkageConfig()
    run = LinkageRun(table=out)
    started = time.perf_counter()
    _prepare(con, spine, records)
    run.seconds["prepare"] = time.perf_counter() - started
    for step in deterministic.DETERMINISTIC_STEPS:
        began = time.perf_counter()
        deterministic.run_step(con, step)
        run.seconds[step.name] = time.perf_counter() - began
    if config.probabilistic:
        began = time.perf_counter()
        score(con, config.scoring)
        run.seconds["probabilistic"] = time.perf_counter() - began
    began = time.perf_counter()
    _write_result(con, records, record_key, out)
    run.seconds["result"] = time.perf_counter() - began
    run.combinations = con.execute("select count(*) from lk_combo").fetchall()[0][0]
    run.records = con.execute(f"select count(*) from {out}").fetchall()[0][0]
    run.seconds["total"] = time.perf_counter() - started
    return run
