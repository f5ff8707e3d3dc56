"""A release's working tables, named once: what each holds while a release is built, checked for k
and written (ldm.release.release), on the store's connection. Person and record ids in them are
the store's until the pseudonymised tables replace them.
"""

from __future__ import annotations

from ldm.sql import WorkingTable

COHORT = WorkingTable("release_cohort", "the cohort's persons: in the store and not opted out")
PERSONS = WorkingTable("release_persons", "every person any released table holds (store ids)")
PERSON_PSEUDONYMS = WorkingTable("release_person_pseudonyms", "store person id -> the project's pseudonym")
PSEUDONYMS_ARROW = WorkingTable("release_pseudonyms_arrow", "pseudonyms made in Python, before their table")


def raw(table: str) -> WorkingTable:
    """A released table's rows for the cohort, with the store's ids and the columns it may release."""
    return WorkingTable(f"release_raw_{table}", f"{table}'s rows for the cohort, store ids beside them")


def pseudonymised(table: str) -> WorkingTable:
    """A released table's rows with the project's person (and record) pseudonyms."""
    return WorkingTable(f"release_{table}", f"{table}'s rows with the project's pseudonyms")


def record_pseudonyms(table: str) -> WorkingTable:
    """A table's (batch_id, row_number) -> the project's record pseudonym."""
    return WorkingTable(
        f"release_record_pseudonyms_{table}", f"{table}'s records -> the project's pseudonyms"
    )
