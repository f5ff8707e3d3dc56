"""Where each feed's records go in the store: one definition for the loader, the spec check and the tests.

A feed spec (ldm/feeds/specs) maps a provider's columns onto a feed's canonical columns; this says
which table holds them, and which table holds each repeated field (a spell's diagnoses, one row
per code with its position). A spec column with no place here is refused by `ldm specs check`
rather than dropped by the loader.
"""

from __future__ import annotations

from dataclasses import dataclass

# The feeds ldm loads, in load order: opt-outs first, so that opted-out people's records are
# withheld before they reach the store; registrations next, as they found the persons.
FEEDS = (
    "opt_out",
    "gp_registrations",
    "gp_events",
    "apc_spells",
    "op_appointments",
    "ae_attendances",
    "community_contacts",
    "deaths",
)
FEED_TABLES = {
    "gp_registrations": "registrations",
    "gp_events": "gp_events",
    "apc_spells": "apc_spells",
    "op_appointments": "op_appointments",
    "ae_attendances": "ae_attendances",
    "community_contacts": "community_contacts",
    "deaths": "deaths",
}


@dataclass(frozen=True)
class RepeatedField:
    """A field a record carries any number of times, stored one row per value with its position."""

    table: str  # child table, keyed by the record's (batch_id, row_number) and the position
    column: str  # the child table's value column
    code_system: str  # the only code system the child table holds


REPEATED_FIELDS: dict[str, dict[str, RepeatedField]] = {
    "apc_spells": {
        "diagnosis": RepeatedField("spell_diagnoses", "icd10_code", "icd10"),
        "procedure": RepeatedField("spell_procedures", "opcs4_code", "opcs4"),
    },
    # Position 0 is the underlying cause of death, then the contributing causes in the order sent.
    "deaths": {"cause": RepeatedField("death_causes", "icd10_code", "icd10")},
}


def repeated_column(field: str, position: int) -> str:
    """The seam column of one position of a repeated field (position 0 is the primary)."""
    return f"{field}_{position}"


def stored_columns(feed: str) -> frozenset[str]:
    """The columns of the feed's store table (empty for a feed with no table, the opt-out list)."""
    from models import metadata  # the package imports every table; this module is imported by none of them

    table = FEED_TABLES.get(feed)
    if table is None:
        return frozenset()
    return frozenset(column.name for column in metadata.tables[table].columns)  # analyst tables: no schema
