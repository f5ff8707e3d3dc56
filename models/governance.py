"""Governance tables (schema `governance`): what an IG lead audits.

What came in and from which file, what was rejected and why, how many records each linkage step
linked, how many were removed by opt-out, which key versions were used, and an append-only audit
log whose entries are chained by hash so that any edit is detectable.
"""

from __future__ import annotations

import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from models.base import GOVERNANCE_SCHEMA, Base, sequence, sequence_key, table_args

BATCH_ID_SEQ = sequence("batch_id_seq", GOVERNANCE_SCHEMA)
LINKAGE_LOG_ID_SEQ = sequence("linkage_log_id_seq", GOVERNANCE_SCHEMA)
OPT_OUT_RUN_ID_SEQ = sequence("opt_out_run_id_seq", GOVERNANCE_SCHEMA)
AUDIT_LOG_SEQ = sequence("audit_log_seq", GOVERNANCE_SCHEMA)


def _count(comment: str, nullable: bool = True) -> Mapped[int]:
    return mapped_column(sa.BigInteger, nullable=nullable, comment=comment)


def _at(comment: str, nullable: bool = True) -> Mapped[datetime.datetime]:
    return mapped_column(sa.DateTime(timezone=True), nullable=nullable, comment=comment)


def _text(comment: str, nullable: bool = True) -> Mapped[str]:
    return mapped_column(sa.String, nullable=nullable, comment=comment)


class Batch(Base):
    """One row per pseudonymised extract loaded (or refused), from its manifest."""

    __tablename__ = "batches"
    __table_args__ = (
        # A re-sent file (same bytes, same feed) is refused by the loader while a batch of it has status
        # 'loaded'; a replaced batch stays here as 'superseded', so (feed, input_sha256) is not unique.
        # Nothing is silently dropped in the identifiable zone: every row is accepted or quarantined.
        sa.CheckConstraint("rows_in = rows_accepted + rows_quarantined", name="rows_reconcile"),
        {"schema": GOVERNANCE_SCHEMA, "comment": "Every extract that came in, from its manifest"},
    )

    batch_id: Mapped[int] = sequence_key(
        BATCH_ID_SEQ, "Batch id, from governance.batch_id_seq; every loaded row carries it"
    )
    feed: Mapped[str] = _text("Feed name, e.g. gp_registrations, apc_spells", nullable=False)
    input_file: Mapped[str] = _text("File name of the extract as received", nullable=False)
    input_sha256: Mapped[str] = _text("SHA-256 of the extract as received (hex)", nullable=False)
    input_bytes: Mapped[int] = _count("Size of the extract in bytes")
    output_file: Mapped[str | None] = _text("Pseudonymised Parquet file that was loaded")
    output_sha256: Mapped[str | None] = _text("SHA-256 of the pseudonymised Parquet file (hex)")
    rows_in: Mapped[int] = _count("Rows in the extract", nullable=False)
    rows_accepted: Mapped[int] = _count("Rows that passed validation", nullable=False)
    rows_quarantined: Mapped[int] = _count("Rows quarantined by a blocking rule", nullable=False)
    rows_loaded: Mapped[int | None] = _count("Rows written to the store (accepted less any opted out)")
    nhs_numbers_present: Mapped[int | None] = _count("Accepted rows with an NHS number")
    nhs_numbers_valid: Mapped[int | None] = _count("Accepted rows whose NHS number passes Modulus 11")
    nhs_numbers_invalid: Mapped[int | None] = _count("Accepted rows whose NHS number fails Modulus 11")
    nhs_numbers_missing: Mapped[int | None] = _count("Accepted rows without an NHS number")
    spec_version: Mapped[int | None] = mapped_column(sa.Integer, comment="Version of the feed spec used")
    key_id: Mapped[str] = _text("Key id (fingerprint) of the key that made the tokens", nullable=False)
    software_version: Mapped[str | None] = _text("ldm version that pseudonymised the extract")
    operator: Mapped[str | None] = _text("Account that ran the pseudonymisation")
    started_at: Mapped[datetime.datetime | None] = _at("When pseudonymisation started")
    finished_at: Mapped[datetime.datetime | None] = _at("When pseudonymisation finished")
    loaded_at: Mapped[datetime.datetime | None] = _at("When the batch was committed to the store")
    status: Mapped[str] = _text("Batch status, e.g. loaded, refused, superseded", nullable=False)
    # Added by migration 0003.
    rows_resent: Mapped[int | None] = _count(
        "Accepted rows already in the store from an earlier file (not loaded again); for batches loaded before "
        "rows_duplicate was recorded, rows repeated within the extract too"
    )
    rows_revised: Mapped[int | None] = _count(
        "Accepted rows that replaced an earlier version of the same record (same record key)"
    )
    # Added by migration 0004. From it on every row of a batch is counted once (ldm.load.records):
    # rows_in = rows_quarantined + rows_duplicate + rows_resent + rows_withheld + rows_loaded.
    rows_duplicate: Mapped[int | None] = _count(
        "Accepted rows that a later row of the same extract repeats (same record key, or same content "
        "without one): not loaded; NULL for batches loaded before ldm counted them (then in rows_resent)"
    )
    rows_withheld: Mapped[int | None] = _count(
        "Accepted rows not written because their person has opted out (0 for the opt-out list itself)"
    )
    provider: Mapped[str | None] = _text("Provider of the feed the extract came from, as its spec names it")
    spec_name: Mapped[str | None] = _text("Name of the feed spec the extract was read with")


