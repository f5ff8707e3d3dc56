"""The built-in APC extract rewritten in the style of the HES Admitted Patient Care data dictionary.

A provider that sends HES-style files should be onboarded with a feed spec alone. To show that, the
same records are written in a second, quite different layout: HES column names in another order,
`;` delimited, windows-1252 with CRLF line endings, HES date styles, dotless ICD-10 codes with an X
filler, "-" for no operation, 20 diagnosis and 24 procedure positions, and a few columns no spec maps.

Every row and every value is carried through: a value the converter does not recognise (an
impossible date, an unknown code, stray spaces) is written as it came, so that validation quarantines
the same rows in both layouts and the store and marts agree.
"""

from __future__ import annotations

import csv
import datetime
import random
import re
from collections.abc import Sequence
from pathlib import Path

from ldm.feeds.codes import OPCS4_SHAPE, reference_values

DIAGNOSIS_POSITIONS = 20
OPERATION_POSITIONS = 24
NO_OPERATION = "-"  # HES OPERTN_01 when the episode had no operation or procedure
EXTRA_CODE_SHARE = 0.1  # rows given additional codes when extra_codes=True
# Columns HES extracts carry that the feed spec does not map; the site name is not ASCII on purpose.
ADMISSION_SOURCE = "19"  # usual place of residence
EPISODE_ORDER = "01"
SITE_OF_TREATMENT = "St James’s University Hospital"  # U+2019, byte 0x92 in windows-1252
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

DIAGNOSIS_COLUMNS = tuple(f"DIAG_{i:02d}" for i in range(1, DIAGNOSIS_POSITIONS + 1))
OPERATION_COLUMNS = tuple(f"OPERTN_{i:02d}" for i in range(1, OPERATION_POSITIONS + 1))
HEADER = (
    "PROCODE3", "SITETRET", "EPIKEY", "EPIORDER", "ADMIDATE", "DISDATE", "ADMIMETH", "ADMISORC",
    "NEWNHSNO", "LOPATID", "DOB", "SEX", "HOMEADD", *DIAGNOSIS_COLUMNS, *OPERATION_COLUMNS,
)  # fmt: skip
SOURCE_DIAGNOSES = ("PRIMARY_DIAGNOSIS_ICD", *(f"SECONDARY_DIAGNOSIS_ICD_{i}" for i in range(1, 5)))
SOURCE_OPERATIONS = ("PRIMARY_PROCEDURE_OPCS", "SECONDARY_PROCEDURE_OPCS_1")
SOURCE_COLUMNS = (
    "SPELL_ID", "NHS_NUMBER", "LOCAL_PATIENT_ID", "ORG_CODE_LOCAL_PATIENT_ID", "PERSON_BIRTH_DATE",
    "SEX", "POSTCODE_USUAL_ADDRESS", "PROVIDER_CODE", "START_DATE_HOSPITAL_PROVIDER_SPELL",
    "DISCHARGE_DATE_HOSPITAL_PROVIDER_SPELL", "ADMISSION_METHOD", *SOURCE_DIAGNOSES, *SOURCE_OPERATIONS,
)  # fmt: skip

# As lenient as the loader's try_strptime('%Y-%m-%d') after trim: DuckDB takes one-digit months and days.
_ISO_DATE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
_ICD10_CATEGORY = re.compile(r"[A-Z][0-9]{2}")  # a three-character code, which HES fills with an X


def _iso_date(value: str) -> datetime.date | None:
    """The date an input text names, or None when it is not a real %Y-%m-%d date.

    Surrounding spaces are ignored because the loader trims before parsing: a date it would accept
    must be converted, and anything else (30 February, a blank) passed through for it to reject.
    """
    match = _ISO_DATE.fullmatch(value.strip())
    if match is None:
        return None
    try:
        return datetime.date(*(int(part) for part in match.groups()))
    except ValueError:
        return None


def hes_date(value: str) -> str:
    """dd-MMM-yyyy (21-Jul-2023), as HES writes ADMIDATE and DISDATE; a non-date is left unchanged.

    Month names come from a fixed table, not strftime's %b, so the output does not depend on locale.
    """
    date = _iso_date(value)
    if date is None:
        return value
    return f"{date.day:02d}-{MONTHS[date.month - 1]}-{date.year:04d}"


