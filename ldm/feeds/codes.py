"""Clinical and administrative code systems: how codes are cleaned and which values exist.

Cleaning is applied to distinct values (a few thousand codes, however many rows), and the same
cleaned codes are validated and written to the pseudonymised extract.
"""

from __future__ import annotations

import csv
from functools import cache

import pyarrow as pa
import pyarrow.compute as pc

from ldm.identifiers.normalise import empty_to_null
from ldm.reference import reference_path

# NHS data dictionary value sets for the small administrative code systems.
VALUE_SETS: dict[str, tuple[str, ...]] = {
    "admission_method": ("11", "12", "13", "21", "22", "23", "24", "25", "2A", "2B", "2C", "2D", "28",
                         "31", "32", "81", "82", "83", "98", "99"),
    "treatment_function": ("100", "101", "110", "120", "130", "300", "301", "320", "330", "340", "361",
                           "400", "410", "420", "430", "502"),
    "first_attendance": ("1", "2", "3", "4", "5"),
    "attendance_status": ("0", "2", "3", "4", "5", "6", "7"),
    "ethnic_category": (*tuple("ABCDEFGHJKLMNPRSZ"), "99"),
    "attended_yn": ("Y", "N", "C"),
    # ONS place-of-death categories (mortality statistics): the usual residence, a care home, a
    # hospital, a hospice, another communal establishment, anywhere else (a street, a workplace).
    "place_of_death": ("HOME", "CARE_HOME", "HOSPITAL", "HOSPICE", "OTHER_COMMUNAL", "ELSEWHERE"),
}  # fmt: skip
REFERENCE_LISTS = {
    "icd10": ("icd10_codes.csv", "code"),
    "gp_practice": ("leeds_practices_2023_pcn_imd.csv", "org_code"),
}
OPCS4_SHAPE = r"^[A-Z][0-9]{2}[0-9]?$"

_VERHOEFF_D = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9), (1, 2, 3, 4, 0, 6, 7, 8, 9, 5), (2, 3, 4, 0, 1, 7, 8, 9, 5, 6),
    (3, 4, 0, 1, 2, 8, 9, 5, 6, 7), (4, 0, 1, 2, 3, 9, 5, 6, 7, 8), (5, 9, 8, 7, 6, 0, 4, 3, 2, 1),
    (6, 5, 9, 8, 7, 1, 0, 4, 3, 2), (7, 6, 5, 9, 8, 2, 1, 0, 4, 3), (8, 7, 6, 5, 9, 3, 2, 1, 0, 4),
    (9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
)  # fmt: skip
_VERHOEFF_P = ((0, 1, 2, 3, 4, 5, 6, 7, 8, 9), (1, 5, 7, 6, 2, 8, 3, 0, 9, 4))


def _verhoeff_permutation(position: int, digit: int) -> int:
    for _ in range(position % 8):
        digit = _VERHOEFF_P[1][digit]
    return digit


def snomed_concept_id_is_valid(code: str | None) -> bool:
    """SNOMED CT ids: 6-18 digits ending in a Verhoeff check digit (partition digits not checked)."""
    if code is None or not code.isdigit() or not 6 <= len(code) <= 18 or code[0] == "0":
        return False
    check = 0
    for position, char in enumerate(reversed(code)):
        check = _VERHOEFF_D[check][_verhoeff_permutation(position, int(char))]
    return check == 0


def clean_code(
    values: pa.Array, code_system: str | None, strip_characters: str = "", max_length: int | None = None
) -> pa.Array:
    """Trim and upper-case; ICD-10 and OPCS-4 also lose their dot and ICD-10 its 'X' filler (R55X).

    A provider's spec may also remove characters (HES's "-" and dagger/asterisk marks) and cut
    codes to a length (a 5-character ICD-10 field to the 4 characters the code lists hold), in
    that order, before the dot and the filler go.
    """
    cleaned = pc.utf8_upper(pc.utf8_trim_whitespace(values))
    for character in dict.fromkeys(strip_characters.upper()):
        cleaned = pc.replace_substring(cleaned, character, "")
    if code_system in ("icd10", "opcs4"):
        cleaned = pc.replace_substring(cleaned, ".", "")
    if max_length:
        cleaned = pc.utf8_slice_codeunits(cleaned, 0, max_length)
    if code_system == "icd10":
        cleaned = pc.replace_substring_regex(cleaned, r"^([A-Z][0-9]{2})X$", r"\1")
    return empty_to_null(cleaned)


def clean_column(values: pa.Array, column) -> pa.Array:
    """`clean_code` with a spec column's code system and options (a `ldm.feeds.spec.Column`)."""
    return clean_code(values, column.code_system, column.strip_characters, column.max_length)


@cache
def reference_values(code_system: str) -> frozenset[str]:
    file_name, column = REFERENCE_LISTS[code_system]
    with reference_path(file_name).open(newline="", encoding="utf-8-sig") as handle:
        return frozenset(row[column].strip().upper() for row in csv.DictReader(handle))
