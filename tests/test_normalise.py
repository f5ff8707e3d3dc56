"""Normalisation rules for identifiers, case by case, as documented in the module."""

from __future__ import annotations

import datetime
from collections.abc import Callable

import pyarrow as pa
import pytest

from ldm.identifiers import normalise

D = datetime.date
Normaliser = Callable[..., normalise.ArrayLike]
LATEST = D(2024, 6, 30)


def apply(function: Normaliser, values: list, **kwargs: object) -> list:
    return function(pa.array(values), **kwargs).to_pylist()


def modulus_11_check_digit(stem: str) -> int | None:
    """Check digit for a nine-digit stem, written from the NHS Data Dictionary; None if 10."""
    total = sum(int(digit) * weight for digit, weight in zip(stem, range(10, 1, -1), strict=True))
    check = 11 - total % 11
    if check == 11:
        return 0
    return None if check == 10 else check


TEST_STEMS = [f"{999_000_000 + n:09d}" for n in range(1, 200)]
VALID = [stem + str(check) for stem in TEST_STEMS if (check := modulus_11_check_digit(stem)) is not None]
STEMS_WITH_CHECK_10 = [stem for stem in TEST_STEMS if modulus_11_check_digit(stem) is None]


# NHS number -------------------------------------------------------------------------------------


def test_test_numbers_include_the_well_known_first_one() -> None:
    assert "9990000018" in VALID
    assert STEMS_WITH_CHECK_10, "the test range should include stems whose check digit is 10"


@pytest.mark.parametrize(
    "raw",
    [
        "9990000018",
        "999 000 0018",
        "999-000-0018",
        " 999 000 0018 ",
        "999.000.001 8",
        "(999) 000-0018",
        "999\u00a0000\u00a00018",
        "999\t000\t0018",
    ],
)
def test_nhs_number_separators_and_spaces_are_removed(raw: str) -> None:
    assert apply(normalise.nhs_number, [raw]) == ["9990000018"]


@pytest.mark.parametrize(
    "raw", ["", "   ", "999000001", "99900000188", "999000001A", "A999000001", "NHS9990000018", "-"]
)
def test_nhs_number_that_is_not_ten_digits_is_null(raw: str) -> None:
    assert apply(normalise.nhs_number, [raw]) == [None]


def test_nhs_number_null_stays_null_and_integers_are_zero_padded() -> None:
    assert apply(normalise.nhs_number, [None, "9990000018"]) == [None, "9990000018"]
    assert apply(normalise.nhs_number, [9990000018, 123456789, None]) == [
        "9990000018",
        "0123456789",
        None,
    ]


def test_nhs_number_modulus_11_accepts_computed_test_numbers() -> None:
    assert len(VALID) > 150
    assert apply(normalise.nhs_number_is_valid, VALID) == [True] * len(VALID)


def test_nhs_number_modulus_11_rejects_every_wrong_check_digit() -> None:
    wrong = [number[:9] + str(d) for number in VALID[:30] for d in range(10) if str(d) != number[9]]
    assert not any(apply(normalise.nhs_number_is_valid, wrong))


def test_nhs_number_with_check_digit_10_is_invalid_whatever_the_last_digit() -> None:
    numbers = [stem + str(d) for stem in STEMS_WITH_CHECK_10 for d in range(10)]
    assert not any(apply(normalise.nhs_number_is_valid, numbers))


def test_nhs_number_validity_after_formatting_and_for_missing_values() -> None:
    values = ["999 000 0018", "999-000-0018", None, "", "999000001", "9990000019", "x"]
    assert apply(normalise.nhs_number_is_valid, values) == [True, True] + [False] * 5


def test_nhs_number_transposed_digits_fail_modulus_11() -> None:
    number = "9990000018"
    swapped = number[:8] + number[9] + number[8]
    assert apply(normalise.nhs_number_is_valid, [number, swapped]) == [True, False]


def test_nhs_number_validity_on_chunked_and_sliced_input() -> None:
    chunked = pa.chunked_array([["x", "9990000018"], [None, "9990000019"]], pa.large_string())
    assert normalise.nhs_number_is_valid(chunked).to_pylist() == [False, True, False, False]
    sliced = pa.array(["bad", "9990000018", "9990000026", "9990000019"])[1:]
    expected = [True, modulus_11_check_digit("999000002") == 6, False]
    assert normalise.nhs_number_is_valid(sliced).to_pylist() == expected
    assert normalise.nhs_number_is_valid(pa.array([], pa.string())).to_pylist() == []


