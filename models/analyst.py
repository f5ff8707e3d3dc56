"""Person-level tables for analysts (schema `main`): one row per person, one row per record.

Nothing here is a token or an identifier: analysts join activity to people through `person_id`,
a pseudonymous id issued by linkage. Activity rows keep the demographics recorded on the record;
`persons` holds each person's current values.
"""

from __future__ import annotations

import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, mapper_key, table_args
from models.columns import RECORD_KEY, ActivityRow, RecordedDemographics, code_column, date_column


class Person(Base):
    """One row per linked person: the spine (GP registered population) plus anyone linked to it."""

    __tablename__ = "persons"
    __table_args__ = table_args("One row per pseudonymous person, with current demographics and geography")

    person_id: Mapped[int] = mapped_column(
        sa.BigInteger,
        primary_key=True,
        autoincrement=False,
        comment="Pseudonymous person id, stable across monthly runs (issued by linkage); "
        "never released outside the store without re-keying for the project",
    )
    year_of_birth: Mapped[int | None] = mapped_column(sa.SmallInteger, comment="Year of birth")
    month_of_birth: Mapped[int | None] = mapped_column(sa.SmallInteger, comment="Month of birth (1-12)")
    sex: Mapped[str | None] = mapped_column(sa.String, comment="Sex: F or M (NULL if not known)")
    practice_code: Mapped[str | None] = code_column(
        "GP practice (ODS code) of the current or latest registration"
    )
    lsoa21_code: Mapped[str | None] = code_column("2021 LSOA of the latest registered address (ONS code)")
    lsoa11_code: Mapped[str | None] = code_column("2011 LSOA of the latest registered address (ONS code)")
    msoa11_code: Mapped[str | None] = code_column("2011 MSOA of the latest registered address (ONS code)")
    ward_code: Mapped[str | None] = code_column("Electoral ward of the latest registered address (ONS code)")
    imd_decile: Mapped[int | None] = mapped_column(
        sa.SmallInteger, comment="IMD 2019 decile of the 2011 LSOA: 1 most deprived, 10 least deprived"
    )
    imd_quintile: Mapped[int | None] = mapped_column(
        sa.SmallInteger, comment="IMD 2019 quintile of the 2011 LSOA: 1 most deprived, 5 least deprived"
    )
    date_of_death: Mapped[datetime.date | None] = date_column(
        "Month of death recorded by the GP system, as its first day (the day is not kept)", month_only=True
    )
    registered: Mapped[bool] = mapped_column(
        sa.Boolean,
        nullable=False,
        comment="True while the person has an open registration at a practice in the area: "
        "the registered population, the usual denominator",
    )
    first_batch_id: Mapped[int | None] = mapped_column(
        sa.BigInteger, comment="Batch in which the person first appeared (governance.batches)"
    )
    last_batch_id: Mapped[int | None] = mapped_column(
        sa.BigInteger, comment="Latest batch that changed the person's row (governance.batches)"
    )
    # Added by migration 0002, so it is the last column of the table in every store.
    ethnic_category: Mapped[str | None] = mapped_column(
        sa.String,
        comment="NHS ethnic category code (A-S, Z not stated) from the latest registration that "
        "records one; NULL if none does",
    )


class Registration(ActivityRow, RecordedDemographics, Base):
    """GP registrations: who is registered where and when; the spine of the linked population."""

    __tablename__ = "registrations"
    __table_args__ = table_args("GP registrations, one row per registration record from the GP extract")

    practice_code: Mapped[str | None] = code_column("GP practice (ODS code) of the registration")
    registration_start: Mapped[datetime.date | None] = date_column("Date the registration started")
    registration_end: Mapped[datetime.date | None] = date_column(
        "Month the registration ended, as its first day (the day is not kept: for a death it is the date "
        "of death); NULL while it is open",
        month_only=True,
    )
    date_of_death: Mapped[datetime.date | None] = date_column(
        "Month of death, when the GP system records one, as its first day (the day is not kept)",
        month_only=True,
    )
    ethnic_category: Mapped[str | None] = code_column("NHS ethnic category code (A-S, Z not stated)")


