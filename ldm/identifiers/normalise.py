"""Normalisation of identifiers before they are tokenised: the rules, one per identifier.

Two records of one person give the same token only if their identifiers normalise to the same
text, so these rules decide which spelling variants can link. They are applied to whole columns
(pyarrow compute kernels, or a Python function over the distinct values only), never row by row.
Every function returns null for a value it cannot normalise; the caller counts those, nothing is
dropped here. Every function is idempotent: normalising a normalised value changes nothing.

NHS number (`nhs_number`, `nhs_number_is_valid`)
    Whitespace (including non-breaking spaces), punctuation and symbols are removed, so
    "943 476 5919", "943-476-5919" and "(943)4765919" all become "9434765919". What is left
    must be exactly ten ASCII digits, otherwise null: letters are never dropped to make a
    number. Integer input is zero-padded to ten digits. Validity is checked separately by the
    Modulus 11 rule of the NHS Data Dictionary: digits 1-9 are weighted 10 down to 2, the
    check digit is 11 minus the weighted sum modulo 11 (11 becomes 0), and a stem whose check
    digit would be 10 is never issued, so such a number is invalid. Note that numbers of ten
    equal digits (0000000000, 9999999999) pass Modulus 11; they are common placeholders, and
    linkage should not rely on them alone.

Local patient identifier (`local_patient_id`)
    Trimmed, upper-cased and prefixed by the issuing organisation's ODS code (trimmed,
    upper-cased, letters and digits only) as "ORG:ID", because a local number is only unique
    within the organisation that issued it. Internal spaces are kept. Null if either part is
    missing or empty, or if the organisation code has other characters.

Date of birth (`date_of_birth`)
    Accepts yyyy-mm-dd (ISO 8601), yyyymmdd (its basic form, common in NHS flat files) and
    dd/mm/yyyy (day and month may have one digit), after trimming; other formats, two-digit
    years and month/day order (mm/dd/yyyy) are not guessed. yyyymmdd cannot be confused with
    ddmmyyyy: a year 19xx or 20xx in those places would be read as month 19 or 20, not a date.
    Output is a date. Impossible dates (30 February, 31 April, month 13) are null, not rolled
    over into the next month. Dates before 1 January 1870 or after today (or `latest`) are
    null, because nobody in the records can have been born then. Date-typed input is kept.

Sex (`sex`)
    Trimmed and upper-cased, then M, MALE, 1 -> "M" and F, FEMALE, 2 -> "F" (the NHS Person
    Stated Gender codes 1 and 2). Everything else, including U, 9 (not specified), 0 and X
    (not known) and I (indeterminate), is null: it carries no information to link on.

Postcode (`postcode`, `postcode_district`)
    Upper-cased and all whitespace removed; if the result has the shape of a UK postcode
    (outward code A9, A99, AA9, AA99, A9A or AA9A, then inward code 9AA) one space is put
    before the three-character inward code: " ls1  4ap" -> "LS1 4AP". A value of another shape
    is kept as the cleaned text (it may still agree with the same text in another feed, and a
    quality report can count it). The district is the outward code ("LS1"), taken from a
    recognised postcode or from a value that is an outward code alone; otherwise null.

Names (`name`, `initial`, `nysiis`)
    Accents are removed (Unicode NFKD decomposition, combining marks dropped; ß -> SS,
    Æ -> AE, Ø -> O, Œ -> OE, Ł -> L, Đ -> D, Þ -> TH), then the text is upper-cased and
    everything that is not a letter A-Z is removed, including spaces, hyphens and apostrophes:
    "O'Neill", "O Neill" and "ONEILL" all give "ONEILL", and "Smith-Jones" and "Smith Jones"
    both give "SMITHJONES", because systems differ in which of these characters they can store.
    Titles and suffixes are not removed: a name field should hold one name. Names written in
    a non-Latin script have no letters A-Z left and become null. `initial` is the first letter
    of the normalised name. `nysiis` is the NYSIIS phonetic code (New York State
    Identification and Intelligence System, 1970) of the normalised name, computed on distinct
    values and not truncated to six characters, so that spelling variants such as STEVENS and
    STEPHENS, or MACDONALD and MCDONALD, share a code.
"""

from __future__ import annotations

import datetime
import unicodedata
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

ArrayLike = pa.Array | pa.ChunkedArray

EARLIEST_BIRTH = datetime.date(1870, 1, 1)

_NHS_NUMBER_WEIGHTS = np.arange(10, 1, -1, dtype=np.int64)
_NOT_A_DIGIT_SEPARATOR = r"[\s\p{Z}\p{P}\p{S}]"
_TEN_DIGITS = r"^[0-9]{10}$"

