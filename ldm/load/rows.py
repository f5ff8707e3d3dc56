"""Records into the feed tables: staging a linked extract, inserting its rows and repeated fields.

The staged extract (ldm.load.linking) is read where it lies, as a view, and inserted with no date
that gives back a date of birth or of death (ldm.minimise); repeated fields (a spell's
diagnoses) go one row per value into their own tables. Records the store already holds are
recognised first (ldm.load.records), and earlier versions of revised ones removed.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from ldm import minimise
from ldm.dialects import current as dialect
from ldm.errors import LdmError
from ldm.feeds.spec import DEFAULT_PROVIDER
from ldm.linkage.columns import columns_of
from ldm.load import records
from ldm.load.batches import BatchLoad
from ldm.load.working import INCOMING, MATCHED, RECOGNISED, SUPERSEDED, SUPERSEDED_PERSONS
from ldm.pseudonymise.extract import Manifest
from ldm.sql import literal
from models.feeds import FEED_TABLES, REPEATED_FIELDS, repeated_column

ANALYST_TABLES = (
    *FEED_TABLES.values(),
    *(field.table for fields in REPEATED_FIELDS.values() for field in fields.values()),
)


def child_tables(feed: str) -> tuple[str, ...]:
    """The tables holding a feed's repeated fields, keyed by its records' (batch_id, row_number)."""
    return tuple(field.table for field in REPEATED_FIELDS.get(feed, {}).values())


def stage(con, staged: Path, materialise: bool) -> None:
    """`incoming`: the staged extract (its rows with their link, and whether opt-out withholds them).

    A view over the staged Parquet file, except where rows are changed before insertion (new persons
    in registrations), which needs a table; so a 20-million-row extract is never copied in memory.
    """
    kind = "table" if materialise else "view"
    con.execute(f"create or replace temp {kind} {INCOMING} as select * from {dialect().parquet(staged)}")


def insert_rows(con, table: str, batch_id: int) -> int:
    """Insert the rows not withheld into the feed's table and record_links; return how many."""
    target = columns_of(con, f"main.{table}")
    available = set(columns_of(con, INCOMING)) | {"batch_id"}
    names = [name for name in target if name in available]
    inserted = con.execute(
        f"insert into main.{table} ({', '.join(names)}) {insert_select(table, names)}", [batch_id]
    ).fetchall()[0][0]
    con.execute(
        f"""insert into linkage.record_links (batch_id, row_number, person_id, step, weight, candidates,
               algorithm_version)
           select ?, row_number, person_id, link_step, link_weight, candidates, algorithm_version
           from {INCOMING} where not withheld""",
        [batch_id],
    )
    return inserted


def insert_select(table: str, names: list[str]) -> str:
    """The rows of `incoming` not withheld, as `names` of `main.<table>`, with no date that gives back
    a date of birth or of death (`ldm.minimise`): dates in the month of birth, the row's own or its
    person's (as `main.persons` holds it when the batch loads), move back to its first day; dates of
    death and registration ends are kept as months."""
    births = minimise.birth_pairs(table, "i", ("p.year_of_birth", "p.month_of_birth"))
    moved = minimise.minimised(table, "i", births, names)
    select = ", ".join(
        "cast(? as bigint) as batch_id" if name == "batch_id" else f"{moved.get(name, f'i.{name}')} as {name}"
        for name in names
    )
    return f"""select {select} from {INCOMING} i left join main.persons p on p.person_id = i.person_id
               where not i.withheld"""


def unpivot_repeated(con, feed: str, repeated: dict[str, int], batch_id: int) -> None:
    """One row per value of each repeated field, at the position it was sent in (one scan per field).

    Every position the seam file carries is written: a spell with 20 diagnoses keeps all 20.
    """
    present = set(columns_of(con, INCOMING))
    for name, positions in repeated.items():
        field = REPEATED_FIELDS[feed][name]
        columns = [repeated_column(name, position) for position in range(positions)]
        missing = [column for column in columns if column not in present]
        if missing:
            raise LdmError(f"the seam file has no column(s) {', '.join(missing)} its manifest promises")
        con.execute(
            f"""insert into main.{field.table} (batch_id, row_number, position, {field.column})
                select ?, row_number, position, value
                from (select row_number, {dialect().unpivot(columns)}
                      from {INCOMING} where not withheld)
                where value is not null""",
            [batch_id],
        )


