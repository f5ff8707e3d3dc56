"""Link pseudonymised extracts to the store's persons, in a separate in-memory DuckDB.

The spine (person ids and their tokens) is copied out of the store as Arrow and the engine runs on
its own connection (a `LinkingSession`, one per load), so the engine's working tables never touch
the store file. Its output is the staged extract: the columns the store needs, each row's link and
whether opt-out withholds it, in one Parquet file written in one pass, so that the store inserts
from it without joining anything.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from ldm.dialects import current as dialect
from ldm.linkage import working as lk
from ldm.linkage.columns import TOKEN_COLUMNS, columns_of
from ldm.linkage.deterministic import DETERMINISTIC_STEPS
from ldm.linkage.engine import (
    ALGORITHM_VERSION,
    UNLINKED,
    LinkageConfig,
    decide,
    prepare_spine,
    result_select,
    spine_select,
)
from ldm.linkage.fellegi_sunter import Model
from ldm.linkage.workspace import Workspace
from ldm.load import evidence, records
from ldm.load.working import (
    RECORDS,
    SKIPPED,
    SPINE,
    SPINE_NUMBERS,
    SPINE_STREAM,
    WITHHOLD_PERSONS,
    WITHHOLD_TOKENS,
    WRITTEN_PERSONS,
)
from ldm.sql import literal, quoted

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


@dataclass
class Staged:
    """The staged extract's file, its row count and the links of its rows not withheld, by step."""

    path: Path
    rows: int
    steps: list[StepCount]
    evidence: pa.Table | None = None  # new identities its links taught (ldm.load.evidence)
    model: Model | None = None  # the probabilistic step's model, if it scored (trained: to be saved)


def spine_of(store: duckdb.DuckDBPyConnection, persons: str | None = None) -> pa.RecordBatchReader:
    """Every person's tokens: their latest registration's (one row per local id known for them) and
    every identity of their linkage evidence (ldm.load.evidence); only the persons the select
    `persons` names, if given.

    A stream of record batches, so that the spine (a gigabyte at city scale) is copied straight
    into the linking connection instead of being held in Python as well.
    """
    # The registration rows have no year and month of birth of their own: they get the person's
    # (main.persons, from the same latest registration; evidence rows keep their own), so that the
    # probabilistic step has them wherever there is a date of birth. Without them its near-miss
    # birth dates (a day or a year out) and its blocking on year and month never fire.
    born = {
        name: f"cast(coalesce(s.{name}, p.{name}) as {dialect().type_name('integer')})"
        for name in ("year_of_birth", "month_of_birth")
    }
    return store.sql(
        f"""select {dialect().star_replace("s", born, evidence.SPINE_COLUMNS)},
                   s.nhs_number_token is not null as nhs_number_valid
            from ({evidence.spine_sql(persons)}) s left join main.persons p using (person_id)"""
    ).to_arrow_reader()


