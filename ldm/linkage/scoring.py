"""Score the store `ldm run` built against the ground truth of the sample it was built from.

This is the linkage quality that counts: the links analysts get, after batches, opt-outs,
duplicates and every month's persons, record by record. A store person's true person is the
most common true person of its registrations; a record's link is true when its person's true
person is the record's own. Registrations found the persons, so they are not scored as links:
their figures are the split persons (one true person, 2+ store persons) and the merged ones (a
store person holding registrations of 2+ true persons). Records withheld by an opt-out are not
in the store, so they are not scored.
"""

from __future__ import annotations

import datetime
from pathlib import Path

import duckdb

from ldm.dialects import current as dialect
from ldm.errors import LdmError
from ldm.linkage import quality
from ldm.linkage.working import STORE_PERSON_TRUE, STORE_RECORDS, TRUE_RECORDS
from ldm.sql import literal, quoted
from ldm.store import connect
from models.feeds import FEED_TABLES


def score_store(store: Path, truth: Path, as_of: datetime.date = quality.AGE_AS_OF) -> quality.QualityReport:
    """The quality figures of `store` against `truth` (a sample's ground_truth folder)."""
    quality.truth_files(truth)
    con = connect(store, read_only=True)
    try:
        return score_connection(con, truth, as_of, shown=store)
    finally:
        con.close()


def score_connection(
    con: duckdb.DuckDBPyConnection, truth: Path, as_of: datetime.date = quality.AGE_AS_OF, shown: object = ""
) -> quality.QualityReport:
    """The same on an open store (`shown` names it in errors)."""
    _check_tables(con, shown)
    quality.load_truth(con, truth)
    union = " union all ".join(
        f"""select {literal(feed)} as feed, record_id, person_id, link_step as step,
                   coalesce(nhs_number_valid, false) as nhs_valid
            from main.{quoted(table)}"""
        for feed, table in FEED_TABLES.items()
    )
    con.execute(f"create or replace temp table {STORE_RECORDS} as {union}")
    unknown = con.execute(
        f"""select count(*) from {STORE_RECORDS} r
           {dialect().anti_join()} {TRUE_RECORDS} t on t.feed = r.feed and t.record_id = r.record_id"""
    ).fetchall()[0][0]
    if unknown:
        raise LdmError(
            f"{unknown:,} record(s) of {shown or 'the store'} are not in {truth}: "
            "give the ground truth of the sample the store was built from"
        )
    # Ties between true persons go to the smallest person_key, so a figure does not vary run to run.
    registrations = f"""(
                select r.person_id, t.person_key, count(*) as registrations,
                       count(*) over (partition by r.person_id) as true_persons
                from {STORE_RECORDS} r
                join {TRUE_RECORDS} t on t.feed = r.feed and t.record_id = r.record_id
                where r.feed = {literal(quality.SPINE_FEED)} and r.person_id is not null
                group by r.person_id, t.person_key)"""
    columns = ("person_id", "person_key", "true_persons")
    most = dialect().first_per_group(
        ", ".join(columns), registrations, "person_id", "registrations desc, person_key", columns
    )
    con.execute(f"create or replace temp table {STORE_PERSON_TRUE} as {most}")
    records = f"(select * from {STORE_RECORDS} where feed <> {literal(quality.SPINE_FEED)})"
    report = quality.evaluate(con, quality.score(con, records, STORE_PERSON_TRUE, truth, as_of))
    persons = con.execute(
        f"""select count(*) as store_persons, count(distinct person_key) as true_persons,
                  (select count(*) from (select person_key from {STORE_PERSON_TRUE}
                                         group by person_key having count(*) > 1)) as split,
                  count(*) filter (where true_persons > 1) as merged
           from {STORE_PERSON_TRUE}"""
    )
    names = [d[0] for d in persons.description]
    report.persons = dict(zip(names, persons.fetchall()[0], strict=True))
    return report


def _check_tables(con: duckdb.DuckDBPyConnection, shown: object) -> None:
    present = {
        name
        for (name,) in con.execute(
            "select table_name from duckdb_tables() where database_name = current_database() "
            "and schema_name = 'main'"
        ).fetchall()
    }
    missing = [table for table in FEED_TABLES.values() if table not in present]
    if missing:
        raise LdmError(
            f"{shown or 'the store'} is not a store built by `ldm run`: it has no table main.{missing[0]}"
        )