# Local patient identifier -----------------------------------------------------------------------


def test_local_patient_id_is_trimmed_upper_cased_and_qualified_by_organisation() -> None:
    ids = pa.array([" ab12345 ", "AB12345", "k 77", None, "   "])
    assert normalise.local_patient_id(ids, " rr8 ").to_pylist() == [
        "RR8:AB12345",
        "RR8:AB12345",
        "RR8:K 77",
        None,
        None,
    ]


def test_local_patient_id_with_an_organisation_per_row() -> None:
    ids = pa.array(["a1", "a1", "a1", "a1"])
    organisations = pa.array(["rr8", "b86001", None, "RR8:X"])
    assert normalise.local_patient_id(ids, organisations).to_pylist() == [
        "RR8:A1",
        "B86001:A1",
        None,
        None,
    ]


def test_local_patient_id_with_a_malformed_organisation_code_is_null() -> None:
    assert normalise.local_patient_id(pa.array(["a1"]), "R:R8").to_pylist() == [None]


# Date of birth ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1980-01-02", D(1980, 1, 2)),
        (" 1980-01-02 ", D(1980, 1, 2)),
        ("02/01/1980", D(1980, 1, 2)),
        ("2/1/1980", D(1980, 1, 2)),
        ("19800102", D(1980, 1, 2)),
        ("20000229", D(2000, 2, 29)),
        ("31/12/1999", D(1999, 12, 31)),
        ("2000-02-29", D(2000, 2, 29)),
        ("29/02/2016", D(2016, 2, 29)),
        ("1870-01-01", D(1870, 1, 1)),
        ("2024-06-30", D(2024, 6, 30)),
    ],
)
def test_date_of_birth_accepts_iso_and_day_month_year(raw: str, expected: D) -> None:
    assert apply(normalise.date_of_birth, [raw], latest=LATEST) == [expected]


@pytest.mark.parametrize(
    "raw",
    [
        "2021-02-29",  # not a leap year
        "1900-02-29",  # centuries are leap years only if divisible by 400
        "30/02/2000",
        "31/04/1980",
        "1980-13-01",
        "1980-00-10",
        "1980-01-00",
        "32/01/1980",
        "12/31/1980",  # month/day order is not guessed
        "1980-1-2",
        "80-01-02",
        "02/01/80",
        "1980/01/02",
        "02-01-1980",
        "02011980",  # ddmmyyyy: read as yyyymmdd it has month 19, so it is not a date
        "20210229",
        "1980012",
        "1980-01-02T00:00:00",
        "",
        "unknown",
        None,
    ],
)
def test_date_of_birth_impossible_or_unrecognised_is_null(raw: str | None) -> None:
    assert apply(normalise.date_of_birth, [raw], latest=LATEST) == [None]


def test_date_of_birth_outside_the_plausible_range_is_null() -> None:
    values = ["1869-12-31", "2024-07-01", "2999-01-01", "0001-01-01"]
    assert apply(normalise.date_of_birth, values, latest=LATEST) == [None] * 4


def test_date_of_birth_defaults_to_no_later_than_today() -> None:
    tomorrow = datetime.date.today() + datetime.timedelta(days=1)
    assert apply(normalise.date_of_birth, [tomorrow.isoformat()]) == [None]


def test_date_of_birth_keeps_dates_and_checks_their_range() -> None:
    values = pa.array([D(1980, 1, 2), D(1800, 1, 1), None], pa.date32())
    result = normalise.date_of_birth(values, latest=LATEST)
    assert result.type == pa.date32()
    assert result.to_pylist() == [D(1980, 1, 2), None, None]


# Sex --------------------------------------------------------------------------------------------


def test_sex_codes_and_words_map_to_m_f_or_null() -> None:
    values = ["M", "m", " male ", "MALE", "1", "F", "f", "Female", "2"]
    assert apply(normalise.sex, values) == ["M"] * 5 + ["F"] * 4
    unknown = ["U", "u", "9", "0", "X", "I", "", "unknown", "3", None]
    assert apply(normalise.sex, unknown) == [None] * len(unknown)