class LinkingSession:
    """The linking connection of one load, and the spine prepared in it (lk_spine) from batch to batch.

    Copying the spine out of the store and preparing it takes about 2.7 s a batch at city scale
    (2.3 million rows of 850,000 persons), whatever the batch's size, while most batches of
    activity write to the spine rows of a few persons (45,576 for the A&E batch, 2 for deaths). So
    the spine is prepared whole for the first batch to link; again after a batch that founds
    persons or deletes rows (registrations, an opt-out list: `loaded(..., whole=True)`) or a
    failed one; and again when the batches since wrote to the rows of half the persons or more
    (591,148 for outpatients: then a whole copy costs no more, and leaves no deleted rows for every
    later step to skip). Otherwise only the rows of the persons the batches since wrote to, each
    stamped with its batch's id (`evidence.spine_persons_sql`), are replaced, each keeping its
    spine_row. Either way lk_spine holds the rows `prepare_spine` would make of the store's spine now.
    """

    def __init__(self) -> None:
        self.work = duckdb.connect(config={"memory_limit": LINKING_MEMORY, "preserve_insertion_order": False})
        self.work.execute("set enable_progress_bar = false")
        self._whole = True  # the spine is to be prepared whole before the next batch links
        self._written: list[int] = []  # batches since, whose persons' rows are to be replaced
        self._persons = 0  # persons on the spine (the highest spine_row)
        self.last = ""  # how `spine` last brought it up to date: whole, persons or as kept

    def __enter__(self) -> LinkingSession:
        return self

    def __exit__(self, *_) -> None:
        self.close()

    def close(self) -> None:
        self.work.close()

    def loaded(self, batch_id: int, whole: bool) -> None:
        """A batch committed: `whole` if it founded persons or deleted spine rows."""
        if whole:
            self._whole, self._written = True, []
        elif not self._whole:
            self._written.append(batch_id)

    def renew(self) -> None:
        """Prepare the spine whole before the next batch links (after a failed batch)."""
        self._whole, self._written = True, []

    def spine(self, store: duckdb.DuckDBPyConnection) -> int:
        """Bring lk_spine up to date with `store` (as the current transaction sees it); its rows."""
        self.last = "as kept"
        if self._written and not self._whole:
            # Found once, on the store's connection: the spine's select reads them four times.
            store.execute(
                f"create or replace temp table {WRITTEN_PERSONS} as {evidence.spine_persons_sql(self._written)}"
            )
            written = store.execute(f"select count(*) from {WRITTEN_PERSONS}").fetchall()[0][0]
            if 2 * written >= self._persons:
                self._whole = True
            elif written:
                self._copy(spine_of(store, f"select person_id from {WRITTEN_PERSONS}"))
                self._whole = not self._replace_written()
                self.last = "persons"
            store.execute(f"drop table {WRITTEN_PERSONS}")
        if self._whole:
            self.work.execute(f"drop table if exists {lk.SPINE}")  # not kept while its successor is made
            self._copy(spine_of(store))
            prepare_spine(self.work, SPINE)
            self.work.execute(f"drop table {SPINE}")
            self._persons = self.work.execute(
                f"select coalesce(max(spine_row), 0) from {lk.SPINE}"
            ).fetchall()[0][0]
            self.last = "whole"
        self._whole, self._written = False, []
        return self.work.execute(f"select count(*) from {lk.SPINE}").fetchall()[0][0]

    def _copy(self, spine: pa.RecordBatchReader) -> None:
        self.work.register(SPINE_STREAM, spine)
        self.work.execute(f"create or replace temp table {SPINE} as select * from {SPINE_STREAM}")
        self.work.unregister(SPINE_STREAM)

    def _replace_written(self) -> bool:
        """Replace the lk_spine rows of the persons in `spine` (the written persons' rows) by theirs;
        False, changing nothing, if one of them has no spine_row yet (a new person)."""
        work = self.work
        work.execute(
            f"""create or replace temp table {SPINE_NUMBERS} as
                select distinct person_id, spine_row from {lk.SPINE}
                where person_id in (select person_id from {SPINE})"""
        )
        unnumbered = work.execute(
            f"""select count(*) from (select distinct person_id from {SPINE})
                where person_id not in (select person_id from {SPINE_NUMBERS})"""
        ).fetchall()[0][0]
        if not unnumbered:
            work.execute(f"delete from {lk.SPINE} where person_id in (select person_id from {SPINE_NUMBERS})")
            work.execute(
                f"insert into {lk.SPINE} {spine_select(SPINE, columns_of(work, SPINE), SPINE_NUMBERS)}"
            )
        work.execute(f"drop table {SPINE_NUMBERS}")
        work.execute(f"drop table {SPINE}")
        return not unnumbered

    def clear(self) -> None:
        """Drop every table and view the last batch left (the engine's, Splink's and the registered
        inputs) but lk_spine, freeing their memory."""
        for database, schema, name, kind in self.work.execute(
            """select database_name, schema_name, table_name, 'table' from duckdb_tables()
               union all
               select database_name, schema_name, view_name, 'view' from duckdb_views() where not internal"""
        ).fetchall():
            if name != lk.SPINE:
                self.work.execute(f"drop {kind} if exists {'.'.join(map(quoted, (database, schema, name)))}")


