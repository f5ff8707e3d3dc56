"""The tables Splink reads and the blocked record-identity pairs, for training and scoring alike.

Tokens become 64-bit hashes (`hashed`): Splink only asks whether two values are equal or null.
"""

from __future__ import annotations

import copy

import sqlglot
from splink import Linker

from ldm.dialects import NotExpressible
from ldm.dialects import current as dialect
from ldm.linkage.fellegi_sunter import BLOCKING_KEYS, COMPARED
from ldm.linkage.working import COMBO, DECIDED, PR_SPINE, SPINE
from ldm.linkage.workspace import Workspace

# The token columns: text compared only for equality (the rest are small already).
HASHED = tuple(c for c in COMPARED if c == "nhs_key" or c.endswith("_token"))


# A combination can be scored only if it carries one of these: an NHS number alone was the trace
# steps' to decide.
COMPARABLE = ("date_of_birth_token", "postcode_token", "surname_token", "forename_token")


def hashed(alias: str = "") -> str:
    """The compared columns for Splink, each token replaced by its 64-bit hash.

    Splink only asks whether two values are equal or null, which a 64-bit hash answers as a
    64-character token does (two of a city's million distinct values of a column share a hash with
    odds of about 1 in 30 million), while hashing, joining and copying become several times cheaper.
    """
    # DuckDB hashes a null to a number like any other value: a null must stay null (no evidence).
    hash64 = dialect().hash64
    return ", ".join(
        f"case when {alias}{c} is not null then {hash64([alias + c])} end as {c}"
        if c in HASHED
        else f"{alias}{c}"
        for c in COMPARED
    )


def splink_table(ws: Workspace, name: str, select: str, extra: str = "") -> None:
    """A table for Splink of `select`'s rows (unique_id, `extra` and the compared columns, hashed)."""
    ws.create(name, f"select unique_id{extra}, {hashed()} from ({select})")


def comparable_sql() -> str:
    return "(" + " or ".join(f"{c} is not null" for c in COMPARABLE) + ")"


def identities() -> str:
    """Every distinct spine identity, hashed."""
    return f"(select distinct spine_row, {hashed()} from {SPINE})"


def spine_sql(records: str) -> str:
    """The distinct identities of spine persons (registration, evidence), hashed and numbered, that
    some record of `records` shares a blocking key with: the only ones a blocking rule can pair, so
    that Splink never copies the rest of a city's spine. Found by one semi-join per rule (of row ids,
    where the engine has them: a union of row numbers is cheaper than one of whole rows)."""
    semi = dialect().semi_join()

    def shares(selected: str) -> str:
        return " union ".join(
            f"select {selected} from {SPINE} s {semi} {records} r on {' and '.join(f'r.{c} = s.{c}' for c in key)}"
            for key in BLOCKING_KEYS
        )

    try:
        rowid = dialect().row_id("s")
    except NotExpressible:
        shared = f"({shares('s.*')})"
    else:
        shared = f"{SPINE} where {dialect().row_id()} in ({shares(rowid)})"
    return f"""select {dialect().row_number_unordered()} as unique_id, *
               from (select distinct spine_row, {hashed()} from {shared})"""


def pending_select() -> str:
    """The combinations no trace step decided that carry something to compare."""
    return f"""select 'u' as role, combo_id as unique_id, {", ".join(COMPARED)}
               from {COMBO} {dialect().anti_join()} {DECIDED} using (combo_id) where {comparable_sql()}"""


def in_dialect(settings: dict, dialect_name: str) -> dict:
    """Splink settings (written, saved and identified in DuckDB's SQL: ldm.linkage.fellegi_sunter)
    with their SQL conditions and blocking rules in the dialect `dialect_name`, for another engine.
    The model is the same: only the spelling of its conditions changes (quoted names, mostly)."""
    if dialect_name == "duckdb":
        return settings
    settings = copy.deepcopy(settings)

    def spelt(sql: str) -> str:
        return sqlglot.transpile(sql, read="duckdb", write=dialect_name)[0]

    for comparison in settings["comparisons"]:
        for level in comparison["comparison_levels"]:
            if level["sql_condition"].upper() != "ELSE":
                level["sql_condition"] = spelt(level["sql_condition"])
    for rule in settings["blocking_rules_to_generate_predictions"]:
        rule["blocking_rule"], rule["sql_dialect"] = spelt(rule["blocking_rule"]), dialect_name
    return settings


def predict(ws: Workspace, settings: dict, records: str, threshold: float | None) -> tuple[Linker, str]:
    """Splink's scored blocked pairs of `records` with the spine identities (lk_pr_spine): the name of
    the table (with each pair's comparison vector, gamma_*, if the settings retain the matching
    columns) and the linker that owns it."""
    db_api = ws.splink_api()
    spine = db_api.register(PR_SPINE, dataset_display_name="spine")
    left = db_api.register(records, dataset_display_name="records")
    linker = Linker([left, spine], in_dialect(settings, ws.dialect), log_level=None)
    predictions = linker.inference.predict_between(
        left, spine, threshold_match_weight=threshold, warning_mode="never"
    )
    return linker, predictions.physical_name
