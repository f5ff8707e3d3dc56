"""The national data opt-out: the list's tokens, and the removal of its people's rows.

The list is a full snapshot: tokens new to it are added and their people's rows removed from every
table (their spine tokens stay, so their later records are recognised and withheld); lapsed
tokens are dropped.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from ldm.dialects import current as dialect
from ldm.linkage.columns import columns_of
from ldm.load import evidence, records
from ldm.load.batches import BatchLoad
from ldm.load.rows import child_tables
from ldm.load.working import LEAVING, LISTED
from models.feeds import FEED_TABLES

OPTED_OUT_PERSONS = """select k.person_id from linkage.person_keys k
                        join linkage.opt_outs o on o.nhs_number_token = k.nhs_number_token"""


def remove_persons(con, persons_sql: str) -> tuple[int, int]:
    """Delete every analyst row of the given persons; return (records, persons) removed."""
    con.execute(f"create or replace temp table {LEAVING} as {persons_sql}")
    records = 0
    for feed, table in FEED_TABLES.items():
        for child in child_tables(feed):
            theirs = f"(select * from main.{table} where person_id in (select person_id from {LEAVING}))"
            con.execute(
                f"delete from main.{child} where {dialect().pair_in(('batch_id', 'row_number'), theirs)}"
            )
        records += con.execute(
            f"delete from main.{table} where person_id in (select person_id from {LEAVING})"
        ).fetchone()[0]
    con.execute(f"delete from linkage.record_links where person_id in (select person_id from {LEAVING})")
    con.execute(evidence.remove_sql(LEAVING))
    persons = con.execute(
        f"delete from main.persons where person_id in (select person_id from {LEAVING})"
    ).fetchone()[0]
    return records, persons


def apply_opt_out_list(con, batch_id: int, parquet: Path, load: BatchLoad) -> None:
    """The list is a full snapshot: new tokens are added and their people removed; lapsed ones dropped."""
    seam = dialect().parquet(parquet)
    con.execute(
        f"""create or replace temp table {LISTED} as
            select distinct nhs_number_token from {seam}
            where nhs_number_valid and nhs_number_token is not null"""
    )
    con.execute(
        f"delete from linkage.opt_outs where nhs_number_token not in (select nhs_number_token from {LISTED})"
    )
    con.execute(
        f"""insert into linkage.opt_outs (nhs_number_token, first_batch_id)
           select nhs_number_token, ? from {LISTED}
           where nhs_number_token not in (select nhs_number_token from linkage.opt_outs)""",
        [batch_id],
    )
    # Its entries, each NHS number once (one failing Modulus 11 matches nobody: nhs_numbers_invalid).
    load.rows_duplicate, load.rows_loaded = con.execute(
        "select count(*) filter (where duplicate), count(*) filter (where not duplicate) from ("
        + records.in_file_sql(seam, columns_of(con, seam), ())
        + ")"
    ).fetchall()[0]
    load.withheld_by_opt_out, load.persons_removed = remove_persons(con, OPTED_OUT_PERSONS)


def opted_out(con) -> tuple[pa.Table, pa.Table]:
    """Opted-out NHS number tokens and the persons they belong to, for linkage to mark withheld rows."""
    tokens = con.sql("select nhs_number_token from linkage.opt_outs").to_arrow_table()
    return tokens, con.sql(OPTED_OUT_PERSONS).to_arrow_table()
