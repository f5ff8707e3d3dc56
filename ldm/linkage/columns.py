"""The token columns linkage reads, as the pseudonymised extracts name them.

A spine or a records table may lack any of these columns (a feed without names has no name
tokens): the engine reads a missing column as null, so a missing identifier is simply never
evidence, for or against.
"""

from __future__ import annotations

from collections.abc import Collection

import duckdb

from ldm.dialects import current as dialect
from ldm.sql import quoted

# Column name -> DuckDB type of the token columns written by ldm.pseudonymise.extract.
TOKEN_COLUMNS: dict[str, str] = {
    "nhs_number_token": "varchar",
    "nhs_number_valid": "boolean",
    "local_id_token": "varchar",
    "date_of_birth_token": "varchar",
    "year_of_birth": "integer",
    "month_of_birth": "integer",
    "sex": "varchar",
    "postcode_token": "varchar",
    "postcode_district_token": "varchar",
    "forename_token": "varchar",
    "forename_phonetic_token": "varchar",
    "forename_initial_token": "varchar",
    "surname_token": "varchar",
    "surname_phonetic_token": "varchar",
    "surname_initial_token": "varchar",
}


# A record's NHS number token when the number passed Modulus 11: invalid numbers never link.
VALID_NHS_TOKEN = "case when nhs_number_valid then nhs_number_token end"


def columns_of(con: duckdb.DuckDBPyConnection, relation: str) -> list[str]:
    """Column names of a table, view or table function in `con`, in their order."""
    return [row[0] for row in con.execute(dialect().describe(relation)).fetchall()]


def token_select(present: Collection[str]) -> list[str]:
    """Select expressions for every token column, typed null where the input lacks it."""
    expressions = []
    for name, duckdb_type in TOKEN_COLUMNS.items():
        sql_type = dialect().type_name(duckdb_type)
        if name in present:
            expressions.append(f"cast({quoted(name)} as {sql_type}) as {name}")
        else:
            expressions.append(f"cast(null as {sql_type}) as {name}")
    return expressions