def link_extract(
    session: LinkingSession,
    parquet: Path,
    staged: Path,
    columns: Sequence[str],
    opted_out_tokens: pa.Table,
    opted_out_persons: pa.Table,
    config: LinkageConfig | None = None,
    skipped: pa.Table | None = None,
    learn: bool = True,
) -> Staged:
    """Write `staged` (Parquet): the given `columns` of every row of `parquet` that has a row number
    and is not in `skipped` (row numbers of records the store already holds), with its record_digest,
    person_id, link_step, link_weight, candidates, algorithm_version and `withheld` (its valid NHS
    number, or its person, has opted out). Written to a file, not returned, so that tens of millions
    of links never sit in Python memory. With `learn`, the identities its deterministic links taught
    that the spine did not hold come back as `Staged.evidence` (ldm.load.evidence). Links to the
    session's spine, which the caller has brought up to date (`LinkingSession.spine`)."""
    work = session.work
    exchanges = contextlib.ExitStack()
    try:
        seam = dialect().parquet(parquet)
        digest = records.digest_sql(columns_of(work, seam))
        work.register(
            SKIPPED, skipped if skipped is not None else pa.table({"row_number": pa.array([], pa.int64())})
        )
        work.execute(
            f"""create or replace temp view {RECORDS} as select *, {digest} as record_digest from {seam}
                where row_number not in (select row_number from {SKIPPED})"""
        )
        work.register(WITHHOLD_TOKENS, opted_out_tokens)
        work.register(WITHHOLD_PERSONS, opted_out_persons)
        carry = [name for name in columns if name != "row_number"]
        carry += [name for name in ("nhs_number_valid", "nhs_number_token") if name not in carry]
        learnt = model = None
        if work.execute(f"select count(*) from {lk.SPINE}").fetchall()[0][0] == 0:
            links = f"""select row_number as record_key, {", ".join(map(quoted, carry))},
                               cast(null as bigint) as person_id, {literal(UNLINKED)} as step,
                               cast(null as double) as weight, cast(0 as bigint) as candidates,
                               {literal(ALGORITHM_VERSION)} as algorithm_version
                        from {RECORDS}"""
        elif config is not None and config.workspace is not None:
            withheld = {WITHHOLD_TOKENS: opted_out_tokens, WITHHOLD_PERSONS: opted_out_persons}
            # The files the workspace reads and writes, where its tasks can reach them; they go once
            # the staged file is written from its links.
            folder = exchanges.enter_context(config.workspace.exchange(staged.parent))
            links, model, learnt = _decide_in(config.workspace, work, carry, withheld, config, learn, folder)
        else:
            model = decide(work, None, RECORDS, config).model
            links = result_select(work, RECORDS, "row_number", carry, model=model)
            if learn:
                learnt = work.sql(_learnt_sql()).to_arrow_table()
        kept = "".join(f"{quoted(name)}, " for name in columns if name != "row_number")
        work.execute(
            dialect().write_parquet(
                f"""select record_key as row_number, {kept}person_id, step as link_step, weight as link_weight,
                           candidates, algorithm_version,
                           coalesce(nhs_number_valid and nhs_number_token in
                                        (select nhs_number_token from {WITHHOLD_TOKENS}), false)
                           or coalesce(person_id in (select person_id from {WITHHOLD_PERSONS}), false) as withheld
                    from ({links}) where record_key is not null""",
                staged,
            )
        )
        # The linkage log counts what reaches the store: records withheld by opt-out are not linked
        # there, so they are counted by the batch (rows_withheld), not by a step.
        by_step = work.execute(
            f"""select link_step, count(*), count(*) filter (where not withheld)
                from {dialect().parquet(staged)} group by all"""
        ).fetchall()
    finally:
        try:
            session.clear()
        finally:
            exchanges.close()
    loaded = {step: kept for step, _, kept in by_step}
    return Staged(staged, sum(n for _, n, _ in by_step), step_counts(loaded), learnt, model)


