"""Person and record pseudonyms under one project's key.

    person pseudonym = HMAC-SHA256(release:<project> key, "person_id" + U+001F + store person id)
    record pseudonym = HMAC-SHA256(release:<project> key, "record:<table>" + U+001F + "<batch_id>:<row_number>")

as 64 hex characters (ldm.identifiers.tokens, hashing each distinct value once). The key is derived
from the master key for the project alone (ldm.pseudonymise.keys), so:
- the same store id gives the same pseudonym in every release to the project (it can follow its
  cohort from one release to the next);
- another project's pseudonym of the same person or record is another, unrelated value, and
  neither can be computed from the store's ids without the master key, so extracts cannot be
  joined with each other or with the store;
- the store's record key (batch, row) never leaves; a spell's diagnoses and procedures take the
  spell's pseudonym (field `record:apc_spells`), so a project can join them to the spell.
A record revised by its provider is a new row of the store, so it is a new record in the next
release (as a new pseudonym per release is for NHS England's extracts); its person stays the same.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from ldm.dialects import current as dialect
from ldm.identifiers.tokens import tokenise
from ldm.release.working import PSEUDONYMS_ARROW
from ldm.sql import quoted

PERSON_FIELD = "person_id"


def record_field(table: str) -> str:
    return f"record:{table}"


def pseudonymise(
    con: duckdb.DuckDBPyConnection, key: bytes, field: str, source: str, columns: tuple[str, ...], target: str
) -> int:
    """Create temp table `target` of the distinct `columns` of `source` with their `pseudonym`; its rows.

    The value hashed is the columns' values as text joined by ':', e.g. "12:3045" for a record.
    """
    names = ", ".join(quoted(c) for c in columns)
    text = " || ':' || ".join(dialect().as_text(quoted(c)) for c in columns)
    distinct = con.sql(
        f"select distinct {names}, {text} as pseudonym_input from {source} where {text} is not null"
    ).to_arrow_table()
    tokens = tokenise(pc.cast(distinct["pseudonym_input"], pa.string()), field, key)
    table = distinct.drop_columns(["pseudonym_input"]).append_column("pseudonym", tokens)
    con.register(PSEUDONYMS_ARROW, table)
    try:
        con.execute(f"create or replace temp table {quoted(target)} as select * from {PSEUDONYMS_ARROW}")
    finally:
        con.unregister(PSEUDONYMS_ARROW)
    return table.num_rows
