"""Load pseudonymised extracts into the store: one batch, one transaction.

Each batch is written whole or not at all: its governance row, quarantine counts, linked rows,
opt-out counts and audit entry commit together, so an error or a kill mid-batch leaves the store
exactly as before. A batch whose extract (same feed, same SHA-256) is already loaded is refused
unless replacement is asked for, and records already in the store under another file are
recognised one by one (ldm.load.records). Opt-out lists load first, so that opted-out people's
records are withheld before they reach the store; a person who opts out later is removed when the
list comes.

A store belongs to one key: the key id of its first batch. A manifest or a key with another key id
is refused before anything is written, because its tokens match nobody and would found every
person a second time and let opted-out people back in. Every batch is sealed in the keyed audit
chain with digests of what it wrote (ldm.governance.audit), and a load refuses to start on a
store that fails its audit check, so that tampering is never sealed over.
"""

from __future__ import annotations

import dataclasses
import getpass
import tempfile
from collections.abc import Callable
from pathlib import Path

from ldm.errors import LdmError
from ldm.governance import audit, digests
from ldm.linkage import saved
from ldm.linkage.engine import ALGORITHM_VERSION, LinkageConfig
from ldm.linkage.fellegi_sunter import Model
from ldm.load import linkage_log
from ldm.load.batches import (
    BatchLoad,
    LoadSummary,
    check_audit,
    check_file,
    check_key,
    current_revision_of,
    insert_batch,
    insert_row,
    manifests_in,
    now,
)
from ldm.load.linking import LinkingSession, link_extract
from ldm.load.opt_outs import apply_opt_out_list, opted_out
from ldm.load.persons import (
    add_new_persons,
    keep_replaced_keys,
    learn_evidence,
    learn_local_ids,
    learn_registration_evidence,
    refresh_person_keys,
    refresh_persons,
)
from ldm.load.rows import (
    insert_rows,
    recognise_records,
    stage,
    staged_columns,
    unpivot_repeated,
    withdraw,
)
from ldm.load.unique_keys import check_unique_keys
from ldm.load.working import BATCH_EVIDENCE, INCOMING
from ldm.pseudonymise.extract import Manifest
from ldm.pseudonymise.keys import AUDIT, MasterKey
from ldm.sql import literal
from ldm.store import connect, head_revision
from ldm.store.lock import store_lock
from models.feeds import FEED_TABLES
from models.governance import OptOutCount

STORE_MEMORY = "3GB"  # the store connection's share; linkage runs beside it on its own connection
# Tables a batch of the feed updates or deletes rows of in place; every other table it writes only
# gains rows in its own partition (ldm.governance.audit.batch_state re-summarises just those).
REWRITTEN = {"gp_registrations": ("main.persons", "linkage.person_keys")}


def _load_records(
    con,
    batch_id: int,
    manifest: Manifest,
    parquet: Path,
    load: BatchLoad,
    linkage: LinkageConfig | None,
    session: LinkingSession,
) -> None:
    feed = manifest.feed
    skip = recognise_records(con, manifest, parquet, load)  # duplicates and re-sent rows
    columns, (tokens, persons) = staged_columns(con, parquet, feed, manifest.repeated), opted_out(con)
    linkage = _with_saved_models(con, linkage)
    with tempfile.TemporaryDirectory(prefix="ldm-link-") as folder:
        # The spine streams from the store into the session: no other query until it is done. A
        # registration batch learns in the store, once its new persons have ids (learn_evidence).
        session.spine(con)
        staged = link_extract(
            session,
            parquet,
            Path(folder) / "staged.parquet",
            columns,
            tokens,
            persons,
            linkage,
            skip,
            learn=feed != "gp_registrations",
        )
        load.steps = staged.steps
        if staged.model is not None and staged.model.trained:  # in this batch's partition of the audit
            con.execute(saved.insert_sql(), saved.row(staged.model, batch_id, now(), ALGORITHM_VERSION))
        if staged.rows != manifest.rows_accepted - load.rows_duplicate - load.rows_resent:
            raise LdmError(
                f"{parquet}: {staged.rows:,} rows could be staged but its manifest has {manifest.rows_accepted:,} "
                f"of which {load.rows_duplicate:,} are duplicates and {load.rows_resent:,} already in the store"
            )
        materialise = feed == "gp_registrations"
        stage(con, staged.path, materialise)
        _write_records(con, batch_id, manifest, load, staged.rows, staged.model)
        check_unique_keys(con, batch_id)  # the keys the large tables do not index
        if staged.evidence is not None:
            con.register(BATCH_EVIDENCE, staged.evidence)
            learn_evidence(con, batch_id, feed, BATCH_EVIDENCE, load)
            con.unregister(BATCH_EVIDENCE)
        con.execute(f"drop {'table' if materialise else 'view'} {INCOMING}")  # it reads a file about to go