def hes_birth_date(value: str) -> str:
    """yyyymmdd (19480617), as HES writes DOB; a non-date is left unchanged for validation to see."""
    date = _iso_date(value)
    return value if date is None else f"{date.year:04d}{date.month:02d}{date.day:02d}"


def hes_icd10(code: str) -> str:
    """An ICD-10 code as HES writes it: no dot, and a three-character code filled with X (I10X).

    Only a clean three-character code is filled, so that ldm's code cleaning (trim, upper-case, drop
    the dot and a trailing X filler) gives the same code from either layout; anything else keeps its
    characters for validation to judge.
    """
    code = code.replace(".", "")
    return code + "X" if _ICD10_CATEGORY.fullmatch(code) else code


def hes_opcs4(code: str) -> str:
    """An OPCS-4 code as HES writes it: without a dot (W40.1 -> W401)."""
    return code.replace(".", "")


def hes_diagnoses(codes: Sequence[str]) -> list[str]:
    """DIAG_01..DIAG_20 from the primary and secondary diagnoses, in order; unused positions empty."""
    if len(codes) > DIAGNOSIS_POSITIONS:
        raise ValueError(f"{len(codes)} diagnoses do not fit {DIAGNOSIS_POSITIONS} positions")
    return [hes_icd10(code) for code in codes] + [""] * (DIAGNOSIS_POSITIONS - len(codes))


def hes_operations(codes: Sequence[str]) -> list[str]:
    """OPERTN_01..OPERTN_24 from the primary and secondary procedures; "-" first when there are none.

    HES marks a spell without any operation with "-" in OPERTN_01 rather than leaving it blank; a
    blank primary beside a filled secondary is kept blank, as it came.
    """
    if len(codes) > OPERATION_POSITIONS:
        raise ValueError(f"{len(codes)} procedures do not fit {OPERATION_POSITIONS} positions")
    positions = [hes_opcs4(code) for code in codes] + [""] * (OPERATION_POSITIONS - len(codes))
    if not any(code.strip() for code in codes):
        positions[0] = NO_OPERATION
    return positions


def _icd10_key(code: str) -> str:
    """The code as ldm's cleaning leaves it (ldm.feeds.codes.clean_code), to look up in the dictionary."""
    code = code.strip().upper().replace(".", "")
    return code[:3] if len(code) == 4 and code.endswith("X") and _ICD10_CATEGORY.fullmatch(code[:3]) else code


def _code_pools(source: Path) -> tuple[list[str], list[str]]:
    """Valid ICD-10 and OPCS-4 codes that occur in the input's code columns, HES-formatted and sorted.

    Read in a first streaming pass. Codes are checked as validation will check them (in ldm's ICD-10
    dictionary; OPCS-4 shaped), because the input also holds deliberately unknown codes that must not
    spread to other rows.
    """
    dictionary = reference_values("icd10")
    diagnoses, operations = set(), set()
    with source.open(newline="", encoding="utf-8-sig") as handle:
        for row in csv.DictReader(handle):
            for column in SOURCE_DIAGNOSES:
                key = _icd10_key(row[column])
                if key in dictionary:
                    diagnoses.add(hes_icd10(key))
            for column in SOURCE_OPERATIONS:
                key = row[column].strip().upper().replace(".", "")
                if re.fullmatch(OPCS4_SHAPE, key):
                    operations.add(key)
    return sorted(diagnoses), sorted(operations)


def _draw(rng: random.Random, pool: list[str], present: list[str], count: int) -> list[str]:
    """`count` codes from `pool`, none already in the row while the pool allows (else with repeats)."""
    fresh = [code for code in pool if code not in present]
    if len(fresh) >= count:
        return rng.sample(fresh, count)
    return [rng.choice(pool) for _ in range(count)]


def _filled(positions: list[str]) -> int:
    """How many leading positions hold a code; extra codes go after them, so a row never has a gap."""
    last = max((i for i, code in enumerate(positions) if code.strip()), default=-1)
    return last + 1