class GpEvent(ActivityRow, Base):
    """Coded GP events (SNOMED CT), the source of the condition registers."""

    __tablename__ = "gp_events"
    __table_args__ = table_args("Coded events from GP systems, one row per SNOMED CT coded entry")

    event_date: Mapped[datetime.date | None] = date_column("Date of the coded event")
    snomed_code: Mapped[str | None] = code_column("SNOMED CT concept id of the event")
    value: Mapped[float | None] = mapped_column(sa.Double, comment="Numeric value, e.g. a weight or HbA1c")
    unit: Mapped[str | None] = code_column("Unit of value, as sent (e.g. kg, mmol/mol)")
    practice_code: Mapped[str | None] = code_column("GP practice (ODS code) that recorded the event")


class ApcSpell(ActivityRow, RecordedDemographics, Base):
    """Admitted patient care spells (SUS+ style); diagnoses and procedures are in their own tables."""

    __tablename__ = "apc_spells"
    __table_args__ = table_args(
        "Hospital admitted patient care spells; diagnoses in spell_diagnoses, procedures in spell_procedures"
    )

    provider_code: Mapped[str | None] = code_column("Hospital provider (ODS code)")
    local_id_issuer: Mapped[str | None] = code_column(
        "Organisation (ODS code) that issued the patient's local hospital number"
    )
    admission_date: Mapped[datetime.date | None] = date_column("Date of admission")
    discharge_date: Mapped[datetime.date | None] = date_column(
        "Date of discharge; NULL if not yet discharged"
    )
    admission_method: Mapped[str | None] = code_column(
        "Admission method code: 11-13 elective, 21-28 emergency, 31-32 maternity, 81-83 other"
    )


class SpellDiagnosis(Base):
    """Diagnoses of a spell, one row each, so that any position can be searched with one filter."""

    __tablename__ = "spell_diagnoses"
    __table_args__ = table_args("ICD-10 diagnoses of each spell; position 0 is the primary diagnosis")
    __mapper_args__ = mapper_key(*RECORD_KEY, "position")  # not indexed (models/base.py)

    batch_id: Mapped[int] = mapped_column(
        sa.BigInteger, nullable=False, comment="Spell's batch (apc_spells.batch_id)"
    )
    row_number: Mapped[int] = mapped_column(
        sa.BigInteger, nullable=False, comment="Spell's row (apc_spells.row_number)"
    )
    position: Mapped[int] = mapped_column(
        sa.SmallInteger,
        nullable=False,
        comment="0 for the primary diagnosis, 1 and up for secondary diagnoses in the order sent",
    )
    icd10_code: Mapped[str] = mapped_column(
        sa.String, nullable=False, comment="ICD-10 code without the dot, e.g. E119"
    )


class SpellProcedure(Base):
    """Procedures of a spell, one row each."""

    __tablename__ = "spell_procedures"
    __table_args__ = table_args("OPCS-4 procedures of each spell; position 0 is the primary procedure")
    __mapper_args__ = mapper_key(*RECORD_KEY, "position")  # not indexed (models/base.py)

    batch_id: Mapped[int] = mapped_column(
        sa.BigInteger, nullable=False, comment="Spell's batch (apc_spells.batch_id)"
    )
    row_number: Mapped[int] = mapped_column(
        sa.BigInteger, nullable=False, comment="Spell's row (apc_spells.row_number)"
    )
    position: Mapped[int] = mapped_column(
        sa.SmallInteger,
        nullable=False,
        comment="0 for the primary procedure, 1 and up for secondary procedures in the order sent",
    )
    opcs4_code: Mapped[str] = mapped_column(
        sa.String, nullable=False, comment="OPCS-4 code without the dot, e.g. X403"
    )


class OpAppointment(ActivityRow, RecordedDemographics, Base):
    """Outpatient appointments, attended or not: DNAs and cancellations are rows too."""

    __tablename__ = "op_appointments"
    __table_args__ = table_args("Hospital outpatient appointments, including did-not-attend and cancelled")

    provider_code: Mapped[str | None] = code_column("Hospital provider (ODS code)")
    appointment_date: Mapped[datetime.date | None] = date_column("Date of the appointment")
    treatment_function: Mapped[str | None] = code_column("Treatment function code (specialty), e.g. 100")
    first_attendance: Mapped[str | None] = code_column(
        "First attendance code: 1 first, 2 follow-up, 3 first by telephone or video, 4 follow-up by "
        "telephone or video"
    )
    attendance_status: Mapped[str | None] = code_column(
        "Attended or did not attend code: 5 and 6 attended, 7 arrived late not seen, 2 cancelled by "
        "patient, 3 did not attend, 4 cancelled by provider"
    )