def _with_saved_models(con, linkage: LinkageConfig | None) -> LinkageConfig:
    """The linkage settings with the store's saved probabilistic models, for the step to reuse one
    while it fits rather than train again (ldm.linkage.probabilistic)."""
    models = tuple(m for m in map(saved.from_row, con.execute(saved.saved_sql()).fetchall()) if m is not None)
    return dataclasses.replace(linkage or LinkageConfig(), models=models)


def _write_records(
    con, batch_id: int, manifest: Manifest, load: BatchLoad, staged: int, model: Model | None = None
) -> None:
    feed = manifest.feed
    if feed == "gp_registrations":
        load.persons_added = add_new_persons(con)
        keep_replaced_keys(con)
        refresh_person_keys(con, batch_id)
    load.rows_loaded = insert_rows(con, FEED_TABLES[feed], batch_id)
    load.withheld_by_opt_out = staged - load.rows_loaded
    if feed == "gp_registrations":
        refresh_persons(con, batch_id)
        learn_registration_evidence(con, batch_id, feed, load)
    unpivot_repeated(con, feed, manifest.repeated, batch_id)
    learn_local_ids(con, batch_id)
    started = now()
    linkage_log.write(con, linkage_log.rows(batch_id, manifest.key_id, load.steps, started, now(), model))


def load_batch(
    con,
    store: Path,
    manifest: Manifest,
    parquet: Path,
    audit_key: bytes,
    replaces: int | None = None,
    linkage: LinkageConfig | None = None,
    session: LinkingSession | None = None,
) -> BatchLoad:
    """Load one pseudonymised extract in one transaction, sealed in the audit chain with what it wrote.

    `session` links it (and is told what the batch changed); without one, a session of its own does.
    """
    if session is None:
        with LinkingSession() as own:
            return load_batch(con, store, manifest, parquet, audit_key, replaces, linkage, own)
    con.begin()
    try:
        if replaces is not None:
            withdraw(con, replaces)  # records and their links only: the spine's tables keep what it taught
        batch_id = insert_batch(con, manifest)
        check_file(parquet, manifest)
        load = BatchLoad(batch_id, manifest.feed, manifest.input_file, manifest.rows_accepted, 0)
        if manifest.feed == "opt_out":
            apply_opt_out_list(con, batch_id, parquet, load)
        else:
            _load_records(con, batch_id, manifest, parquet, load, linkage, session)
        if load.withheld_by_opt_out or load.persons_removed:
            insert_row(  # run_id from governance.opt_out_run_id_seq, the column's default
                con,
                OptOutCount,
                {"batch_id": batch_id, "records_removed": load.withheld_by_opt_out,
                 "persons_removed": load.persons_removed, "applied_at": now(), "operator": getpass.getuser()},
            )  # fmt: skip
        con.execute(
            """update governance.batches set status = 'loaded', rows_loaded = ?, rows_resent = ?, rows_revised = ?,
                   rows_duplicate = ?, rows_withheld = ?, loaded_at = ? where batch_id = ?""",
            [
                load.rows_loaded,
                load.rows_resent,
                load.rows_revised,
                load.rows_duplicate,
                # The opt-out list's own rows are never withheld (what it removed is in opt_out_counts).
                0 if manifest.feed == "opt_out" else load.withheld_by_opt_out,
                now(),
                batch_id,
            ],
        )
        # An opt-out list removes rows from every batch; otherwise only these batches' partitions changed.
        state = (
            audit.full_state(con, audit_key, digests.LOAD_TABLES)
            if manifest.feed == "opt_out"
            else audit.batch_state(
                con,
                audit_key,
                [batch_id, *load.revised_batches, *([replaces] if replaces else [])],
                REWRITTEN.get(manifest.feed, ()),
            )
        )
        head = audit.append(
            con,
            audit_key,
            getpass.getuser(),
            "load",
            f"batch {batch_id}",
            {
                "feed": load.feed,
                "provider": manifest.provider or None,
                "spec_name": manifest.spec_name or None,
                "input_file": load.input_file,
                "input_sha256": manifest.input_sha256,
                "key_id": manifest.key_id,
                "rows_accepted": load.rows_accepted,
                "rows_loaded": load.rows_loaded,
                "rows_resent": load.rows_resent,
                "rows_revised": load.rows_revised,
                "rows_duplicate": load.rows_duplicate,
                "withheld_by_opt_out": load.withheld_by_opt_out,
                "persons_added": load.persons_added,
                "persons_removed": load.persons_removed,
                "evidence_added": load.evidence_added,
                "evidence_conflicts": load.evidence_conflicts,
                "replaces": replaces,
                "links": {c.step: c.linked for c in load.steps},
            },
            state,
        )
        con.commit()
    except BaseException:
        con.rollback()
        session.renew()  # whatever the failed batch had begun, the next spine is a whole copy
        raise
    # Registrations found persons (new spine rows to number) and an opt-out list deletes rows without
    # a batch id; every other batch stamps each spine row it writes with its own (LinkingSession).
    session.loaded(batch_id, whole=manifest.feed == "opt_out" or manifest.feed in REWRITTEN)
    audit.write_anchor(store, head)
    return load