class _ExtraCodes:
    """Adds further diagnoses and procedures to about one row in ten, reproducibly from a seed.

    The first rows that can take them are filled to DIAG_20 and to OPERTN_24, so that every position
    is exercised. Procedures are only added to a spell that has one (never after "-"), and only after
    the last filled position, never into a gap.
    """

    def __init__(self, pools: tuple[list[str], list[str]], seed: int):
        self.diagnoses, self.operations = pools
        self.rng = random.Random(seed)
        self.full_diagnoses_due = self.full_operations_due = True

    def extend(self, diagnoses: list[str], operations: list[str]) -> None:
        chosen = self.rng.random() < EXTRA_CODE_SHARE  # drawn for every row: the stream stays aligned
        diagnosis_at = _filled(diagnoses)
        operation_at = _filled(operations) if operations[0] not in ("", NO_OPERATION) else 0
        can_diagnose = bool(self.diagnoses) and 0 < diagnosis_at < DIAGNOSIS_POSITIONS
        can_operate = bool(self.operations) and 0 < operation_at < OPERATION_POSITIONS
        if can_diagnose and (chosen or self.full_diagnoses_due):
            full = self.full_diagnoses_due
            end = DIAGNOSIS_POSITIONS if full else self.rng.randint(diagnosis_at + 1, DIAGNOSIS_POSITIONS)
            diagnoses[diagnosis_at:end] = _draw(self.rng, self.diagnoses, diagnoses, end - diagnosis_at)
            self.full_diagnoses_due = False
        if can_operate and (chosen or self.full_operations_due):
            full = self.full_operations_due
            end = OPERATION_POSITIONS if full else self.rng.randint(operation_at + 1, OPERATION_POSITIONS)
            operations[operation_at:end] = _draw(self.rng, self.operations, operations, end - operation_at)
            self.full_operations_due = False


def write_hes_apc(source: Path, target: Path, *, extra_codes: bool = False, seed: int = 0) -> None:
    """Rewrite a built-in APC extract (`source`) as a HES-style one (`target`), row by row.

    ORG_CODE_LOCAL_PATIENT_ID has no HES column: LOPATID is issued by PROCODE3, so a row whose issuer
    differs from its provider is refused rather than silently reattributed. With `extra_codes`, some
    rows also get additional valid codes at later positions (a first pass collects them from the
    input); the same `seed` always gives the same bytes.
    """
    source, target = Path(source), Path(target)
    extra = _ExtraCodes(_code_pools(source), seed) if extra_codes else None
    with (
        source.open(newline="", encoding="utf-8-sig") as inp,
        target.open("w", newline="", encoding="cp1252") as out,
    ):
        reader = csv.DictReader(inp)
        missing = [name for name in SOURCE_COLUMNS if name not in (reader.fieldnames or ())]
        if missing:
            raise ValueError(f"{source}: not a built-in APC extract (no column {', '.join(missing)})")
        writer = csv.writer(out, delimiter=";", lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
        writer.writerow(HEADER)
        for row in reader:
            line = reader.line_num
            if None in row or None in row.values():
                raise ValueError(f"{source}, line {line}: the row does not have one value per column")
            if row["ORG_CODE_LOCAL_PATIENT_ID"] != row["PROVIDER_CODE"]:
                raise ValueError(
                    f"{source}, line {line}: local patient id issued by {row['ORG_CODE_LOCAL_PATIENT_ID']!r}, "
                    f"not by the provider {row['PROVIDER_CODE']!r}; HES has no column for the issuer"
                )
            diagnoses = hes_diagnoses([row[column] for column in SOURCE_DIAGNOSES])
            operations = hes_operations([row[column] for column in SOURCE_OPERATIONS])
            if extra is not None:
                extra.extend(diagnoses, operations)
            writer.writerow(
                (
                    row["PROVIDER_CODE"],
                    SITE_OF_TREATMENT,
                    row["SPELL_ID"],
                    EPISODE_ORDER,
                    hes_date(row["START_DATE_HOSPITAL_PROVIDER_SPELL"]),
                    hes_date(row["DISCHARGE_DATE_HOSPITAL_PROVIDER_SPELL"]),
                    row["ADMISSION_METHOD"],
                    ADMISSION_SOURCE,
                    row["NHS_NUMBER"],
                    row["LOCAL_PATIENT_ID"],
                    hes_birth_date(row["PERSON_BIRTH_DATE"]),
                    row["SEX"],
                    row["POSTCODE_USUAL_ADDRESS"],
                    *diagnoses,
                    *operations,
                )
            )