class QuarantineCount(Base):
    """Rows failing each validation rule, per batch, including rules that nothing failed."""

    __tablename__ = "quarantine_counts"
    __table_args__ = table_args(
        "Rows failing each validation rule per batch (critical rules quarantine the row)", GOVERNANCE_SCHEMA
    )

    batch_id: Mapped[int] = mapped_column(
        sa.BigInteger, primary_key=True, comment="Batch (governance.batches.batch_id)"
    )
    rule: Mapped[str] = mapped_column(sa.String, primary_key=True, comment="The rule, in words")
    column_name: Mapped[str] = mapped_column(
        sa.String, primary_key=True, comment="Canonical column the rule checks"
    )
    severity: Mapped[str] = _text("critical (row quarantined) or warning (row kept)", nullable=False)
    rows: Mapped[int] = _count("Rows that failed the rule", nullable=False)


class LinkageLog(Base):
    """Link counts per batch and step: link rates by feed and step are read from here."""

    __tablename__ = "linkage_log"
    __table_args__ = table_args(
        "Records in, linked, ambiguous and unlinked per linkage run, batch and step", GOVERNANCE_SCHEMA
    )

    log_id: Mapped[int] = sequence_key(
        LINKAGE_LOG_ID_SEQ, "Entry id, from governance.linkage_log_id_seq (a batch may be re-linked)"
    )
    batch_id: Mapped[int] = _count("Batch linked (governance.batches.batch_id)", nullable=False)
    step: Mapped[str] = _text("Linkage step, in the order the steps run", nullable=False)
    records_in: Mapped[int] = _count("Records still unlinked when the step started", nullable=False)
    linked: Mapped[int] = _count("Records the step linked to exactly one person", nullable=False)
    ambiguous: Mapped[int] = _count("Records with two or more candidates (not linked)", nullable=False)
    unlinked: Mapped[int] = _count("Records left unlinked after the step", nullable=False)
    link_rate: Mapped[float | None] = mapped_column(
        sa.Double, comment="linked / records_in for this step (NULL when records_in is 0)"
    )
    key_id: Mapped[str | None] = _text("Key id of the tokens that were matched")
    algorithm_version: Mapped[str] = _text("Version of the linkage rules and model", nullable=False)
    operator: Mapped[str | None] = _text("Account that ran the linkage")
    started_at: Mapped[datetime.datetime | None] = _at("When the step started")
    finished_at: Mapped[datetime.datetime | None] = _at("When the step finished")


class OptOutCount(Base):
    """How many records and persons each application of the opt-out list removed."""

    __tablename__ = "opt_out_counts"
    __table_args__ = table_args(
        "Records and persons removed by each application of the national data opt-out", GOVERNANCE_SCHEMA
    )

    run_id: Mapped[int] = sequence_key(OPT_OUT_RUN_ID_SEQ, "Run id, from governance.opt_out_run_id_seq")
    batch_id: Mapped[int | None] = _count("Batch whose records were filtered, or the opt-out list batch")
    records_removed: Mapped[int] = _count("Records removed or withheld", nullable=False)
    persons_removed: Mapped[int] = _count("Distinct persons removed", nullable=False)
    applied_at: Mapped[datetime.datetime] = _at("When the opt-out was applied", nullable=False)
    operator: Mapped[str | None] = _text("Account that applied it")


class KeyId(Base):
    """Every key id that has made tokens in this store: a key change is visible to IG."""

    __tablename__ = "key_ids"
    __table_args__ = table_args("Key ids (fingerprints) seen by this store", GOVERNANCE_SCHEMA)

    key_id: Mapped[str] = mapped_column(
        sa.String, primary_key=True, comment="Key id: a fingerprint that reveals nothing of the key"
    )
    first_seen_at: Mapped[datetime.datetime] = _at("When a batch with this key id first came in", False)


