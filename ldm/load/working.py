"""The load stage's working tables, named once: what each holds while a batch is loaded.

Those on the store connection are temporary tables of the batch's transaction; those on the
linking connection (ldm.load.linking) live in its own in-memory database.
"""

from __future__ import annotations

from ldm.sql import WorkingTable

# On the store connection.
INCOMING = WorkingTable(
    "incoming", "the staged extract: its rows with their link and whether opt-out withholds them"
)
RECOGNISED = WorkingTable(
    "in_file", "every seam row: row_number, record_digest, record key, duplicate (a later row is it)"
)
MATCHED = WorkingTable(
    "matched", "kept rows the store already holds: row_number, same (re-sent), earlier versions"
)
SUPERSEDED = WorkingTable("superseded", "(batch_id, row_number) of stored rows that revisions replace")
SUPERSEDED_PERSONS = WorkingTable("superseded_persons", "persons of the rows that revisions replace")
NEW_IDS = WorkingTable("new_ids", "founder (valid NHS number or row) -> person_id of each new person")
LATEST = WorkingTable("latest", "each person's tokens from their latest registration row of the batch")
REPLACED_KEYS = WorkingTable("replaced_keys", "the spine tokens of the batch's persons before the batch")
NEW_EVIDENCE = WorkingTable("new_evidence", "identities a registration batch teaches, with `conflict`")
BATCH_EVIDENCE = WorkingTable("batch_evidence", "identities an activity batch's links taught (from linking)")
LEAVING = WorkingTable("leaving", "persons whose rows an opt-out removes")
LISTED = WorkingTable("listed", "the opt-out list's valid NHS number tokens, each once")
WRITTEN_PERSONS = WorkingTable(
    "written_persons", "persons whose spine rows the batches since the linking session's last copy wrote"
)

# On the linking connection.
RECORDS = WorkingTable("records", "the seam rows to link, with their record_digest (not skipped ones)")
SKIPPED = WorkingTable("skipped", "row numbers not to link: duplicates and rows the store already holds")
SPINE = WorkingTable(
    "spine", "the store's spine (or its written persons' rows), copied in; dropped once lk_spine holds it"
)
SPINE_NUMBERS = WorkingTable("spine_numbers", "the spine_row of each person whose lk_spine rows are replaced")
SPINE_STREAM = WorkingTable("spine_stream", "the spine as it streams from the store")
WITHHOLD_TOKENS = WorkingTable("opted_out_tokens", "opted-out NHS number tokens")
WITHHOLD_PERSONS = WorkingTable("opted_out_persons", "persons of opted-out NHS number tokens")