def test_sex_accepts_integer_codes() -> None:
    assert apply(normalise.sex, [1, 2, 9, 0, None]) == ["M", "F", None, None, None]


# Postcode ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected", "district"),
    [
        ("LS1 4AP", "LS1 4AP", "LS1"),
        ("ls1 4ap", "LS1 4AP", "LS1"),
        ("ls14ap", "LS1 4AP", "LS1"),
        ("  LS1   4AP ", "LS1 4AP", "LS1"),
        ("ls1\t4ap", "LS1 4AP", "LS1"),
        ("LS1\u00a04AP", "LS1 4AP", "LS1"),
        ("l s 1 4 a p", "LS1 4AP", "LS1"),
        ("m1 1aa", "M1 1AA", "M1"),  # A9
        ("M60 1NW", "M60 1NW", "M60"),  # A99
        ("cr2 6xh", "CR2 6XH", "CR2"),  # AA9
        ("LS28 7RJ", "LS28 7RJ", "LS28"),  # AA99
        ("w1a 1hq", "W1A 1HQ", "W1A"),  # A9A
        ("ec1a1bb", "EC1A 1BB", "EC1A"),  # AA9A
        ("ls1", "LS1", "LS1"),  # an outward code alone: kept, and it is a district
        ("ls1 4", "LS14", "LS14"),  # a sector is not recognised; LS14 is a district shape
        ("not known", "NOTKNOWN", None),  # unrecognised: kept as cleaned text
        ("LS1-4AP", "LS1-4AP", None),
        ("ZZ99 3VZ", "ZZ99 3VZ", "ZZ99"),  # the NHS pseudo postcode for no fixed abode
        ("", None, None),
        ("   ", None, None),
        (None, None, None),
    ],
)
def test_postcode_and_district(raw: str | None, expected: str | None, district: str | None) -> None:
    assert apply(normalise.postcode, [raw]) == [expected]
    assert apply(normalise.postcode_district, [raw]) == [district]


# Names ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Smith", "SMITH"),
        ("  smith ", "SMITH"),
        ("O'Neill", "ONEILL"),
        ("O\u2019Neill", "ONEILL"),  # typographic apostrophe
        ("o neill", "ONEILL"),
        ("Smith-Jones", "SMITHJONES"),
        ("Smith Jones", "SMITHJONES"),
        ("Zoë", "ZOE"),
        ("Renée", "RENEE"),
        ("Ren\u0065\u0301e", "RENEE"),  # decomposed accent
        ("Çelik", "CELIK"),
        ("Straße", "STRASSE"),
        ("Ærø", "AERO"),
        ("Øst", "OST"),
        ("Łaska", "LASKA"),
        ("St. Clair", "STCLAIR"),
        ("Smith2", "SMITH"),
        ("Ｓｍｉｔｈ", "SMITH"),  # full-width letters fold by NFKD
        ("Αλφα", None),  # no Latin letters left
        ("-", None),
        ("", None),
        (None, None),
    ],
)
def test_name_normalisation(raw: str | None, expected: str | None) -> None:
    assert apply(normalise.name, [raw]) == [expected]


def test_initial_is_the_first_letter_of_the_normalised_name() -> None:
    assert apply(normalise.initial, ["  émile", "o'neill", "-", None]) == ["E", "O", None, None]


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("JOHN", "JAN"),
        ("JAN", "JAN"),
        ("KNIGHT", "NAGT"),  # KN -> NN, then H after a consonant repeats it
        ("WILLIS", "WAL"),  # trailing S, then trailing A, are removed
        ("SCHMIDT", "SNAD"),  # SCH -> SSS, DT -> D
        ("PHILLIPS", "FALAP"),  # PH -> FF
        ("EVANS", "EVAN"),  # the first letter is kept as it is
        ("STEVENS", "STAFAN"),  # EV -> AF
        ("STEPHENS", "STAFAN"),
        ("MACDONALD", "MCDANALD"),  # MAC -> MCC
        ("MCDONALD", "MCDANALD"),
        ("CATHERINE", "CATARAN"),
        ("KATHERINE", "CATARAN"),  # K -> C
        ("BRADLEE", "BRADLY"),  # EE -> Y
        ("LINDSAY", "LANDSY"),  # trailing AY -> Y
        ("HOWARD", "HAD"),  # RD -> D; W after a vowel takes its sound
        ("QUINN", "QAN"),  # the first letter is kept, later Q -> G
        ("AMMAN", "ANAN"),  # M -> N, repeats collapse
        ("A", "A"),
        ("S", "S"),
        ("", ""),
    ],
)
def test_nysiis_code(text: str, code: str) -> None:
    assert normalise.nysiis_code(text) == code


