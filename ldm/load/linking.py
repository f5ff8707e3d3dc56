"""Link one pseudonymised extract to the store's persons, in a separate in-memory DuckDB.

The spine (person ids and their tokens) is copied out of the store as Arrow and the engine runs on
its own connection, so the engine's working tables never touch the store file; only the result
(row number, person id, step, weight) comes back to be written inside the batch's transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from ldm.linkage.deterministic import DETERMINISTIC_STEPS
from ldm.linkage.engine import ALGORITHM_VERSION, UNLINKED, LinkageConfig, link

PROBABILISTIC = "probabilistic"
LINKING_MEMORY = "5GB"  # DuckDB spills beyond this, keeping the whole load under 8 GB at city scale


@dataclass
class StepCount:
    step: str
    records_in: int
    linked: int
    ambiguous: int

    @property
    def unlinked(self) -> int:
        return self.records_in - self.linked - self.ambiguous


def spine_of(store: duckdb.DuckDBPyConnection) -> pa.Table:
    """Every person's tokens, one row per (person, local id) so that local ids can link too."""
    return store.sql(
        """select k.*, k.nhs_number_token is not null as nhs_number_valid, l.local_id_token
           from linkage.person_keys k left join linkage.person_local_ids l using (person_id)"""
    ).to_arrow_table()


def link_extract(spine: pa.Table, parquet: Path, result: Path, config: LinkageConfig | None = None) -> Path:
    """Write `result` (Parquet): record_key (= row_number), person_id, step, weight, candidates and
    algorithm_version for every row of `parquet`. Written to a file, not returned, so that tens of
    millions of links never sit in Python memory."""
    work = duckdb.connect(config={"memory_limit": LINKING_MEMORY, "preserve_insertion_order": False})
    try:
        work.execute("set enable_progress_bar = false")
        work.execute(
            f"create view records as select row_number as record_key, * from read_parquet('{parquet}')"
        )
        if spine.num_rows == 0:
            work.execute(
                f"""create temp view result as
                    select record_key, cast(null as bigint) as person_id, '{UNLINKED}' as step,
                           cast(null as double) as weight, 0::bigint as candidates,
                           '{ALGORITHM_VERSION}' as algorithm_version
                    from records"""
            )
        else:
            work.register("spine_arrow", spine)
            work.execute(
                "create view spine as select * exclude (first_batch_id, last_batch_id) from spine_arrow"
            )
            link(work, "spine", "records", out="result", config=config)
        work.execute(f"copy result to '{result}' (format parquet)")
    finally:
        work.close()
    return result


def step_counts(result: Path) -> list[StepCount]:
    """Records in, linked and ambiguous at each step, in the order the steps run."""
    con = duckdb.connect()
    by_step = dict(con.execute(f"select step, count(*) from '{result}' group by step").fetchall())
    remaining = con.execute(f"select count(*) from '{result}'").fetchall()[0][0]
    counts = []
    for name in [step.name for step in DETERMINISTIC_STEPS] + [PROBABILISTIC]:
        linked, ambiguous = by_step.get(name, 0), by_step.get(f"ambiguous:{name}", 0)
        counts.append(StepCount(name, remaining, linked, ambiguous))
        remaining -= linked + ambiguous
    return counts