def _decide_in(
    ws: Workspace,
    work: duckdb.DuckDBPyConnection,
    carry: Sequence[str],
    withheld: dict[str, pa.Table],
    config: LinkageConfig,
    learn: bool,
    folder: Path,
) -> tuple[str, Model | None, pa.Table | None]:
    """The links of `link_extract`, decided in another engine's workspace (ldm.spark.workspace) by the
    same steps: the records' tokens and the spine go to it as Parquet files in `folder`, each record's
    link comes back as Parquet, and the identities the links taught as Arrow. Returns the select of
    each record's link with its `carry` columns (as `result_select` gives it), the model and those
    identities."""
    sent_records, sent_spine, back = (folder / name for name in ("to_link.parquet", "spine.parquet", "links"))
    tokens = "".join(f", {quoted(name)}" for name in columns_of(work, RECORDS) if name in TOKEN_COLUMNS)
    work.execute(dialect().write_parquet(f"select row_number{tokens} from {RECORDS}", sent_records))
    spine = ", ".join(["person_id", *TOKEN_COLUMNS])  # lk_spine's rows as a spine, prepared there again
    work.execute(dialect().write_parquet(f"select {spine} from {lk.SPINE}", sent_spine))
    learnt = None
    with ws.sql_dialect():
        ws.register(RECORDS, sent_records)
        ws.register(SPINE, sent_spine)
        for name, rows in withheld.items():  # the opted-out tokens and persons, as the loader gave them
            ws.register(name, rows)
        model = decide(ws, SPINE, RECORDS, config, drop_spine=True).model
        ws.write_parquet(result_select(ws, RECORDS, "row_number", model=model), back)
        if learn:
            learnt = ws.arrow(_learnt_sql())
        for name in (RECORDS, *withheld):
            ws.drop(name)
    kept = "".join(f"r.{quoted(name)}, " for name in carry)
    links = f"""select l.record_key, {kept}l.person_id, l.step, l.weight, l.candidates, l.algorithm_version
                from {RECORDS} r join {dialect().parquet(back / "*.parquet")} l on l.record_key = r.row_number"""
    return links, model, learnt


def _learnt_sql() -> str:
    """The identities the engine's links taught that the spine did not hold (ldm.load.evidence)."""
    return evidence.new_evidence_sql(evidence.candidates_sql(linked()), held())


_ALL = evidence.IDENTITY  # lk_combo and lk_spine carry every token column (ldm.linkage.columns)


def linked() -> str:
    """The engine's decisions as identities with their person (records of opted-out people teach
    nothing), for ldm.load.evidence."""
    return f"""(select s.person_id, d.step as link_step, {evidence.identity_select(_ALL, "c.nhs_key")}
              from {lk.DECIDED} d join {lk.COMBO} c using (combo_id)
              join (select distinct spine_row, person_id from {lk.SPINE}) s using (spine_row)
              where not coalesce(c.nhs_key in (select nhs_number_token from {WITHHOLD_TOKENS}), false)
                and s.person_id not in (select person_id from {WITHHOLD_PERSONS}))"""


def held() -> str:
    """The spine's identities, for ldm.load.evidence."""
    return f"(select person_id, {evidence.identity_select(_ALL, 'nhs_key')} from {lk.SPINE})"


def step_counts(by_step: dict[str, int]) -> list[StepCount]:
    """Records in, linked and ambiguous at each step, in the order the steps run."""
    remaining = sum(by_step.values())
    counts = []
    for name in [step.name for step in DETERMINISTIC_STEPS] + [PROBABILISTIC]:
        linked, ambiguous = by_step.get(name, 0), by_step.get(f"ambiguous:{name}", 0)
        counts.append(StepCount(name, remaining, linked, ambiguous))
        remaining -= linked + ambiguous
    return counts
