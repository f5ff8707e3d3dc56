"""Keyed tokens: deterministic per key and field, unlinkable across keys, fields and projects."""

from __future__ import annotations

import datetime
import hashlib
import hmac
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ldm.identifiers.tokens import token, token_type, tokenise
from ldm.pseudonymise import bench_tokens
from ldm.pseudonymise.keys import init_key, release_purpose

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
HEX_TOKEN = re.compile(r"[0-9a-f]{64}")


def reference(value: str | None, field: str, key: bytes = KEY) -> str | None:
    """One HMAC per value with the standard library, as the module docstring defines a token."""
    if not value:
        return None
    message = field.encode() + b"\x1f" + value.encode("utf-8")
    return hmac.new(key, message, "sha256").hexdigest()


def tokens(values: list, field: str = "nhs_number", key: bytes = KEY) -> list:
    return tokenise(pa.array(values, pa.string()), field, key).to_pylist()


def test_tokens_are_64_lower_case_hex_characters() -> None:
    result = tokenise(pa.array(["9990000018"]), "nhs_number", KEY)
    assert result.type == pa.string()
    assert HEX_TOKEN.fullmatch(result[0].as_py())


def test_same_value_same_token_across_calls_and_arrays() -> None:
    first = tokens(["9990000018", "9990000026"])
    second = tokens(["9990000026", "9990000018", "9990000018"])
    assert first[0] == second[1] == second[2]
    assert first[1] == second[0]
    assert first[0] != first[1]


def test_same_value_in_another_field_gives_another_token() -> None:
    by_field = {field: tokens(["1980-01-02"], field)[0] for field in ("dob", "postcode", "x")}
    assert len(set(by_field.values())) == 3


def test_field_separator_prevents_boundary_collisions() -> None:
    # Without a separator "ab" + "c" and "a" + "bc" would hash the same message.
    assert tokens(["c"], "ab") != tokens(["bc"], "a")


def test_another_key_gives_other_tokens() -> None:
    values = ["9990000018", "9990000026", "LS1 4AP"]
    assert not set(tokens(values, key=KEY)) & set(tokens(values, key=OTHER_KEY))


def test_tokens_differ_from_unkeyed_sha256_of_the_value() -> None:
    value = "9990000018"
    unkeyed = {
        hashlib.sha256(value.encode()).hexdigest(),
        hashlib.sha256(b"nhs_number\x1f" + value.encode()).hexdigest(),
        hashlib.sha256(KEY + value.encode()).hexdigest(),
    }
    assert tokens([value])[0] not in unkeyed


def test_nulls_and_empty_values_stay_null() -> None:
    assert tokens([None, "", "9990000018", None]) == [None, None, reference("9990000018", "nhs_number"), None]
    assert tokens([None, None]) == [None, None]
    assert tokens([]) == []


def test_distinct_then_join_equals_one_hmac_per_row() -> None:
    values = [f"{999_000_000_0 + (n * 7) % 50}" for n in range(1000)] + [None, "", "ZOË"] * 10
    expected = [reference(value, "nhs_number") for value in values]
    assert tokens(values) == expected
    assert [token(v, "nhs_number", KEY) if v else None for v in values] == expected


def test_chunked_and_dictionary_columns_give_the_same_tokens() -> None:
    values = ["b", "a", None, "b", "a", "c", ""]
    expected = [reference(value, "f") for value in values]
    chunked = pa.chunked_array([values[:2], [], values[2:5], values[5:]], pa.large_string())
    result = tokenise(chunked, "f", KEY)
    assert isinstance(result, pa.ChunkedArray)
    assert result.to_pylist() == expected
    dictionary = pa.array(values).dictionary_encode()
    assert tokenise(dictionary, "f", KEY).to_pylist() == expected
    sliced = pa.array(["x", *values])[1:]
    assert tokenise(sliced, "f", KEY).to_pylist() == expected