_ISO_DATE = r"^(?P<year>[0-9]{4})-(?P<month>[0-9]{2})-(?P<day>[0-9]{2})$"
_UK_DATE = r"^(?P<day>[0-9]{1,2})/(?P<month>[0-9]{1,2})/(?P<year>[0-9]{4})$"
_COMPACT_DATE = r"^(?P<year>[0-9]{4})(?P<month>[0-9]{2})(?P<day>[0-9]{2})$"

_SEX_CODES = {"M": "M", "MALE": "M", "1": "M", "F": "F", "FEMALE": "F", "2": "F"}

_OUTWARD = r"[A-Z]{1,2}[0-9][A-Z0-9]?"
_INWARD = r"[0-9][A-Z]{2}"

# Letters that NFKD does not decompose into a base letter plus marks.
_LETTERS_WITHOUT_DECOMPOSITION = str.maketrans(
    {
        "ß": "SS",
        "ẞ": "SS",
        "Æ": "AE",
        "æ": "AE",
        "Ø": "O",
        "ø": "O",
        "Œ": "OE",
        "œ": "OE",
        "Ł": "L",
        "ł": "L",
        "Đ": "D",
        "đ": "D",
        "Þ": "TH",
        "þ": "TH",
        "ı": "I",
    }
)


def map_distinct(values: ArrayLike, function: Callable[[pa.Array], pa.Array]) -> ArrayLike:
    """Apply `function` to the distinct non-null values only, then spread results to every row.

    A column of tens of millions of rows has far fewer distinct identifiers, so work that cannot
    be a compute kernel (a Python function, a keyed hash) is done once per distinct value.
    `function` maps an array of distinct values to an array of the same length. A column that
    is already dictionary-encoded (Parquet read with read_dictionary) is used as it is.
    """
    if not pa.types.is_dictionary(values.type):
        encoded = pc.dictionary_encode(values)
    elif isinstance(values, pa.ChunkedArray):
        encoded = values.unify_dictionaries()  # as read from Parquet: already encoded
    else:
        encoded = values
    if isinstance(encoded, pa.ChunkedArray):
        if encoded.num_chunks == 0:
            value_type = encoded.type.value_type
            return pa.chunked_array([], type=function(pa.array([], type=value_type)).type)
        # The chunks share one dictionary (dictionary_encode grows one dictionary as it goes,
        # so the last chunk's holds every value).
        mapped = function(encoded.chunk(encoded.num_chunks - 1).dictionary)
        return pa.chunked_array([mapped.take(chunk.indices) for chunk in encoded.chunks], type=mapped.type)
    return function(encoded.dictionary).take(encoded.indices)


def _is_text(data_type: pa.DataType) -> bool:
    return pa.types.is_string(data_type) or pa.types.is_large_string(data_type)


def _as_string(values: ArrayLike) -> ArrayLike:
    """The column as strings (numbers and other types are cast to their text)."""
    if _is_text(values.type):
        return values
    if pa.types.is_dictionary(values.type) and _is_text(values.type.value_type):
        return values.cast(values.type.value_type)
    return pc.cast(values, pa.string())


def _as_distinct_strings(values: ArrayLike) -> ArrayLike:
    """Like _as_string, but a dictionary-encoded text column is kept for map_distinct."""
    if pa.types.is_dictionary(values.type) and _is_text(values.type.value_type):
        return values
    return _as_string(values)


def _as_text(values: ArrayLike) -> ArrayLike:
    """The column as strings, trimmed of surrounding whitespace."""
    return pc.utf8_trim_whitespace(_as_string(values))


def empty_to_null(values: ArrayLike) -> ArrayLike:
    """Empty text to null: an empty identifier or code is a missing one."""
    return pc.if_else(pc.equal(pc.utf8_length(values), 0), None, values)


def nhs_number(values: ArrayLike) -> ArrayLike:
    """Ten-digit NHS number text with separators removed, or null."""
    if pa.types.is_integer(values.type):
        return _ten_digits_or_null(pc.utf8_lpad(pc.cast(values, pa.string()), 10, "0"))
    cleaned = pc.replace_substring_regex(_as_text(values), _NOT_A_DIGIT_SEPARATOR, "")
    return _ten_digits_or_null(cleaned)


def _ten_digits_or_null(values: ArrayLike) -> ArrayLike:
    return pc.if_else(pc.match_substring_regex(values, _TEN_DIGITS), values, None)