def load_folder(
    folder: Path,
    store: Path,
    key: MasterKey,
    replace: bool = False,
    progress: Callable[[str], None] | None = None,
    linkage: LinkageConfig | None = None,
    advance: Callable[[int, int], None] | None = None,
    only: list[Path] | None = None,
    verify_first: bool = True,
    shown: Path | None = None,
) -> LoadSummary:
    """Load every pseudonymised extract in `folder` (OUT of `ldm pseudonymise`) not yet in the store.

    `only` limits the load to the listed manifests (a run loads the extracts it was given, not
    whatever an earlier run left in the folder). `progress` gets a line as each batch starts;
    `advance(rows, total)` is called as each ends, with the rows of all batches to load as the total.
    `verify_first` checks the store's audit before the first write, on the connection that then
    loads, so nothing can change in between; `shown` names the store in messages when `store` is a
    working copy of it.
    """
    manifests = manifests_in(folder, only)
    store = Path(store)
    with store_lock(store, progress):
        con = connect(store)
        con.execute(f"set memory_limit = {literal(STORE_MEMORY)}")
        try:
            return _load_all(
                con, store, key, manifests, replace, progress, linkage, advance, verify_first, shown
            )
        finally:
            con.close()


def _load_all(
    con, store, key, manifests, replace, progress, linkage, advance, verify_first, shown
) -> LoadSummary:
    revision = current_revision_of(con)
    if revision != head_revision():
        raise LdmError(
            f"store {store} is at revision {revision or 'none'}; run: ldm db upgrade --store {store}"
        )
    check_key(con, store, key, manifests)
    if verify_first:
        check_audit(con, store, key, shown)
    summary = LoadSummary()
    to_load, first_of = [], {}
    for manifest, parquet in manifests:
        same_bytes = (manifest.feed, manifest.input_sha256)
        if same_bytes in first_of:
            summary.duplicates.append((manifest.input_file, first_of[same_bytes]))
            continue
        first_of[same_bytes] = manifest.input_file
        earlier = con.execute(
            "select batch_id from governance.batches where feed = ? and input_sha256 = ? and status = 'loaded'",
            [manifest.feed, manifest.input_sha256],
        ).fetchall()
        if earlier and not replace:
            summary.already_loaded.append((manifest.input_file, earlier[0][0]))
        else:
            to_load.append((manifest, parquet, earlier[0][0] if earlier else None))
    lists = [manifest.input_file for manifest, _, _ in to_load if manifest.feed == "opt_out"]
    if len(lists) > 1:  # each list is a full snapshot: the second would let the first's people back in
        raise LdmError(
            f"{len(lists)} opt-out lists to load at once ({', '.join(lists)}); each is a full snapshot that "
            "replaces the one before, so send one list (nothing was loaded)"
        )
    total_rows = sum(manifest.rows_accepted for manifest, _, _ in to_load)
    audit_key = key.purpose_key(AUDIT)
    with LinkingSession() as session:
        for manifest, parquet, replaces in to_load:
            if progress:
                progress(f"{manifest.feed}: {manifest.input_file}")
            summary.loaded.append(
                load_batch(con, store, manifest, parquet, audit_key, replaces, linkage, session)
            )
            if advance:
                advance(manifest.rows_accepted, total_rows)
    summary.audit_head = audit.head(con)
    return summary