def test_dictionary_columns_read_from_parquet_are_tokenised_as_read(tmp_path: Path) -> None:
    values = ["9990000018", None, "9990000026", "", "9990000018"] * 3
    path = tmp_path / "extract.parquet"
    pq.write_table(pa.table({"nhs_number": values}), path, row_group_size=4)
    column = pq.read_table(path, read_dictionary=["nhs_number"]).column("nhs_number")
    assert pa.types.is_dictionary(column.type) and column.num_chunks > 1
    result = tokenise(column, "nhs_number", KEY)
    assert result.type == pa.string()
    assert result.to_pylist() == [reference(value, "nhs_number") for value in values]


def test_chunks_with_different_dictionaries_are_unified() -> None:
    first = pa.DictionaryArray.from_arrays(pa.array([0, 1, None]), pa.array(["a", "unused"]))
    second = pa.DictionaryArray.from_arrays(pa.array([1, 0]), pa.array(["", "a"]))
    result = tokenise(pa.chunked_array([first, second]), "f", KEY)
    token_a, token_unused = reference("a", "f"), reference("unused", "f")
    assert result.to_pylist() == [token_a, token_unused, None, token_a, None]


def test_non_ascii_values_are_hashed_as_utf8() -> None:
    assert tokens(["ZOË"], "name") == [reference("ZOË", "name")]


def test_dates_are_tokenised_as_their_iso_text() -> None:
    dates = pa.array([datetime.date(1980, 1, 2), None], pa.date32())
    assert tokenise(dates, "dob", KEY).to_pylist() == [reference("1980-01-02", "dob"), None]


@pytest.mark.parametrize("length", [16, 32, 63, 64, 65, 100])
def test_precomputed_hmac_states_match_the_standard_library_for_any_key_length(
    length: int,
) -> None:
    # RFC 2104: keys up to the 64-byte block are zero-padded, longer ones are hashed first.
    key = bytes(range(length))
    values = ["v", "9990000018", "x" * 200]
    assert tokens(values, "f", key) == [reference(value, "f", key) for value in values]


def test_purpose_keys_make_linkage_and_project_ids_unjoinable(tmp_path: Path) -> None:
    master = init_key(tmp_path / "master.key")
    values = ["9990000018", "9990000026"]
    linkage = tokens(values, key=master.purpose_key("linkage"))
    project_a = tokens(values, key=master.purpose_key(release_purpose("a")))
    project_b = tokens(values, key=master.purpose_key(release_purpose("b")))
    assert not set(linkage) & set(project_a)
    assert not set(project_a) & set(project_b)


def test_tokens_switch_to_64_bit_offsets_only_when_32_bit_ones_would_overflow() -> None:
    # 64 characters per token: 33,554,431 rows fit in 2**31 - 1 bytes, one more does not.
    assert token_type(0) == pa.string()
    assert token_type(33_554_431) == pa.string()
    assert token_type(33_554_432) == pa.large_string()


def test_non_text_columns_are_refused() -> None:
    with pytest.raises(TypeError, match="normalised text"):
        tokenise(pa.array([9990000018]), "nhs_number", KEY)


@pytest.mark.parametrize("key", [b"", b"short", "a string key" * 4, None])
def test_weak_or_wrong_keys_are_refused(key: object) -> None:
    with pytest.raises(TypeError, match="purpose key"):
        tokenise(pa.array(["x"]), "f", key)  # type: ignore[arg-type]


@pytest.mark.parametrize("field", ["", "a\x1fb"])
def test_bad_field_names_are_refused(field: str) -> None:
    with pytest.raises(ValueError, match="field"):
        tokenise(pa.array(["x"]), field, KEY)


def test_benchmark_runs_and_reports_against_the_baseline(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert bench_tokens.main(["--count", "5000", "--repeat", "1"]) == 0
    output = capsys.readouterr().out
    assert "tokenise, end to end" in output
    assert "unkeyed sha256 (baseline)" in output
    values = bench_tokens.synthetic_nhs_numbers(5000)
    assert len(set(values.to_pylist())) == 5000