def staged_columns(con, parquet: Path, feed: str, repeated: dict[str, int]) -> list[str]:
    """The extract's columns the store reads: its table's, and those the loader learns from.

    Registrations keep every column (they refresh the spine's tokens); activity feeds keep their
    table's columns, local ids and every position of their repeated fields, not the tokens that
    only linkage needs.
    """
    present = columns_of(con, dialect().parquet(parquet))
    if feed == "gp_registrations":
        return [*present, "record_digest"]
    wanted = {*columns_of(con, f"main.{FEED_TABLES[feed]}"), "row_number", "local_id_token"}
    wanted |= {repeated_column(name, i) for name, positions in repeated.items() for i in range(positions)}
    dropped = [name for name in present if name not in wanted and not name.endswith("_token")]
    if dropped:  # a seam file from another version or spec: its values would be lost without a word
        raise LdmError(
            f"{parquet}: column(s) {', '.join(dropped)} have no place in the store's {FEED_TABLES[feed]} table; "
            "nothing was loaded (was the extract pseudonymised by another version of ldm? pseudonymise it again)"
        )
    return [name for name in present if name in wanted] + ["record_digest"]


def recognise_records(con, manifest: Manifest, parquet: Path, load: BatchLoad) -> pa.Table:
    """Find the batch's duplicates and the records the store already holds; remove the earlier
    versions of revised ones.

    Returns the row numbers not to load: duplicates (a later row of the file is the same record) and
    re-sent rows (same record, same content as the store's).
    """
    table = FEED_TABLES[manifest.feed]
    seam = dialect().parquet(parquet)
    con.execute(
        f"create or replace temp table {RECOGNISED} as "
        + records.in_file_sql(seam, columns_of(con, seam), manifest.record_key)
    )
    # A provider's record key identifies its own records only: two providers of one feed may number
    # theirs alike, and one's record must never revise (delete) the other's.
    provider = literal(manifest.provider or DEFAULT_PROVIDER)
    own = f"""(select * from main.{table} where batch_id in (select batch_id from governance.batches
               where coalesce(provider, {literal(DEFAULT_PROVIDER)}) = {provider}))"""
    con.execute(
        f"create or replace temp table {MATCHED} as "
        + records.matches_sql(RECOGNISED, own, manifest.record_key)
    )
    con.execute(
        f"""create or replace temp table {SUPERSEDED} as
           select distinct e.batch_id, e.row_number
           from (select {dialect().explode("earlier")} as e from {MATCHED} where not same)"""
    )
    replaced = dialect().pair_in(("batch_id", "row_number"), SUPERSEDED)
    con.execute(
        f"""create or replace temp table {SUPERSEDED_PERSONS} as
            select distinct person_id from main.{table}
            where {replaced} and person_id is not null"""
    )
    load.rows_resent, load.rows_revised = con.execute(
        f"select count(*) filter (where same), count(*) filter (where not same) from {MATCHED}"
    ).fetchall()[0]
    load.rows_duplicate = con.execute(f"select count(*) from {RECOGNISED} where duplicate").fetchall()[0][0]
    load.revised_batches = [
        row[0] for row in con.execute(f"select distinct batch_id from {SUPERSEDED}").fetchall()
    ]
    if load.rows_revised:
        children = child_tables(manifest.feed)
        for name in (*[f"main.{t}" for t in (*children, table)], "linkage.record_links"):
            con.execute(f"delete from {name} where {replaced}")
    skipped = con.sql(
        f"select row_number from {RECOGNISED} where duplicate union all select row_number from {MATCHED} where same"
    ).to_arrow_table()
    con.execute(f"drop table {RECOGNISED}")
    return skipped


def withdraw(con, batch_id: int) -> None:
    """Remove an earlier load of a batch before it is replaced (its governance rows stay, marked)."""
    for table in ANALYST_TABLES:
        con.execute(f"delete from main.{table} where batch_id = ?", [batch_id])
    con.execute("delete from linkage.record_links where batch_id = ?", [batch_id])
    con.execute("update governance.batches set status = 'superseded' where batch_id = ?", [batch_id])
