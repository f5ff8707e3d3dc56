"""The whole store from empty: analyst tables, linkage tables, governance tables and sequences.

Revision ID: 0001_initial
Revises:
Created: 2026-11-23

A revision is a frozen snapshot: it spells out its columns rather than importing the models, so
that later changes to models/ cannot change what this revision did. tests/test_store.py checks
that the store these revisions build is exactly the one the models describe.

No foreign keys: DuckDB checks them against the state at the start of a transaction, so the
loader could not delete a child row and then its parent in one transaction (see models/base.py).
The one CHECK constraint, on governance.batches, is declared here where the table is created,
because DuckDB cannot add a CHECK constraint to an existing table.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.schema import CreateSequence, DropSequence

from ldm.sql import literal

revision: str = "0001_initial"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LINKAGE, GOVERNANCE = "linkage", "governance"
SEQUENCES = (
    sa.Sequence("person_id_seq", schema=LINKAGE),
    sa.Sequence("batch_id_seq", schema=GOVERNANCE),
    sa.Sequence("linkage_log_id_seq", schema=GOVERNANCE),
    sa.Sequence("opt_out_run_id_seq", schema=GOVERNANCE),
    sa.Sequence("audit_log_seq", schema=GOVERNANCE),
)
ACTIVITY_TABLES = (
    "registrations",
    "gp_events",
    "apc_spells",
    "op_appointments",
    "ae_attendances",
    "community_contacts",
)


def _col(name: str, type_: sa.types.TypeEngine, comment: str, nullable: bool = True) -> sa.Column:
    # autoincrement=False: an integer key here is never SERIAL (DuckDB has none); ids come from sequences.
    return sa.Column(name, type_, nullable=nullable, comment=comment, autoincrement=False)


def _text(name: str, comment: str, nullable: bool = True) -> sa.Column:
    return _col(name, sa.String(), comment, nullable)


def _count(name: str, comment: str, nullable: bool = True) -> sa.Column:
    return _col(name, sa.BigInteger(), comment, nullable)


def _at(name: str, comment: str, nullable: bool = True) -> sa.Column:
    return _col(name, sa.DateTime(timezone=True), comment, nullable)


def _id_from(sequence: str, schema: str, name: str, comment: str) -> sa.Column:
    return sa.Column(
        name,
        sa.BigInteger(),
        server_default=sa.text(f"nextval({literal(schema + '.' + sequence)})"),
        nullable=False,
        comment=comment,
    )


def _activity_key() -> list[sa.Column]:
    return [
        _count(
            "batch_id",
            "Load batch the record arrived in (governance.batches.batch_id); with row_number, the key",
            nullable=False,
        ),
        _count(
            "row_number",
            "Row of the record in its pseudonymised extract, from 1; with batch_id, the key",
            nullable=False,
        ),
        _count(
            "record_id",
            "The provider's own record identifier as sent (identifies the record, not the person)",
        ),
        _count(
            "person_id",
            "Pseudonymous person (persons.person_id); NULL when linkage found no single match "
            "(unlinked records are kept, never dropped)",
        ),
        _text(
            "link_step",
            "Linkage step that linked the record (see governance/ linkage rules); NULL when unlinked",
        ),
        _col(
            "link_weight",
            sa.Double(),
            "Match weight of the link (higher is more certain); NULL when unlinked",
        ),
        _col(
            "nhs_number_valid",
            sa.Boolean(),
            "True when the record carried an NHS number that passes the Modulus 11 check; "
            "false when it was missing or invalid",
        ),
    ]


def _recorded_demographics() -> list[sa.Column]:
    small = sa.SmallInteger()
    return [
        _col("year_of_birth", small, "Year of birth as recorded on the record"),
        _col("month_of_birth", small, "Month of birth (1-12) as recorded"),
        _text("sex", "Sex as recorded: F or M (NULL if not known)"),
        _text("lsoa21_code", "2021 LSOA of the recorded postcode (ONS code); NULL if out of area or unknown"),
        _text("lsoa11_code", "2011 LSOA of the recorded postcode (ONS code)"),
        _text("msoa11_code", "2011 MSOA of the recorded postcode (ONS code)"),
        _text("ward_code", "Electoral ward of the recorded postcode (ONS code)"),
        _col("imd_decile", small, "IMD 2019 decile of the 2011 LSOA: 1 most deprived, 10 least deprived"),
        _col("imd_quintile", small, "IMD 2019 quintile of the 2011 LSOA: 1 most deprived, 5 least deprived"),
        _col(
            "age_at_event",
            small,
            "Age in whole years on the date of the event, from the recorded date of birth",
        ),
    ]


def _activity_table(name: str, comment: str, *payload: sa.Column, demographics: bool = True) -> None:
    columns = [*_activity_key(), *payload, *(_recorded_demographics() if demographics else [])]
    op.create_table(
        name, *columns, sa.PrimaryKeyConstraint("batch_id", "row_number", name=f"pk_{name}"), comment=comment
    )


def _analyst_tables() -> None:
    small = sa.SmallInteger()
    op.create_table(
        "persons",
        _count(
            "person_id",
            "Pseudonymous person id, stable across monthly runs (issued by linkage); "
            "never released outside the store without re-keying for the project",
            nullable=False,
        ),
        _col("year_of_birth", small, "Year of birth"),
        _col("month_of_birth", small, "Month of birth (1-12)"),
        _text("sex", "Sex: F or M (NULL if not known)"),
        _text("practice_code", "GP practice (ODS code) of the current or latest registration"),
        _text("lsoa21_code", "2021 LSOA of the latest registered address (ONS code)"),
        _text("lsoa11_code", "2011 LSOA of the latest registered address (ONS code)"),
        _text("msoa11_code", "2011 MSOA of the latest registered address (ONS code)"),
        _text("ward_code", "Electoral ward of the latest registered address (ONS code)"),
        _col("imd_decile", small, "IMD 2019 decile of the 2011 LSOA: 1 most deprived, 10 least deprived"),
        _col("imd_quintile", small, "IMD 2019 quintile of the 2011 LSOA: 1 most deprived, 5 least deprived"),
        _col("date_of_death", sa.Date(), "Date of death recorded by the GP system"),
        _col(
            "registered",
            sa.Boolean(),
            "True while the person has an open registration at a practice in the area: "
            "the registered population, the usual denominator",
            nullable=False,
        ),
        _count("first_batch_id", "Batch in which the person first appeared (governance.batches)"),
        _count("last_batch_id", "Latest batch that changed the person's row (governance.batches)"),
        sa.PrimaryKeyConstraint("person_id", name="pk_persons"),
        comment="One row per pseudonymous person, with current demographics and geography",
    )
    _activity_table(
        "registrations",
        "GP registrations, one row per registration record from the GP extract",
        _text("practice_code", "GP practice (ODS code) of the registration"),
        _col("registration_start", sa.Date(), "Date the registration started"),
        _col("registration_end", sa.Date(), "Date the registration ended; NULL while it is open"),
        _col("date_of_death", sa.Date(), "Date of death, when the GP system records one"),
        _text("ethnic_category", "NHS ethnic category code (A-S, Z not stated)"),
    )
    _activity_table(
        "gp_events",
        "Coded events from GP systems, one row per SNOMED CT coded entry",
        _col("event_date", sa.Date(), "Date of the coded event"),
        _text("snomed_code", "SNOMED CT concept id of the event"),
        _col("value", sa.Double(), "Numeric value, e.g. a weight or HbA1c"),
        _text("unit", "Unit of value, as sent (e.g. kg, mmol/mol)"),
        _text("practice_code", "GP practice (ODS code) that recorded the event"),
        demographics=False,
    )
    _activity_table(
        "apc_spells",
        "Hospital admitted patient care spells; diagnoses in spell_diagnoses, procedures in spell_procedures",
        _text("provider_code", "Hospital provider (ODS code)"),
        _text("local_id_issuer", "Organisation (ODS code) that issued the patient's local hospital number"),
        _col("admission_date", sa.Date(), "Date of admission"),
        _col("discharge_date", sa.Date(), "Date of discharge; NULL if not yet discharged"),
        _text(
            "admission_method",
            "Admission method code: 11-13 elective, 21-28 emergency, 31-32 maternity, 81-83 other",
        ),
    )
    for name, code, what, example in (
        ("spell_diagnoses", "icd10_code", ("ICD-10", "diagnoses", "diagnosis"), "E119"),
        ("spell_procedures", "opcs4_code", ("OPCS-4", "procedures", "procedure"), "X403"),
    ):
        system, plural, singular = what
        op.create_table(
            name,
            _count("batch_id", "Spell's batch (apc_spells.batch_id)", nullable=False),
            _count("row_number", "Spell's row (apc_spells.row_number)", nullable=False),
            _col(
                "position",
                sa.SmallInteger(),
                f"0 for the primary {singular}, 1 and up for secondary {plural} in the order sent",
                nullable=False,
            ),
            _text(code, f"{system} code without the dot, e.g. {example}", nullable=False),
            sa.PrimaryKeyConstraint("batch_id", "row_number", "position", name=f"pk_{name}"),
            comment=f"{system} {plural} of each spell; position 0 is the primary {singular}",
        )
    _activity_table(
        "op_appointments",
        "Hospital outpatient appointments, including did-not-attend and cancelled",
        _text("provider_code", "Hospital provider (ODS code)"),
        _col("appointment_date", sa.Date(), "Date of the appointment"),
        _text("treatment_function", "Treatment function code (specialty), e.g. 100"),
        _text(
            "first_attendance",
            "First attendance code: 1 first, 2 follow-up, 3 first by telephone or video, 4 follow-up by "
            "telephone or video",
        ),
        _text(
            "attendance_status",
            "Attended or did not attend code: 5 and 6 attended, 7 arrived late not seen, 2 cancelled by "
            "patient, 3 did not attend, 4 cancelled by provider",
        ),
    )
    _activity_table(
        "ae_attendances",
        "Emergency department (A&E) attendances, ECDS style",
        _text("provider_code", "Hospital provider (ODS code)"),
        _col("arrival_time", sa.DateTime(), "Arrival date and time, local clock time as sent"),
        _col("departure_time", sa.DateTime(), "Departure date and time, local clock time as sent"),
        _text("chief_complaint", "Chief complaint (SNOMED CT concept id)"),
        _text("acuity", "Acuity at initial assessment (SNOMED CT concept id)"),
        _text("discharge_destination", "Discharge destination (SNOMED CT concept id)"),
    )
    _activity_table(
        "community_contacts",
        "Community care contacts (CSDS style), one row per care contact",
        _col("referral_date", sa.Date(), "Date of the referral the contact belongs to"),
        _col("contact_date", sa.Date(), "Date of the care contact"),
        _text("service_type", "Service type code, e.g. PT physiotherapy"),
        _text("team_type", "Team type, as sent"),
        _text("contact_mode", "Contact mode: F2F face to face, TEL telephone, VID video"),
        _text("attended", "Attendance: Y attended, N did not attend, C cancelled"),
    )


def _token(field: str) -> sa.Column:
    name = field.split(" ", 1)[0]
    return _text(name, f"Keyed token (HMAC-SHA256) of the normalised {field.split(' ', 1)[1]}")


def _linkage_tables() -> None:
    op.create_table(
        "person_keys",
        _id_from(
            "person_id_seq",
            LINKAGE,
            "person_id",
            "Pseudonymous person id, drawn once from linkage.person_id_seq and then kept",
        ),
        _token("nhs_number_token NHS number (valid numbers only)"),
        _token("date_of_birth_token date of birth"),
        _text("sex", "Sex: F or M"),
        _token("postcode_token postcode of the latest address"),
        _token("postcode_district_token postcode district of the latest address"),
        _token("surname_token surname"),
        _token("surname_phonetic_token phonetic code (NYSIIS) of the surname"),
        _token("surname_initial_token surname initial"),
        _token("forename_token forename"),
        _token("forename_phonetic_token phonetic code (NYSIIS) of the forename"),
        _token("forename_initial_token forename initial"),
        _count("first_batch_id", "Batch that created the person id (governance.batches)"),
        _count("last_batch_id", "Latest batch that updated these tokens (governance.batches)"),
        sa.PrimaryKeyConstraint("person_id", name="pk_person_keys"),
        schema=LINKAGE,
        comment="The linkage spine: one row per person id with the tokens used to match records to it",
    )
    op.create_table(
        "person_local_ids",
        _count("person_id", "Person id (linkage.person_keys.person_id)", nullable=False),
        _text(
            "local_id_token",
            "Keyed token of the local patient id together with its issuing organisation",
            nullable=False,
        ),
        _count("first_batch_id", "Batch in which this local id was first tied to the person"),
        sa.PrimaryKeyConstraint("person_id", "local_id_token", name="pk_person_local_ids"),
        schema=LINKAGE,
        comment="Local (hospital) patient id tokens known for each person id",
    )
    op.create_table(
        "record_links",
        _count("batch_id", "Record's batch (governance.batches.batch_id)", nullable=False),
        _count("row_number", "Record's row in its pseudonymised extract", nullable=False),
        _count("person_id", "Person the record was linked to; NULL when unlinked or ambiguous"),
        _text("step", "Linkage step that decided the outcome; NULL when no step applied"),
        _col(
            "weight",
            sa.Double(),
            "Match weight of the chosen candidate (probabilistic steps), else fixed per step",
        ),
        _col(
            "candidates",
            sa.Integer(),
            "Number of candidate persons at the deciding step; 2 or more means ambiguous",
        ),
        _text(
            "algorithm_version",
            "Version of the linkage rules and model that made the decision",
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("batch_id", "row_number", name="pk_record_links"),
        schema=LINKAGE,
        comment="Outcome of linkage for every loaded record, linked or not",
    )
    op.create_table(
        "opt_outs",
        _text("nhs_number_token", "Keyed token of the opted-out NHS number", nullable=False),
        _count("first_batch_id", "Opt-out list batch in which the number first appeared"),
        sa.PrimaryKeyConstraint("nhs_number_token", name="pk_opt_outs"),
        schema=LINKAGE,
        comment="Tokens of NHS numbers under the national data opt-out",
    )


def _governance_tables() -> None:
    op.create_table(
        "batches",
        _id_from(
            "batch_id_seq",
            GOVERNANCE,
            "batch_id",
            "Batch id, from governance.batch_id_seq; every loaded row carries it",
        ),
        _text("feed", "Feed name, e.g. gp_registrations, apc_spells", nullable=False),
        _text("input_file", "File name of the extract as received", nullable=False),
        _text("input_sha256", "SHA-256 of the extract as received (hex)", nullable=False),
        _count("input_bytes", "Size of the extract in bytes"),
        _text("output_file", "Pseudonymised Parquet file that was loaded"),
        _text("output_sha256", "SHA-256 of the pseudonymised Parquet file (hex)"),
        _count("rows_in", "Rows in the extract", nullable=False),
        _count("rows_accepted", "Rows that passed validation", nullable=False),
        _count("rows_quarantined", "Rows quarantined by a blocking rule", nullable=False),
        _count("rows_loaded", "Rows written to the store (accepted less any opted out)"),
        _count("nhs_numbers_present", "Accepted rows with an NHS number"),
        _count("nhs_numbers_valid", "Accepted rows whose NHS number passes Modulus 11"),
        _count("nhs_numbers_invalid", "Accepted rows whose NHS number fails Modulus 11"),
        _count("nhs_numbers_missing", "Accepted rows without an NHS number"),
        _col("spec_version", sa.Integer(), "Version of the feed spec used"),
        _text("key_id", "Key id (fingerprint) of the key that made the tokens", nullable=False),
        _text("software_version", "ldm version that pseudonymised the extract"),
        _text("operator", "Account that ran the pseudonymisation"),
        _at("started_at", "When pseudonymisation started"),
        _at("finished_at", "When pseudonymisation finished"),
        _at("loaded_at", "When the batch was committed to the store"),
        _text("status", "Batch status, e.g. loaded, refused, superseded", nullable=False),
        sa.PrimaryKeyConstraint("batch_id", name="pk_batches"),
        sa.CheckConstraint("rows_in = rows_accepted + rows_quarantined", name="ck_batches_rows_reconcile"),
        schema=GOVERNANCE,
        comment="Every extract that came in, from its manifest",
    )
    op.create_table(
        "quarantine_counts",
        _count("batch_id", "Batch (governance.batches.batch_id)", nullable=False),
        _text("rule", "The rule, in words", nullable=False),
        _text("column_name", "Canonical column the rule checks", nullable=False),
        _text("severity", "critical (row quarantined) or warning (row kept)", nullable=False),
        _count("rows", "Rows that failed the rule", nullable=False),
        sa.PrimaryKeyConstraint("batch_id", "rule", "column_name", name="pk_quarantine_counts"),
        schema=GOVERNANCE,
        comment="Rows failing each validation rule per batch (critical rules quarantine the row)",
    )
    op.create_table(
        "linkage_log",
        _id_from(
            "linkage_log_id_seq",
            GOVERNANCE,
            "log_id",
            "Entry id, from governance.linkage_log_id_seq (a batch may be re-linked)",
        ),
        _count("batch_id", "Batch linked (governance.batches.batch_id)", nullable=False),
        _text("step", "Linkage step, in the order the steps run", nullable=False),
        _count("records_in", "Records still unlinked when the step started", nullable=False),
        _count("linked", "Records the step linked to exactly one person", nullable=False),
        _count("ambiguous", "Records with two or more candidates (not linked)", nullable=False),
        _count("unlinked", "Records left unlinked after the step", nullable=False),
        _col("link_rate", sa.Double(), "linked / records_in for this step (NULL when records_in is 0)"),
        _text("key_id", "Key id of the tokens that were matched"),
        _text("algorithm_version", "Version of the linkage rules and model", nullable=False),
        _text("operator", "Account that ran the linkage"),
        _at("started_at", "When the step started"),
        _at("finished_at", "When the step finished"),
        sa.PrimaryKeyConstraint("log_id", name="pk_linkage_log"),
        schema=GOVERNANCE,
        comment="Records in, linked, ambiguous and unlinked per linkage run, batch and step",
    )
    op.create_table(
        "opt_out_counts",
        _id_from("opt_out_run_id_seq", GOVERNANCE, "run_id", "Run id, from governance.opt_out_run_id_seq"),
        _count("batch_id", "Batch whose records were filtered, or the opt-out list batch"),
        _count("records_removed", "Records removed or withheld", nullable=False),
        _count("persons_removed", "Distinct persons removed", nullable=False),
        _at("applied_at", "When the opt-out was applied", nullable=False),
        _text("operator", "Account that applied it"),
        sa.PrimaryKeyConstraint("run_id", name="pk_opt_out_counts"),
        schema=GOVERNANCE,
        comment="Records and persons removed by each application of the national data opt-out",
    )
    op.create_table(
        "key_ids",
        _text("key_id", "Key id: a fingerprint that reveals nothing of the key", nullable=False),
        _at("first_seen_at", "When a batch with this key id first came in", nullable=False),
        sa.PrimaryKeyConstraint("key_id", name="pk_key_ids"),
        schema=GOVERNANCE,
        comment="Key ids (fingerprints) seen by this store",
    )
    op.create_table(
        "audit_log",
        _id_from("audit_log_seq", GOVERNANCE, "seq", "Position in the log, from governance.audit_log_seq"),
        _at("logged_at", "When the action happened", nullable=False),
        _text("operator", "Account that performed the action", nullable=False),
        _text("action", "What was done, e.g. load, link, opt_out, upgrade", nullable=False),
        _text("subject", "What it was done to, e.g. a batch id or a revision"),
        _text("detail", "Details as JSON text (counts, checksums); never an identifier"),
        _text("previous_hash", "entry_hash of the previous entry; NULL for the first"),
        _text("entry_hash", "SHA-256 (hex) over this entry and previous_hash", nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_audit_log"),
        schema=GOVERNANCE,
        comment="Append-only audit log, hash-chained: entry_hash covers the entry and previous_hash",
    )


def upgrade() -> None:
    # governance may already exist: the migration environment creates it for the version table.
    for schema in (LINKAGE, GOVERNANCE):
        op.execute(f"create schema if not exists {schema}")
    for sequence in SEQUENCES:
        op.execute(CreateSequence(sequence))
    _analyst_tables()
    _linkage_tables()
    _governance_tables()


def downgrade() -> None:
    for name in ("audit_log", "key_ids", "opt_out_counts", "linkage_log", "quarantine_counts", "batches"):
        op.drop_table(name, schema=GOVERNANCE)
    for name in ("opt_outs", "record_links", "person_local_ids", "person_keys"):
        op.drop_table(name, schema=LINKAGE)
    for name in ("spell_procedures", "spell_diagnoses", *ACTIVITY_TABLES, "persons"):
        op.drop_table(name)
    for sequence in SEQUENCES:
        op.execute(DropSequence(sequence))
    # The governance schema stays: it holds Alembic's version table.
    op.execute(f"drop schema if exists {LINKAGE}")
