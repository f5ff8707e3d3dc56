"""`link_tables`: link two identifiable tables in memory, through the same tokens as the pipeline.

Both tables are normalised and tokenised here with the pipeline's own rules and the linkage
purpose key, so the result is what the pipeline would decide for the same identifiers.
"""

from __future__ import annotations

import datetime

import duckdb
import pyarrow as pa

from ldm import column_types
from ldm.errors import LdmError
from ldm.identifiers import normalise
from ldm.linkage.engine import LinkageConfig, link
from ldm.linkage.working import TABLES_RECORDS, TABLES_SPINE
from ldm.linkage.workspace import DuckDBWorkspace, Workspace
from ldm.pseudonymise.keys import KEY_BYTES, LINKAGE, MasterKey

IDENTIFIER_COLUMNS = ("nhs_number", "local_id", "date_of_birth", "sex", "postcode", "forename", "surname")
# Issuer written in front of local ids: link_tables takes a local id to be unique across both
# tables already (qualify it, e.g. "RR8:12345", if two organisations issue the same numbers).
LOCAL_ID_ISSUER = "LOCAL"


def linkage_key(key: MasterKey | bytes) -> bytes:
    """The linkage purpose key of a MasterKey, or of 32 raw master key bytes."""
    if isinstance(key, MasterKey):
        return key.purpose_key(LINKAGE)
    if isinstance(key, bytes | bytearray) and len(key) == KEY_BYTES:
        return MasterKey(bytes(key)).purpose_key(LINKAGE)
    raise LdmError(f"key must be a MasterKey or {KEY_BYTES} raw bytes of a master key")


def tokens(table: pa.Table, key: bytes, today: datetime.date | None = None) -> pa.Table:
    """The token columns of a table of identifiers (columns it lacks give no tokens)."""
    n = table.num_rows

    def column(name: str) -> pa.ChunkedArray | pa.Array:
        if name in table.column_names:
            return table[name]
        return pa.nulls(n, pa.string())

    # Each identifier's outputs by its type's recipe (ldm.column_types), as the seam writer makes them.
    out: dict[str, pa.Array | pa.ChunkedArray] = {}
    out |= column_types.nhs_number_tokens(column("nhs_number"), key)
    out |= column_types.local_id_tokens(column("local_id"), LOCAL_ID_ISSUER, key)
    out |= column_types.date_of_birth_tokens(
        normalise.date_of_birth(column("date_of_birth"), latest=today), key
    )
    out |= column_types.sex_values(column("sex"))
    out |= column_types.postcode_tokens(column("postcode"), key)
    for name in ("forename", "surname"):
        out |= column_types.name_tokens(column(name), key, name)
    return pa.table(out)


def _check(table: pa.Table, what: str) -> None:
    if not isinstance(table, pa.Table):
        raise LdmError(f"{what} must be a pyarrow Table")
    if "id" not in table.column_names:
        raise LdmError(f"{what} needs an 'id' column")


def link_tables(
    spine: pa.Table,
    records: pa.Table,
    key: MasterKey | bytes,
    *,
    config: LinkageConfig | None = None,
    today: datetime.date | None = None,
    workspace: Workspace | None = None,
) -> pa.Table:
    """Link each row of `records` to a row of `spine` (one row per person), or to none.

    Both tables have an `id` column and any of nhs_number, local_id, date_of_birth (ISO
    yyyy-mm-dd, yyyymmdd or dd/mm/yyyy text, or dates), sex, postcode, forename, surname;
    missing columns and nulls are allowed. `key` is the master key: a MasterKey, or its 32 raw
    bytes; the linkage purpose key is derived from it, as in the pipeline. Returns one row per
    record, in input order: id, person_id (the spine id, or null), step and weight.

    The tokens are made here, in Python; the linking runs in `workspace` (default: an in-memory
    DuckDB; ldm.spark.workspace.SparkWorkspace runs it on a Spark session).
    """
    _check(spine, "spine")
    _check(records, "records")
    purpose_key = linkage_key(key)
    spine_tokens = tokens(spine, purpose_key, today).append_column("person_id", spine["id"])
    record_tokens = tokens(records, purpose_key, today).append_column(
        "record_key", pa.array(range(records.num_rows), pa.int64())
    )
    con = duckdb.connect() if workspace is None else None
    ws = workspace or DuckDBWorkspace(con)
    try:
        with ws.sql_dialect():
            ws.register(TABLES_SPINE, spine_tokens)
            ws.register(TABLES_RECORDS, record_tokens)
            run = link(ws, TABLES_SPINE, TABLES_RECORDS, config=config)
            result = ws.arrow(
                f"select record_key, person_id, step, weight from {run.table} order by record_key"
            )
    finally:
        if con is not None:
            con.close()
    return pa.table(
        {
            "id": records["id"].take(result["record_key"]),
            "person_id": result["person_id"].cast(spine["id"].type),
            "step": result["step"],
            "weight": result["weight"],
        }
    )
