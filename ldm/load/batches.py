"""Batches and their manifests: which extracts load, in what order, and the checks before a write.

A batch is one pseudonymised extract, loaded whole in one transaction (ldm.load.loader). This
module finds the manifests of a folder and orders them, writes a batch's governance row and
quarantine counts, and refuses what must never be written: a seam file that is not the one its
manifest describes, a key other than the store's own, a store that fails its audit check or is
at another revision.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from ldm.errors import LdmError
from ldm.files import file_sha256
from ldm.governance import audit
from ldm.pseudonymise.extract import Manifest
from ldm.pseudonymise.keys import AUDIT, MasterKey
from ldm.store import connect
from models.feeds import FEEDS, REPEATED_FIELDS
from models.governance import Batch, QuarantineCount

LOAD_ORDER = FEEDS


# A seam file is named by the manifest beside it: a plain name in the same folder, nothing else.
SEAM_FILE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")


@dataclass
class BatchLoad:
    """What one batch did with its accepted rows, each counted once (ldm.load.records):

    rows_accepted = rows_duplicate + rows_resent + withheld_by_opt_out + rows_loaded for a
    records feed (revised rows are loaded or withheld too). For the opt-out list, rows_loaded is its
    entries, each NHS number once, and withheld_by_opt_out the records it removed from earlier batches.
    """

    batch_id: int
    feed: str
    input_file: str
    rows_accepted: int
    rows_loaded: int
    withheld_by_opt_out: int = 0
    steps: list = field(default_factory=list)
    persons_added: int = 0
    persons_removed: int = 0
    rows_resent: int = 0  # already in the store from an earlier file: not loaded again
    rows_revised: int = 0  # replaced an earlier version of the same record
    rows_duplicate: int = 0  # a later row of the same extract is the same record: not loaded
    revised_batches: list[int] = field(default_factory=list)  # batches whose rows they replaced
    evidence_added: int = 0  # identities learnt for persons (linkage.person_evidence)
    evidence_conflicts: int = 0  # identities not learnt: their NHS number is another person's


@dataclass
class LoadSummary:
    loaded: list[BatchLoad] = field(default_factory=list)
    already_loaded: list[tuple[str, int]] = field(default_factory=list)  # (input file, batch id)
    duplicates: list[tuple[str, str]] = field(default_factory=list)  # (input file, the file it repeats)
    audit_head: audit.Head = audit.EMPTY


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


def manifests_in(folder: Path, only: list[Path] | None = None) -> list[tuple[Manifest, Path]]:
    """The manifests to load with their seam files: every one in `folder`, or only those listed."""
    if not folder.is_dir():
        raise LdmError(f"pseudonymised folder {folder} does not exist")
    found = []
    for path in sorted(folder.glob("*/*.manifest.json")) if only is None else only:
        manifest = Manifest.read(path)
        if manifest.feed not in LOAD_ORDER:
            raise LdmError(f"{path}: unknown feed {manifest.feed!r}")
        unknown = sorted(set(manifest.repeated) - set(REPEATED_FIELDS.get(manifest.feed, {})))
        if unknown:  # never dropped in silence: the spec check refuses such a spec, so this file was altered
            raise LdmError(f"{path}: repeated field(s) {', '.join(unknown)} have no table in the store")
        if not SEAM_FILE_NAME.fullmatch(manifest.output_file):
            raise LdmError(
                f"{path}: names {manifest.output_file!r}, which is not a plain file name beside it"
            )
        parquet = path.parent / manifest.output_file
        if not parquet.is_file():
            raise LdmError(f"{path}: its Parquet file {parquet.name} is missing")
        found.append((manifest, parquet))
    found.sort(key=lambda item: (load_rank(*item), LOAD_ORDER.index(item[0].feed), item[0].started_at))
    return found


def load_rank(manifest: Manifest, parquet: Path) -> int:
    """Opt-out lists first (their people's records are withheld before they arrive), then
    registrations (they found persons), then feeds that carry more than an NHS number, whose links
    teach the evidence (ldm.load.evidence) that feeds with nothing else (GP events) link through."""
    if manifest.feed == "opt_out":
        return 0
    if manifest.feed == "gp_registrations":
        return 1
    return 2 if "date_of_birth_token" in pq.read_schema(parquet).names else 3


def insert_row(con, model: type, values: dict) -> None:
    """Insert one row of `model`'s table, its columns named by `values`, checked against the model
    (one definition: a column renamed in models/ fails here, not in a later query)."""
    table = model.__table__
    unknown = sorted(set(values) - set(table.columns.keys()))
    if unknown:
        raise LdmError(f"{table.schema}.{table.name} has no column(s) {', '.join(unknown)}")
    names = list(values)
    con.execute(
        f"insert into {table.schema}.{table.name} ({', '.join(names)}) values ({', '.join('?' * len(names))})",
        [values[name] for name in names],
    )


def insert_batch(con, manifest: Manifest) -> int:
    """The batch's governance row (status `loading` until its load commits), its quarantine counts
    by rule, and its key id if the store has not seen it."""
    nhs = manifest.nhs_numbers or {}
    batch_id = con.execute("select nextval('governance.batch_id_seq')").fetchone()[0]
    copied = ("feed", "input_file", "input_sha256", "input_bytes", "output_file", "output_sha256", "rows_in",
              "rows_accepted", "rows_quarantined", "spec_version", "key_id", "software_version", "operator",
              "started_at", "finished_at")  # fmt: skip
    insert_row(
        con,
        Batch,
        {"batch_id": batch_id, "status": "loading"}
        | {name: getattr(manifest, name) for name in copied}
        | {f"nhs_numbers_{kind}": nhs.get(kind) for kind in ("present", "valid", "invalid", "missing")}
        # A manifest from before providers and spec names were recorded names none.
        | {"provider": manifest.provider or None, "spec_name": manifest.spec_name or None},
    )
    for rule in manifest.rules:
        if rule["rows"]:
            insert_row(
                con,
                QuarantineCount,
                {"batch_id": batch_id, "rule": rule["rule"], "column_name": rule["column"],
                 "severity": rule["severity"], "rows": rule["rows"]},
            )  # fmt: skip
    con.execute(
        "insert into governance.key_ids (key_id, first_seen_at) select ?, ? "
        "where not exists (select 1 from governance.key_ids where key_id = ?)",
        [manifest.key_id, now(), manifest.key_id],
    )
    return batch_id


def check_file(parquet: Path, manifest: Manifest) -> None:
    """The file is the one the manifest describes, byte for byte."""
    if file_sha256(parquet) != manifest.output_sha256:
        raise LdmError(
            f"{parquet}: its SHA-256 differs from its manifest's; the file was changed after it was made"
        )


def store_key_ids(con) -> list[str]:
    """Key ids the store's batches were made under (one, or none for an empty store)."""
    return [
        row[0]
        for row in con.execute("select key_id from governance.key_ids order by first_seen_at").fetchall()
    ]


def check_key(con, store: Path, key: MasterKey, manifests: list[tuple[Manifest, Path]] = ()) -> None:
    """Refuse, before anything is written, a key or a manifest other than the store's own key."""
    others = [key_id for key_id in store_key_ids(con) if key_id != key.key_id]
    if others:
        raise LdmError(
            f"store {store} was built with key id {others[0]}, but the key given has key id {key.key_id}; "
            "use the store's own key file (a store never mixes keys; key rotation is not done by a run)"
        )
    for manifest, parquet in manifests:
        if manifest.key_id != key.key_id:
            raise LdmError(
                f"{parquet.name}: pseudonymised under key id {manifest.key_id}, but the store's key is "
                f"{key.key_id}; pseudonymise the extract again with the store's key"
            )


def check_store_key(store: Path, key: MasterKey) -> None:
    """`check_key` on a store file, opened read-only for the check (a store not yet made has no key)."""
    if not store.exists():
        return
    con = connect(store, read_only=True)
    try:
        check_key(con, store, key)
    finally:
        con.close()


def check_audit(con, store: Path, key: MasterKey, shown: Path | None = None) -> None:
    """Refuse to write to a store that fails its audit check, so that tampering is never sealed over.

    `shown` names the store in the message when `store` is a working copy of it.
    """
    problems = audit.verify(con, key.purpose_key(AUDIT), audit.read_anchor(store)).problems
    if problems:
        name = shown or store
        raise LdmError(
            f"store {name} fails its audit check ({len(problems)} problem(s), first: {problems[0]}); "
            f"nothing was loaded. See: ldm audit verify --store {name}"
        )


def current_revision_of(con) -> str | None:
    """The store's Alembic revision, read on the open connection (a second connection would be refused)."""
    try:
        row = con.execute("select version_num from governance.alembic_version").fetchone()
    except duckdb.Error:
        return None
    return row[0] if row else None