class AeAttendance(ActivityRow, RecordedDemographics, Base):
    """A&E attendances (ECDS style)."""

    __tablename__ = "ae_attendances"
    __table_args__ = table_args("Emergency department (A&E) attendances, ECDS style")

    provider_code: Mapped[str | None] = code_column("Hospital provider (ODS code)")
    arrival_time: Mapped[datetime.datetime | None] = mapped_column(
        sa.DateTime, comment="Arrival date and time, local clock time as sent"
    )
    departure_time: Mapped[datetime.datetime | None] = mapped_column(
        sa.DateTime, comment="Departure date and time, local clock time as sent"
    )
    chief_complaint: Mapped[str | None] = code_column("Chief complaint (SNOMED CT concept id)")
    acuity: Mapped[str | None] = code_column("Acuity at initial assessment (SNOMED CT concept id)")
    discharge_destination: Mapped[str | None] = code_column("Discharge destination (SNOMED CT concept id)")


class CommunityContact(ActivityRow, RecordedDemographics, Base):
    """Community care contacts (CSDS style), often with a missing NHS number, so more often unlinked."""

    __tablename__ = "community_contacts"
    __table_args__ = table_args("Community care contacts (CSDS style), one row per care contact")

    referral_date: Mapped[datetime.date | None] = date_column("Date of the referral the contact belongs to")
    contact_date: Mapped[datetime.date | None] = date_column("Date of the care contact")
    service_type: Mapped[str | None] = code_column("Service type code, e.g. PT physiotherapy")
    team_type: Mapped[str | None] = code_column("Team type, as sent")
    contact_mode: Mapped[str | None] = code_column("Contact mode: F2F face to face, TEL telephone, VID video")
    attended: Mapped[str | None] = code_column("Attendance: Y attended, N did not attend, C cancelled")


class Death(ActivityRow, RecordedDemographics, Base):
    """Registered deaths (civil registration, Primary Care Mortality Database shape), one row per
    registration; the causes are in `death_causes`, one row each, as a spell's diagnoses are.

    Both dates are kept as months: an exact date of death with a small area singles most of the
    deceased out (ldm.minimise). The recorded demographics are those of the registration: the age at
    the event is the age at death, and the areas are those of the postcode of usual residence.
    """

    __tablename__ = "deaths"
    # Indexed, unlike the other record tables' keys: a city registers about 10,000 deaths a year, too
    # few for the index to cost anything measurable (nor does that of death_causes).
    __table_args__ = (
        sa.PrimaryKeyConstraint(*RECORD_KEY),
        table_args(
            "Registered deaths (civil registration, PCMD shape), one row per death registration; "
            "causes of death in death_causes"
        ),
    )

    date_of_death: Mapped[datetime.date | None] = date_column(
        "Month of death, as its first day (the day is not kept)", month_only=True
    )
    registration_date: Mapped[datetime.date | None] = date_column(
        "Month the death was registered, as its first day (the day is not kept)", month_only=True
    )
    place_of_death: Mapped[str | None] = code_column(
        "Place of death, ONS categories: HOME the usual residence, CARE_HOME a care home, HOSPITAL, "
        "HOSPICE, OTHER_COMMUNAL another communal establishment, ELSEWHERE any other place"
    )


class DeathCause(Base):
    """Causes of a death, one row each: the underlying cause first, then the contributing ones."""

    __tablename__ = "death_causes"
    __table_args__ = table_args("ICD-10 causes of each death; position 0 is the underlying cause of death")

    batch_id: Mapped[int] = mapped_column(
        sa.BigInteger, primary_key=True, comment="Death's batch (deaths.batch_id)"
    )
    row_number: Mapped[int] = mapped_column(
        sa.BigInteger, primary_key=True, comment="Death's row (deaths.row_number)"
    )
    position: Mapped[int] = mapped_column(
        sa.SmallInteger,
        primary_key=True,
        autoincrement=False,
        comment="0 for the underlying cause of death, 1 and up for contributing causes in the order sent",
    )
    icd10_code: Mapped[str] = mapped_column(
        sa.String, nullable=False, comment="ICD-10 code without the dot, e.g. I219"
    )