class AuditLogEntry(Base):
    """Append-only audit log; each entry carries the previous entry's hash, so edits break the chain."""

    __tablename__ = "audit_log"
    __table_args__ = table_args(
        "Append-only audit log, hash-chained: entry_hash covers the entry and previous_hash",
        GOVERNANCE_SCHEMA,
    )

    seq: Mapped[int] = sequence_key(AUDIT_LOG_SEQ, "Position in the log, from governance.audit_log_seq")
    logged_at: Mapped[datetime.datetime] = _at("When the action happened", nullable=False)
    operator: Mapped[str] = _text("Account that performed the action", nullable=False)
    action: Mapped[str] = _text("What was done, e.g. load, link, opt_out, upgrade", nullable=False)
    subject: Mapped[str | None] = _text("What it was done to, e.g. a batch id or a revision")
    detail: Mapped[str | None] = _text("Details as JSON text (counts, checksums); never an identifier")
    previous_hash: Mapped[str | None] = _text("entry_hash of the previous entry; NULL for the first")
    entry_hash: Mapped[str] = _text("SHA-256 (hex) over this entry and previous_hash", nullable=False)
    # Added by migration 0003.
    scheme: Mapped[str | None] = _text(
        "How entry_hash seals the entry: 'hmac-sha256' under the audit key; NULL for the unkeyed "
        "SHA-256 of entries written before keyed audit"
    )


class AuditHead(Base):
    """The newest audit entry, kept in the store under a MAC: cutting entries from the end shows."""

    __tablename__ = "audit_head"
    __table_args__ = table_args(
        "The newest entry of the audit chain, kept in the store under a MAC", GOVERNANCE_SCHEMA
    )

    head_id: Mapped[int] = mapped_column(
        sa.SmallInteger, primary_key=True, autoincrement=False, comment="Always 1"
    )
    seq: Mapped[int] = _count("seq of the newest audit entry", nullable=False)
    entry_hash: Mapped[str] = _text("entry_hash of the newest audit entry", nullable=False)
    head_mac: Mapped[str] = _text("HMAC of (seq, entry_hash) under the audit key", nullable=False)


# Added by migration 0005: analysis projects and the person-level releases made to them (ldm.release).
RELEASE_ID_SEQ = sequence("release_id_seq", GOVERNANCE_SCHEMA)


class Project(Base):
    """An analysis project approved by IG to receive person-level releases, as its project file states.

    A release names its project; an unknown project, or one past its expiry date, gets nothing.
    """

    __tablename__ = "projects"
    __table_args__ = table_args(
        "Analysis projects approved to receive person-level releases, with purpose, approver and expiry",
        GOVERNANCE_SCHEMA,
    )

    project: Mapped[str] = mapped_column(
        sa.String,
        primary_key=True,
        comment="Project name (letters, digits, '.', '_', '-'); keys its pseudonyms (purpose release:<project>)",
    )
    purpose: Mapped[str] = _text("What the project will use the data for, as approved", nullable=False)
    approver: Mapped[str] = _text("Who approved the project (a role or board, not a person's name)", False)
    legal_basis: Mapped[str] = _text("Legal basis for the disclosure (e.g. UK GDPR articles, COPI)", False)
    approved_on: Mapped[datetime.date | None] = mapped_column(sa.Date, comment="Date of the approval")
    expires_on: Mapped[datetime.date] = mapped_column(
        sa.Date, nullable=False, comment="Last day on which a release may be made to the project"
    )
    project_file: Mapped[str | None] = _text("Name of the project file the record was read from")
    project_sha256: Mapped[str] = _text("SHA-256 of that project file (hex)", nullable=False)
    registered_at: Mapped[datetime.datetime] = _at("When the project was first registered", nullable=False)
    registered_by: Mapped[str | None] = _text("Account that registered or last amended the project")
    amended_at: Mapped[datetime.datetime | None] = _at("When the record was last amended; NULL if never")


