"""How each provider lays out its extract: file name, delimiter, date style and column names.

These are deliberately different from one another and from ldm's canonical names, as real
extracts are; the feed specs in ldm/feeds/specs map them back.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    name: str  # as the provider spells it
    source: str  # key in the generated records
    kind: str = "text"  # text | date | datetime | number | sex_code


@dataclass(frozen=True)
class FeedFormat:
    file_name: str
    delimiter: str
    date_format: str  # strftime pattern for dates
    columns: tuple[Column, ...]
    datetime_format: str = "%Y-%m-%d %H:%M:%S"


FORMATS = {
    "gp_registrations": FeedFormat(
        "gp_registrations.csv", ",", "%d/%m/%Y",
        (
            Column("Registration ID", "record_id", "number"),
            Column("NHS Number", "nhs_number"),
            Column("Forename", "forename"),
            Column("Surname", "surname"),
            Column("Date of Birth", "date_of_birth", "date"),
            Column("Sex", "sex"),
            Column("Postcode", "postcode"),
            Column("Practice Code", "practice"),
            Column("Registration Date", "date", "date"),
            Column("Deregistration Date", "deregistration_date", "date"),
            Column("Date of Death", "date_of_death", "date"),
            Column("Ethnic Category", "ethnic_category"),
        ),
    ),
    "gp_events": FeedFormat(
        "gp_events.txt", "|", "%Y-%m-%d",
        (
            Column("EventId", "record_id", "number"),
            Column("PatientNHSNumber", "nhs_number"),
            Column("PracticeCode", "practice"),
            Column("EventDate", "date", "date"),
            Column("ConceptId", "code"),
            Column("Value", "value", "number"),
            Column("Unit", "unit"),
        ),
    ),
    "apc_spells": FeedFormat(
        "apc_spells.csv", ",", "%Y-%m-%d",
        (
            Column("SPELL_ID", "record_id", "number"),
            Column("NHS_NUMBER", "nhs_number"),
            Column("LOCAL_PATIENT_ID", "local_id"),
            Column("ORG_CODE_LOCAL_PATIENT_ID", "provider"),
            Column("PERSON_BIRTH_DATE", "date_of_birth", "date"),
            Column("SEX", "sex", "sex_code"),
            Column("POSTCODE_USUAL_ADDRESS", "postcode"),
            Column("PROVIDER_CODE", "provider"),
            Column("START_DATE_HOSPITAL_PROVIDER_SPELL", "date", "date"),
            Column("DISCHARGE_DATE_HOSPITAL_PROVIDER_SPELL", "discharge_date", "date"),
            Column("ADMISSION_METHOD", "admission_method"),
            Column("PRIMARY_DIAGNOSIS_ICD", "primary_diagnosis"),
            Column("SECONDARY_DIAGNOSIS_ICD_1", "secondary_diagnosis_1"),
            Column("SECONDARY_DIAGNOSIS_ICD_2", "secondary_diagnosis_2"),
            Column("SECONDARY_DIAGNOSIS_ICD_3", "secondary_diagnosis_3"),
            Column("SECONDARY_DIAGNOSIS_ICD_4", "secondary_diagnosis_4"),
            Column("PRIMARY_PROCEDURE_OPCS", "primary_procedure"),
            Column("SECONDARY_PROCEDURE_OPCS_1", "secondary_procedure_1"),
        ),
    ),
    "op_appointments": FeedFormat(
        "op_appointments.csv", ",", "%d/%m/%Y",
        (
            Column("AppointmentId", "record_id", "number"),
            Column("NHSNumber", "nhs_number"),
            Column("HospitalNumber", "local_id"),
            Column("ProviderCode", "provider"),
            Column("BirthDate", "date_of_birth", "date"),
            Column("Gender", "sex", "sex_code"),
            Column("Postcode", "postcode"),
            Column("AppointmentDate", "date", "date"),
            Column("TreatmentFunctionCode", "treatment_function"),
            Column("FirstAttendance", "first_attendance"),
            Column("AttendanceStatus", "attendance_status"),
        ),
    ),
    "ae_attendances": FeedFormat(
        "ae_attendances.csv", ",", "%Y-%m-%d",
        (
            Column("ATTENDANCE_ID", "record_id", "number"),
            Column("NHS_NUMBER", "nhs_number"),
            Column("LOCAL_PATIENT_IDENTIFIER", "local_id"),
            Column("PROVIDER_CODE", "provider"),
            Column("BIRTH_DATE", "date_of_birth", "date"),
            Column("STATED_GENDER", "sex", "sex_code"),
            Column("POSTCODE", "postcode"),
            Column("ARRIVAL_DATETIME", "arrival", "datetime"),
            Column("DEPARTURE_DATETIME", "departure", "datetime"),
            Column("CHIEF_COMPLAINT", "chief_complaint"),
            Column("ACUITY", "acuity"),
            Column("DISCHARGE_DESTINATION", "discharge_destination"),
        ),
    ),
    "community_contacts": FeedFormat(
        "community_contacts.txt", "|", "%d/%m/%Y",
        (
            Column("Contact_ID", "record_id", "number"),
            Column("NHS_No", "nhs_number"),
            Column("Forename", "forename"),
            Column("Surname", "surname"),
            Column("DOB", "date_of_birth", "date"),
            Column("Gender", "sex"),
            Column("Postcode", "postcode"),
            Column("Referral_Date", "referral_date", "date"),
            Column("Contact_Date", "date", "date"),
            Column("Service_Type", "service"),
            Column("Team_Type", "team_type"),
            Column("Contact_Mode", "contact_mode"),
            Column("Attended", "attended"),
        ),
    ),
    # Primary Care Mortality Database style: NHS England's civil registration field names, yyyymmdd dates.
    "deaths": FeedFormat(
        "deaths.csv", ",", "%Y%m%d",
        (
            Column("DEATH_RECORD_ID", "record_id", "number"),
            Column("DEC_NHS_NUMBER", "nhs_number"),
            Column("DEC_FORENAMES", "forename"),
            Column("DEC_SURNAME", "surname"),
            Column("DEC_DATE_OF_BIRTH", "date_of_birth", "date"),
            Column("DEC_SEX", "sex", "sex_code"),
            Column("DEC_USUAL_ADDRESS_POSTCODE", "postcode"),
            Column("REG_DATE_OF_DEATH", "date", "date"),
            Column("REG_DATE", "registration_date", "date"),
            Column("POD_CATEGORY", "place_of_death"),
            Column("S_UNDERLYING_COD_ICD10", "underlying_cause"),
            *(Column(f"S_COD_CODE_{i}", f"cause_{i}") for i in range(1, 16)),
        ),
    ),
    "opt_out": FeedFormat(
        "national_data_opt_out.csv", ",", "%Y-%m-%d", (Column("NHS_NUMBER", "nhs_number"),)
    ),
}  # fmt: skip