def nhs_number_is_valid(values: ArrayLike) -> pa.BooleanArray:
    """True where a value normalises to an NHS number that passes Modulus 11; never null."""
    numbers = pc.cast(nhs_number(values), pa.string())
    if isinstance(numbers, pa.ChunkedArray):
        numbers = numbers.combine_chunks()
    if len(numbers) == 0:
        return pa.array([], type=pa.bool_())
    well_formed = pc.is_valid(numbers).to_numpy(zero_copy_only=False)
    # Fill malformed rows with a fixed ten-digit text, so every value is ten bytes long and the
    # data buffer can be viewed as an (n, 10) matrix of ASCII digits.
    filled = pc.fill_null(numbers, "0000000000")
    offsets = np.frombuffer(filled.buffers()[1], dtype=np.int32)
    offsets = offsets[filled.offset : filled.offset + len(filled) + 1]
    data = np.frombuffer(filled.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
    digits = data.reshape(-1, 10).astype(np.int64) - ord("0")
    remainder = (digits[:, :9] @ _NHS_NUMBER_WEIGHTS) % 11
    check = (11 - remainder) % 11  # a remainder of 0 gives check digit 0, not 11
    valid = well_formed & (check != 10) & (check == digits[:, 9])
    return pa.array(valid, type=pa.bool_())


def local_patient_id(values: ArrayLike, organisation: ArrayLike | str) -> ArrayLike:
    """ "ORG:ID": the local identifier qualified by the ODS code of the organisation issuing it."""
    local = empty_to_null(pc.utf8_upper(_as_text(values)))
    if isinstance(organisation, str):
        organisation = pa.scalar(organisation, pa.string())
    code = pc.utf8_upper(pc.utf8_trim_whitespace(organisation))
    code = pc.if_else(pc.match_substring_regex(code, "^[A-Z0-9]+$"), code, None)
    return pc.binary_join_element_wise(code, local, ":")


def date_of_birth(
    values: ArrayLike,
    *,
    earliest: datetime.date = EARLIEST_BIRTH,
    latest: datetime.date | None = None,
) -> ArrayLike:
    """ISO, yyyymmdd or dd/mm/yyyy text (or dates) to a date; impossible or implausible ones to null."""
    latest = latest or datetime.date.today()
    if pa.types.is_date(values.type) or pa.types.is_timestamp(values.type):
        dates = pc.cast(values, pa.date32())
    else:
        text = _as_text(values)
        matches = [pc.extract_regex(text, p) for p in (_ISO_DATE, _UK_DATE, _COMPACT_DATE)]
        year, month, day = (
            pc.utf8_lpad(pc.coalesce(*(_group(m, part) for m in matches)), width, "0")
            for part, width in (("year", 4), ("month", 2), ("day", 2))
        )
        canonical = pc.binary_join_element_wise(year, month, day, "-")
        parsed = pc.cast(pc.strptime(canonical, "%Y-%m-%d", "s", error_is_null=True), pa.date32())
        # strptime rolls 30 February over to 1 or 2 March; a date that does not print back as
        # the text it was parsed from did not exist.
        exists = pc.equal(pc.cast(parsed, pa.string()), canonical)
        dates = pc.if_else(exists, parsed, None)
    plausible = pc.and_(
        pc.greater_equal(dates, pa.scalar(earliest, pa.date32())),
        pc.less_equal(dates, pa.scalar(latest, pa.date32())),
    )
    return pc.if_else(plausible, dates, None)


def _group(matches: ArrayLike, name: str) -> ArrayLike:
    """One named group of extract_regex, null where the pattern did not match."""
    return pc.if_else(pc.is_valid(matches), pc.struct_field(matches, name), None)


def sex(values: ArrayLike) -> ArrayLike:
    """ "M", "F" or null."""
    codes = pa.array(list(_SEX_CODES), type=pa.string())
    meanings = pa.array(list(_SEX_CODES.values()), type=pa.string())
    return pc.take(meanings, pc.index_in(pc.utf8_upper(_as_text(values)), value_set=codes))


def postcode(values: ArrayLike) -> ArrayLike:
    """Upper case with one space before the inward code; other shapes kept as cleaned text."""
    cleaned = pc.replace_substring_regex(pc.utf8_upper(_as_text(values)), r"[\s\p{Z}]+", "")
    spaced = pc.replace_substring_regex(cleaned, f"^({_OUTWARD})({_INWARD})$", r"\1 \2", max_replacements=1)
    return empty_to_null(spaced)


def postcode_district(values: ArrayLike) -> ArrayLike:
    """The outward code ("LS1") of a recognisable postcode or of an outward code alone."""
    cleaned = postcode(values)
    of_postcode = _group(pc.extract_regex(cleaned, f"^(?P<outward>{_OUTWARD}) {_INWARD}$"), "outward")
    alone = _group(pc.extract_regex(cleaned, f"^(?P<outward>{_OUTWARD})$"), "outward")
    return pc.coalesce(of_postcode, alone)


def name(values: ArrayLike) -> ArrayLike:
    """Upper-case letters A-Z only, accents removed; null if no letter is left."""
    return map_distinct(_as_distinct_strings(values), _name_of_distinct)


def _name_of_distinct(distinct: pa.Array) -> pa.Array:
    non_ascii = pc.invert(pc.string_is_ascii(distinct))
    if pc.any(non_ascii).as_py():
        folded = [_fold_to_ascii(text) for text in pc.filter(distinct, non_ascii).to_pylist()]
        distinct = pc.replace_with_mask(distinct, non_ascii, pa.array(folded, distinct.type))
    letters = pc.replace_substring_regex(pc.utf8_upper(distinct), "[^A-Z]+", "")
    return empty_to_null(letters)


def _fold_to_ascii(text: str) -> str:
    """Accented Latin letters to their base letters; other scripts are left for removal."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_LETTERS_WITHOUT_DECOMPOSITION))
    return "".join(char for char in decomposed if not unicodedata.combining(char))


def initial(values: ArrayLike) -> ArrayLike:
    """First letter of the normalised name (a forename initial), or null."""
    return map_distinct(
        _as_distinct_strings(values),
        lambda distinct: pc.utf8_slice_codeunits(_name_of_distinct(distinct), 0, 1),
    )


def nysiis(values: ArrayLike) -> ArrayLike:
    """NYSIIS phonetic code of the normalised name, computed once per distinct name."""
    return map_distinct(_as_distinct_strings(values), _nysiis_of_distinct)


def _nysiis_of_distinct(distinct: pa.Array) -> pa.Array:
    names = _name_of_distinct(distinct).to_pylist()
    return pa.array([None if text is None else nysiis_code(text) for text in names], pa.string())


_VOWELS = frozenset("AEIOU")
_NYSIIS_PREFIXES = (("MAC", "MCC"), ("KN", "NN"), ("K", "C"), ("PH", "FF"), ("PF", "FF"))
_NYSIIS_PREFIXES += (("SCH", "SSS"),)
_NYSIIS_SUFFIXES = (("EE", "Y"), ("IE", "Y"), ("DT", "D"), ("RT", "D"), ("RD", "D"))
_NYSIIS_SUFFIXES += (("NT", "D"), ("ND", "D"))


def nysiis_code(text: str) -> str:
    """NYSIIS code of one normalised name (letters A-Z), following the original 1970 rules.

    The name is rewritten in place as the scan moves along it, so a rewritten letter is what
    the later rules see as the "preceding letter"; a letter equal to the last one in the code
    is not repeated.
    """
    if not text:
        return ""
    for old, new in _NYSIIS_PREFIXES:
        if text.startswith(old):
            text = new + text[len(old) :]
            break
    for old, new in _NYSIIS_SUFFIXES:
        if text.endswith(old):
            text = text[: -len(old)] + new
            break
    letters = list(text)
    code = [letters[0]]
    for i in range(1, len(letters)):
        here = letters[i]
        following = letters[i + 1] if i + 1 < len(letters) else ""
        if here == "E" and following == "V":
            letters[i : i + 2] = ["A", "F"]
        elif here in _VOWELS:
            letters[i] = "A"
        elif here in "QZM":
            letters[i] = {"Q": "G", "Z": "S", "M": "N"}[here]
        elif here == "K":
            letters[i] = "N" if following == "N" else "C"
        elif letters[i : i + 3] == ["S", "C", "H"]:
            letters[i : i + 3] = ["S", "S", "S"]
        elif here == "P" and following == "H":
            letters[i : i + 2] = ["F", "F"]
        elif _silent(here, letters[i - 1], following):
            letters[i] = letters[i - 1]
        if letters[i] != code[-1]:
            code.append(letters[i])
    result = "".join(code)
    if result.endswith("S") and len(result) > 1:
        result = result[:-1]
    if result.endswith("AY"):
        result = result[:-2] + "Y"
    if result.endswith("A") and len(result) > 1:
        result = result[:-1]
    return result


def _silent(letter: str, preceding: str, following: str) -> bool:
    """NYSIIS rules for H and W: they take the preceding letter's sound in these positions."""
    if letter == "H":
        return preceding not in _VOWELS or following not in _VOWELS
    return letter == "W" and preceding in _VOWELS