def test_nysiis_on_columns_normalises_names_first() -> None:
    values = ["Stevens", "STEPHENS", "Mac Donald", "McDonald", "", None, "Αλφα"]
    assert apply(normalise.nysiis, values) == [
        "STAFAN",
        "STAFAN",
        "MCDANALD",
        "MCDANALD",
        None,
        None,
        None,
    ]


# Whole columns ----------------------------------------------------------------------------------

SAMPLES = {
    normalise.nhs_number: ["999 000 0018", "x", None, "9990000026"],
    normalise.sex: ["male", "F", "9", None],
    normalise.postcode: ["ls1 4ap", "ls1", "nowhere", None],
    normalise.postcode_district: ["ls1 4ap", "ls1", "nowhere", None],
    normalise.name: ["O'Neill", "Zoë", "Αλφα", None],
    normalise.initial: ["O'Neill", "Zoë", "Αλφα", None],
}


@pytest.mark.parametrize("function", list(SAMPLES), ids=lambda f: f.__name__)
def test_normalising_twice_changes_nothing(function: Normaliser) -> None:
    once = function(pa.array(SAMPLES[function]))
    assert function(once).to_pylist() == once.to_pylist()


def test_date_of_birth_normalising_twice_changes_nothing() -> None:
    once = normalise.date_of_birth(pa.array(["02/01/1980", "bad"]), latest=LATEST)
    assert normalise.date_of_birth(once, latest=LATEST).to_pylist() == once.to_pylist()


@pytest.mark.parametrize("function", list(SAMPLES), ids=lambda f: f.__name__)
def test_chunked_columns_give_the_same_result(function: Normaliser) -> None:
    values = SAMPLES[function]
    chunked = pa.chunked_array([values[:1], [], values[1:]], pa.string())
    result = function(chunked)
    assert isinstance(result, pa.ChunkedArray)
    assert result.to_pylist() == function(pa.array(values, pa.string())).to_pylist()


def test_dictionary_columns_are_normalised_per_dictionary_value() -> None:
    first = pa.DictionaryArray.from_arrays(pa.array([0, 1, None]), pa.array(["Zoë", "o'neill"]))
    second = pa.DictionaryArray.from_arrays(pa.array([1, 0]), pa.array(["ZOE", "Stephens"]))
    column = pa.chunked_array([first, second])
    assert normalise.name(column).to_pylist() == ["ZOE", "ONEILL", None, "STEPHENS", "ZOE"]
    assert normalise.nysiis(column).to_pylist() == ["Z", "ONAL", None, "STAFAN", "Z"]
    assert normalise.postcode(first).to_pylist() == ["ZOË", "O'NEILL", None]
    assert normalise.sex(pa.array(["m", "f", None]).dictionary_encode()).to_pylist() == ["M", "F", None]


def test_large_string_columns_are_accepted() -> None:
    values = pa.array(["ls1 4ap", None], pa.large_string())
    assert normalise.postcode(values).to_pylist() == ["LS1 4AP", None]
    assert normalise.name(values).to_pylist() == ["LSAP", None]


def test_map_distinct_calls_the_function_once_on_distinct_values() -> None:
    seen: list[list] = []

    def record(distinct: pa.Array) -> pa.Array:
        seen.append(distinct.to_pylist())
        return distinct

    values = pa.chunked_array([["b", "a", None, "b"], ["a", "c"]])
    assert normalise.map_distinct(values, record).to_pylist() == ["b", "a", None, "b", "a", "c"]
    assert seen == [["b", "a", "c"]]
    empty = normalise.map_distinct(pa.chunked_array([], pa.string()), record)
    assert empty.to_pylist() == []
