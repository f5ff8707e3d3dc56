"""Keyed tokens of normalised identifiers: the only form in which identifiers leave the zone.

    token = hex(HMAC-SHA256(purpose_key, UTF-8(field + "\\x1f" + normalised_value)))

- Keyed, because an unkeyed hash of an NHS number is reversed by hashing all 10^10 candidates.
- Domain-separated by field name (joined by the unit separator U+001F, which no normalised
  value contains), so a value gives different tokens in different fields: a date of birth
  token can never be matched against a postcode token, and a local id cannot collide with an
  NHS number. The same field and value give the same token in every feed.
- Written as 64 lower-case hexadecimal characters: the same text as `hmac.hexdigest()`,
  `openssl dgst -hmac` or DuckDB's sha256(), so an auditor can recompute any one token with
  standard tools, and it is safe in every file format and database without quoting.
- Null and empty values give null tokens: a token of "nothing" would link every blank record.

Speed: values are hashed once per distinct value (a city has about a million distinct NHS
numbers in tens of millions of rows) and the tokens are spread back to the rows by the
dictionary indices. The HMAC itself uses the RFC 2104 precomputation: the key's inner and
outer SHA-256 states (and the field prefix) are hashed once and copied for every value, which
measured 2.5x faster than `hmac.digest` or cryptography's HMAC on short values (see
`python -m ldm.pseudonymise.bench_tokens`).
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
from collections.abc import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ldm.identifiers.normalise import ArrayLike, empty_to_null, map_distinct

FIELD_SEPARATOR = "\x1f"
TOKEN_HEX_CHARS = 64
MIN_KEY_BYTES = 16

_SHA256_BLOCK_BYTES = 64
_INT32_MAX = 2**31 - 1


def token(value: str, field: str, key: bytes) -> str:
    """The token of one normalised value, by the standard library's HMAC: the reference."""
    _check_field_and_key(field, key)
    message = (field + FIELD_SEPARATOR + value).encode("utf-8")
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def tokenise(array: ArrayLike, field: str, key: bytes) -> ArrayLike:
    """Tokens (hex strings) of a column of normalised values, hashing each distinct value once.

    `array` holds strings, plain or dictionary-encoded (dates are tokenised as their ISO text);
    null and empty values give null. `key` is a purpose key, e.g.
    `MasterKey.purpose_key("linkage")`. The result is a plain string column.
    """
    _check_field_and_key(field, key)
    if pa.types.is_date(array.type):
        array = pc.cast(array, pa.string())
    value_type = array.type.value_type if pa.types.is_dictionary(array.type) else array.type
    if not (pa.types.is_string(value_type) or pa.types.is_large_string(value_type)):
        raise TypeError(f"tokenise needs normalised text, not {array.type}; normalise it first")
    inner, outer = _hmac_states(key, field)
    chunks = array.chunks if isinstance(array, pa.ChunkedArray) else [array]
    longest = max((len(chunk) for chunk in chunks), default=0)

    def tokens_of(distinct: pa.Array) -> pa.Array:
        return _tokens_of_distinct(distinct, inner, outer, token_type(max(longest, len(distinct))))

    return map_distinct(array, tokens_of)


def token_type(rows: int) -> pa.DataType:
    """string, or large_string when `rows` tokens would overflow 32-bit string offsets."""
    return pa.large_string() if TOKEN_HEX_CHARS * rows > _INT32_MAX else pa.string()


def _check_field_and_key(field: str, key: bytes) -> None:
    if not isinstance(key, bytes) or len(key) < MIN_KEY_BYTES:
        raise TypeError(f"key must be a purpose key of at least {MIN_KEY_BYTES} bytes")
    if not field or FIELD_SEPARATOR in field:
        raise ValueError("field must be a non-empty name without the unit separator")


def _hmac_states(key: bytes, field: str) -> tuple[hashlib._Hash, hashlib._Hash]:
    """SHA-256 states after the inner key block plus the field prefix, and the outer key block.

    HMAC(K, m) = H((K ^ opad) || H((K ^ ipad) || m)) with K zero-padded to the 64-byte block
    (RFC 2104); hashing the two key blocks once and copying the states gives the same result.
    """
    if len(key) > _SHA256_BLOCK_BYTES:
        key = hashlib.sha256(key).digest()
    block = key.ljust(_SHA256_BLOCK_BYTES, b"\0")
    inner = hashlib.sha256(bytes(byte ^ 0x36 for byte in block))
    inner.update((field + FIELD_SEPARATOR).encode("utf-8"))
    outer = hashlib.sha256(bytes(byte ^ 0x5C for byte in block))
    return inner, outer


def _digests(values: Iterable[bytes], inner: hashlib._Hash, outer: hashlib._Hash) -> bytearray:
    """Concatenated 32-byte HMAC digests of the values, in order."""
    copy_inner, copy_outer = inner.copy, outer.copy
    digests = bytearray()
    for value in values:
        inner_hash = copy_inner()
        inner_hash.update(value)
        outer_hash = copy_outer()
        outer_hash.update(inner_hash.digest())
        digests += outer_hash.digest()
    return digests


def _tokens_of_distinct(
    distinct: pa.Array, inner: hashlib._Hash, outer: hashlib._Hash, array_type: pa.DataType
) -> pa.Array:
    """Hex tokens of distinct values, written straight into an Arrow string buffer."""
    distinct = empty_to_null(distinct)
    if distinct.null_count:
        valid = distinct.is_valid()
        positions = pc.subtract(pc.cumulative_sum(valid.cast(pa.int64())), 1)
        tokens = _tokens_of_distinct(distinct.drop_null(), inner, outer, array_type)
        return tokens.take(pc.if_else(valid, positions, None))
    values = pc.cast(distinct, pa.binary()).to_numpy(zero_copy_only=False).tolist()
    text = binascii.hexlify(_digests(values, inner, outer))
    count = len(distinct)
    offset_type = np.int64 if pa.types.is_large_string(array_type) else np.int32
    offsets = np.arange(0, TOKEN_HEX_CHARS * (count + 1), TOKEN_HEX_CHARS, dtype=offset_type)
    buffers = [None, pa.py_buffer(offsets), pa.py_buffer(text)]
    return pa.Array.from_buffers(array_type, count, buffers)
