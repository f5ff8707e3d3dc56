"""Each column type of a feed spec, defined once: how it is checked, what crosses the seam, its tokens.

The reader, validation, pseudonymisation and `ldm.linkage.link_tables` all take a type's
behaviour from here, so an NHS number is normalised, judged and tokenised the same way wherever
it is read: the seam and `link_tables` give the same tokens for the same identifiers (a test
shows it). A new type is an entry in TYPES, not a branch in four modules.

- `rules`: the Great Expectations rules every column of the type gets (ldm.validate.suites adds
  "required" and the rules across columns).
- `check`: the value validation judges for a distinct raw text (a code cleaned, a postcode
  normalised), so that rules see what the seam will hold.
- `payload`: the SQL of a non-identifier's value in the seam file, from its raw text.
- `tokens`: an identifier's outputs (keyed tokens and coarse derived values), named as both the
  seam and the linkage engine expect them. Identifiers never cross the seam themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from ldm.feeds.codes import OPCS4_SHAPE, VALUE_SETS, clean_column
from ldm.identifiers import normalise
from ldm.identifiers.tokens import tokenise

Array = pa.Array | pa.ChunkedArray
UK_POSTCODE = r"^[A-Z]{1,2}[0-9][A-Z0-9]? [0-9][A-Z]{2}$"
SEX_CODES = ["M", "F", "U", "I", "X", "1", "2", "9", "0", "MALE", "FEMALE"]
EARLIEST = {"date_of_birth": 18700101}  # yyyymmdd: nobody in the records was born before
EARLIEST_EVENT = 19000101
TODAY = {"$PARAMETER": "today_yyyymmdd"}  # supplied at run time: dates may not be in the future


def expectation(kind: str, column: str, rule: str, critical: bool, **kwargs) -> dict:
    """One rule of a suite document: a GX expectation, its severity and the words a report shows."""
    return {
        "type": kind,
        "kwargs": {"column": column, **kwargs},
        "severity": "critical" if critical else "warning",
        "meta": {"rule": rule},
    }


def days_column(column: str) -> str:
    """Name of the derived check column holding a date as yyyymmdd."""
    return f"{column}__yyyymmdd"


def _integer_rules(column) -> list[dict]:
    return [expectation("expect_column_values_to_match_regex", column.name, f"{column.name} is not a whole number",
                        column.required, regex=r"^\s*[0-9]+\s*$")]  # fmt: skip


def _decimal_rules(column) -> list[dict]:
    return [expectation("expect_column_values_to_match_regex", column.name, f"{column.name} is not a number",
                        False, regex=r"^\s*-?[0-9]+(?:\.[0-9]+)?\s*$")]  # fmt: skip


def _date_rules(column) -> list[dict]:
    name = column.name
    return [
        expectation("expect_column_values_to_match_strftime_format", name,
                    f"{name} is not a real date in the form {column.format}", True,
                    strftime_format=column.format),
        expectation("expect_column_values_to_be_between", days_column(name),
                    f"{name} is in the future or implausibly early", True,
                    min_value=EARLIEST.get(name, EARLIEST_EVENT), max_value=TODAY),
    ]  # fmt: skip


def _nhs_number_rules(column) -> list[dict]:
    return [expectation("expect_column_values_to_be_valid_nhs_numbers", column.name,
                        f"{column.name} fails the NHS number format or Modulus 11 check (kept, not used to link)",
                        False)]  # fmt: skip


def _postcode_rules(column) -> list[dict]:
    return [expectation("expect_column_values_to_match_regex", column.name,
                        f"{column.name} is not shaped like a UK postcode (kept as text)", False,
                        regex=UK_POSTCODE)]  # fmt: skip


def _sex_rules(column) -> list[dict]:
    return [expectation("expect_column_values_to_be_in_set", column.name, f"{column.name} is not a known sex code",
                        False, value_set=SEX_CODES)]  # fmt: skip


def _code_rules(column) -> list[dict]:
    name, system, blocking = column.name, column.code_system, column.required
    if system == "snomed_ct":
        return [expectation("expect_column_values_to_be_valid_snomed_concept_ids", name,
                            f"{name} is not a valid SNOMED CT concept id (Verhoeff check)", blocking)]  # fmt: skip
    if system in ("icd10", "gp_practice"):
        what = "an ICD-10 code in the dictionary" if system == "icd10" else "a known Leeds GP practice"
        return [expectation("expect_column_values_to_be_in_code_system", name, f"{name} is not {what}",
                            blocking, code_system=system)]  # fmt: skip
    if system == "opcs4":
        return [expectation("expect_column_values_to_match_regex", name,
                            f"{name} is not shaped like an OPCS-4 code", blocking, regex=OPCS4_SHAPE)]  # fmt: skip
    return [expectation("expect_column_values_to_be_in_set", name, f"{name} is not a valid {system} code",
                        blocking, value_set=list(VALUE_SETS[system]))]  # fmt: skip


def _no_rules(column) -> list[dict]:
    return []


def _trimmed(keys: Array, column) -> Array:
    return pc.utf8_trim_whitespace(keys)


def _upper(keys: Array, column) -> Array:
    return pc.utf8_upper(pc.utf8_trim_whitespace(keys))


def nhs_number_tokens(values: Array, key: bytes, name: str = "nhs_number") -> dict[str, Array]:
    """The NHS number's token (of its normalised ten digits) and whether it passes Modulus 11."""
    return {
        f"{name}_token": tokenise(normalise.nhs_number(values), "nhs_number", key),
        f"{name}_valid": normalise.nhs_number_is_valid(values),
    }


