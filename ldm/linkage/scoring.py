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

from ldm.errors import LdmError
from ldm.linkage import quality
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
    con.execute(f"create or replace temp table qa_store_records as {union}")
    unknown = con.execute(
        """select count(*) from qa_store_records r
           anti join qa_truth t on t.feed = r.feed and t.record_id = r.record_id"""
    ).fetchall()[0][0]
    if unknown:
        raise LdmError(
            f"{unknown:,} record(s) of {shown or 'the store'} are not in {truth}: "
            "give the ground truth of the sample the store was built from"
        )
    # Ties between true persons go to the smallest person_key, so a figure does not vary run to run.
    con.execute(
        f"""create or replace temp table qa_person_truth as
            select person_id, person_key, true_persons from (
                select r.person_id, t.person_key, count(*) as registrations,
                       count(*) over (partition by r.person_id) as true_persons
                from qa_store_records r
                join qa_truth t on t.feed = r.feed and t.record_id = r.record_id
                where r.feed = {literal(quality.SPINE_FEED)} and r.person_id is not null
                group by r.person_id, t.person_key)
            qualify row_number() over (
                partition by person_id order by registrations desc, person_key) = 1"""
    )
    records = f"(select * from qa_store_records where feed <> {literal(quality.SPINE_FEED)})"
    report = quality.evaluate(con, quality.score(con, records, "qa_person_truth", truth, as_of))
    persons = con.execute(
        """select count(*) as store_persons, count(distinct person_key) as true_persons,
                  (select count(*) from (select person_key from qa_person_truth
                                         group by person_key having count(*) > 1)) as split,
                  count(*) filter (where true_persons > 1) as merged
           from qa_person_truth"""
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