class Release(Base):
    """One person-level release to a project: recorded before anything is written, then its outcome.

    Status 'recorded' while it is made; then 'written', 'refused' (smallest group below the
    threshold) or 'failed'. Counts, sizes and attributes only: never a person or record id.
    """

    __tablename__ = "releases"
    __table_args__ = table_args(
        "Person-level releases to analysis projects: spec, k-anonymity check, outcome and manifest",
        GOVERNANCE_SCHEMA,
    )

    release_id: Mapped[int] = sequence_key(RELEASE_ID_SEQ, "Release id, from governance.release_id_seq")
    project: Mapped[str] = _text("Project released to (governance.projects.project)", nullable=False)
    release_number: Mapped[int] = mapped_column(
        sa.Integer, nullable=False, comment="1 for the project's first release, 2 for its second, ..."
    )
    spec_file: Mapped[str | None] = _text("Name of the release spec file")
    spec_sha256: Mapped[str] = _text("SHA-256 of the release spec file (hex)", nullable=False)
    spec: Mapped[str] = _text(
        "The release spec as JSON: cohort, tables, columns, date coarsening, quasi-identifiers, "
        "generalisation steps, threshold",
        nullable=False,
    )
    key_id: Mapped[str] = _text("Key id of the master key the project's key was derived from", False)
    k_threshold: Mapped[int] = mapped_column(
        sa.Integer, nullable=False, comment="Smallest group size (k) the release must reach"
    )
    status: Mapped[str] = _text("recorded (being made), written, refused or failed", nullable=False)
    requested_at: Mapped[datetime.datetime] = _at("When the release was recorded", nullable=False)
    operator: Mapped[str | None] = _text("Account that made the release")
    out_folder: Mapped[str | None] = _text("Folder the release was (to be) written to")
    k_smallest: Mapped[int | None] = _count(
        "Smallest group size found over the quasi-identifiers, after the generalisation applied"
    )
    smallest_group: Mapped[str | None] = _text(
        "Table and attribute values of the smallest group, as JSON (never its members)"
    )
    generalised: Mapped[str | None] = _text("Generalisation steps applied and the k after each, as JSON")
    persons: Mapped[int | None] = _count("Persons released")
    table_rows: Mapped[str | None] = _text("Rows released per table, as JSON")
    manifest_sha256: Mapped[str | None] = _text("SHA-256 of the release's manifest.json (hex)")
    finished_at: Mapped[datetime.datetime | None] = _at("When the outcome was recorded")
    reason: Mapped[str | None] = _text("Why the release was refused or failed")


# Added by migration 0009: the probabilistic step's models (ldm.linkage.probabilistic).
class LinkageModel(Base):
    """One Fellegi-Sunter model of the probabilistic linkage step, saved by the batch that trained it.

    Every probabilistic link names its model in record_links.algorithm_version (`...+fs:<model_id>`);
    its weight is this model's prior weight plus one level weight per comparison. Parameters and
    comparison levels only: never a token or an identifier.
    """

    __tablename__ = "linkage_models"
    __table_args__ = table_args(
        "Probabilistic linkage models: m and u per comparison level, prior, blocking rules, decision rule",
        GOVERNANCE_SCHEMA,
    )

    model_id: Mapped[str] = mapped_column(
        sa.String,
        primary_key=True,
        comment="First 16 hex digits of the SHA-256 of model_json; links name it as fs:<model_id>",
    )
    batch_id: Mapped[int] = _count(
        "Batch that trained the model (governance.batches.batch_id)", nullable=False
    )
    trained_at: Mapped[datetime.datetime] = _at("When the model was trained (UTC)", nullable=False)
    fingerprint: Mapped[str] = _text(
        "Digest of the comparisons, blocking rules, training scheme, threshold, margin and Splink version: "
        "a later batch reuses the model only under the same fingerprint",
        nullable=False,
    )
    algorithm_version: Mapped[str] = _text("ldm linkage version and training scheme", nullable=False)
    splink_version: Mapped[str] = _text("Splink version that scored with it", nullable=False)
    compared: Mapped[str] = _text(
        "Comparisons the undecided training records carried (comma-separated); reused only for the same",
        nullable=False,
    )
    prior: Mapped[float] = mapped_column(
        sa.Double,
        nullable=False,
        comment="Prior match probability of a record-person pair that Splink starts each weight from",
    )
    blocked_prior: Mapped[float | None] = mapped_column(
        sa.Double, comment="Share of the undecided records' blocked record-person pairs expected to match"
    )
    blocked_share: Mapped[float | None] = mapped_column(
        sa.Double, comment="Share of all record-person pairs that blocking compares (P(blocked | non-match))"
    )
    blocking_recall: Mapped[float | None] = mapped_column(
        sa.Double,
        comment="Share of records linked by NHS number whose person blocking finds (P(blocked | match))",
    )
    threshold: Mapped[float] = mapped_column(
        sa.Double, nullable=False, comment="Match weight a link must reach"
    )
    margin: Mapped[float] = mapped_column(
        sa.Double, nullable=False, comment="Match weight by which the best person must lead every other"
    )
    blocking_rules: Mapped[str] = _text("Blocking rules as a JSON list of SQL conditions", nullable=False)
    parameters: Mapped[str] = _text(
        "m, u and match weight of every level of every comparison, as JSON", nullable=False
    )
    model_json: Mapped[str] = _text(
        "The model as Splink's settings JSON (comparisons with m and u per level, prior, blocking rules)",
        nullable=False,
    )
    spine_persons: Mapped[int] = _count("Persons on the spine when it was trained", nullable=False)
    training_records: Mapped[int] = _count("Record combinations trained on (undecided and anchors)", False)
    training_undecided: Mapped[int] = _count("Of those, combinations the trace steps left undecided", False)
    training_pairs: Mapped[int] = _count("Blocked record-person pairs EM was run on", nullable=False)
    em_iterations: Mapped[int] = mapped_column(
        sa.Integer, nullable=False, comment="EM iterations (both passes) until the parameters settled"
    )