def local_id_tokens(
    values: Array, issuers: Array | str, key: bytes, name: str = "local_id"
) -> dict[str, Array]:
    """A local patient id's token, qualified by its issuing organisation ("ORG:ID")."""
    return {f"{name}_token": tokenise(normalise.local_patient_id(values, issuers), "local_patient_id", key)}


def date_of_birth_tokens(born: Array, key: bytes) -> dict[str, Array]:
    """The birth date's token, and its year and month (the only parts that cross the seam)."""
    return {
        "date_of_birth_token": tokenise(pc.cast(born, pa.string()), "date_of_birth", key),
        "year_of_birth": pc.year(born),
        "month_of_birth": pc.month(born),
    }


def postcode_tokens(values: Array, key: bytes) -> dict[str, Array]:
    """The postcode's token and its district's (the areas it lies in are looked up beside them).

    The district comes from the text as sent, so a partial postcode ("LS1") still gives one.
    """
    return {
        "postcode_token": tokenise(normalise.postcode(values), "postcode", key),
        "postcode_district_token": tokenise(normalise.postcode_district(values), "postcode_district", key),
    }


def name_tokens(values: Array, key: bytes, name: str) -> dict[str, Array]:
    """A name's token, its NYSIIS code's and its initial's, so that spelling variants can still link."""
    cleaned = normalise.name(values)
    return {
        f"{name}_token": tokenise(cleaned, name, key),
        f"{name}_phonetic_token": tokenise(normalise.nysiis(cleaned), f"{name}_nysiis", key),
        f"{name}_initial_token": tokenise(normalise.initial(cleaned), f"{name}_initial", key),
    }


def sex_values(values: Array) -> dict[str, Array]:
    return {"sex": normalise.sex(values)}


@dataclass(frozen=True)
class ColumnType:
    name: str
    identifier: bool = False  # never crosses the seam: only its tokens and coarse values do
    # The rules of a column of this type (a suite's expectations; "required" is added for any type).
    rules: Callable[[object], list[dict]] = _no_rules
    # The value validation judges for each distinct raw text (None: the text as it is).
    check: Callable[[Array, object], Array] | None = None
    # SQL of the seam value from the raw text's SQL (None: derived through a lookup instead).
    payload: Callable[[str], str] | None = None


TYPES: dict[str, ColumnType] = {
    "text": ColumnType("text", payload=lambda raw: f"nullif(trim({raw}), '')"),
    "integer": ColumnType(
        "integer", rules=_integer_rules, payload=lambda raw: f"try_cast(trim({raw}) as bigint)"
    ),
    "decimal": ColumnType(
        "decimal", rules=_decimal_rules, payload=lambda raw: f"try_cast(trim({raw}) as double)"
    ),
    "date": ColumnType(
        "date", rules=_date_rules, check=_trimmed
    ),  # parsed once per distinct text by a lookup
    "datetime": ColumnType("datetime", rules=_date_rules, check=_trimmed),
    "code": ColumnType("code", rules=_code_rules, check=lambda keys, column: clean_column(keys, column)),
    "sex": ColumnType("sex", rules=_sex_rules, check=_upper),  # normalised by a lookup (sex_values)
    "nhs_number": ColumnType("nhs_number", identifier=True, rules=_nhs_number_rules),
    "local_id": ColumnType("local_id", identifier=True),
    "postcode": ColumnType(
        "postcode",
        identifier=True,
        rules=_postcode_rules,
        check=lambda keys, column: normalise.postcode(keys),
    ),
    "name": ColumnType("name", identifier=True),
}
IDENTIFIER_TYPES = frozenset(name for name, kind in TYPES.items() if kind.identifier)
