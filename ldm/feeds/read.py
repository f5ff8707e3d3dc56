"""Structural reading of an extract into DuckDB, with a clear error for every structural fault.

A structural fault (missing file, empty or truncated file, binary junk, wrong delimiter, missing
column, unreadable encoding) stops that extract: nothing is written, and the error names the file
and the fault. Row-level problems are not handled here; validation deals with them.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import duckdb

from ldm.errors import LdmError
from ldm.feeds.spec import FeedSpec, closest
from ldm.feeds.transcode import (
    UndecodableError,
    canonical_encoding,
    python_codec,
    readable_copy,
    undecodable_error,
    unsupported_message,
)
from ldm.feeds.working import RAW
from ldm.files import line_of
from ldm.sql import literal, quoted

SNIFF_BYTES = 1 << 20
MAX_LINE_BYTES = 2_097_152  # DuckDB's documented default; DuckDB 2.0.0 applies 2,000,000 when none is given
GLOB_CHARACTERS = frozenset("*?[]")
CONTAINERS = (  # leading bytes of files that are not plain text, and what to tell the sender
    (b"\x1f\x8b", "a gzip-compressed file; decompress it first"),
    (b"PK\x03\x04", "a zip archive; extract the file from it first"),
    (b"\xfd7zXZ\x00", "an xz-compressed file; decompress it first"),
    (b"\x28\xb5\x2f\xfd", "a zstd-compressed file; decompress it first"),
)
BZIP2 = re.compile(rb"BZh[1-9](\x31\x41\x59\x26\x53\x59|\x17\x72\x45\x38\x50\x90)")
OTHER_DELIMITERS = (",", "|", "\t", ";")
# DuckDB reads every extract as UTF-8: one in another encoding is given to it transcoded (transcode.py).
DUCKDB_ENCODING = "utf-8"


class StructuralError(LdmError):
    """The extract cannot be read as its spec describes."""


class RowsError(StructuralError):
    """DuckDB's reader failed on the rows (after the header passed its checks)."""


def _header(path: Path, spec: FeedSpec, head: bytes) -> list[str]:
    codec = python_codec(spec.encoding) or spec.encoding
    try:
        text = head.decode(codec)
    except UnicodeDecodeError as error:
        if len(head) == SNIFF_BYTES and error.start > len(head) - 4:  # a character cut by the sniff
            text = head[: error.start].decode(codec)
        elif codec == "utf-8":
            raise StructuralError(
                f"{path}: not readable as {spec.encoding} (byte {error.start} is invalid)"
            ) from None
        else:
            before = head[: error.start].decode(codec)
            final = len(head) < SNIFF_BYTES
            encoding = canonical_encoding(spec.encoding) or spec.encoding
            undecodable = undecodable_error(path, encoding, error, 0, before, 0, final)
            raise StructuralError(str(undecodable)) from None
    first_line = text.lstrip("\ufeff").splitlines()[0] if text.strip() else ""
    return next(csv.reader([first_line], delimiter=spec.delimiter)) if first_line else []


def _container(path: Path, head: bytes) -> str | None:
    """What a compressed or columnar file is, from its first bytes (and a Parquet file's last four).

    Such a file is all binary, so without this the sender would only hear "binary data" and not
    that they forgot to decompress it or sent the wrong format.
    """
    kind = next((what for magic, what in CONTAINERS if head.startswith(magic)), None)
    if kind is None and BZIP2.match(head):
        kind = "a bzip2-compressed file; decompress it first"
    if kind is None and head.startswith(b"PAR1") and len(head) >= 8:
        with path.open("rb") as handle:
            handle.seek(-4, 2)
            if handle.read(4) == b"PAR1":
                kind = "a Parquet file; export it as delimited text first"
    return f"{kind} (ldm reads plain-text extracts)" if kind else None


def nul_error(path: Path, offset: int, spec: FeedSpec) -> StructuralError:
    """The error for a NUL byte at `offset`: no text extract ldm reads has one (except in UTF-16)."""
    return StructuralError(
        f"{path}: binary data (a NUL byte) at byte {offset}, line {line_of(path, offset)}; "
        f"is this really a {spec.feed} extract?"
    )


def check_no_nul(path: Path, spec: FeedSpec, offset: int | None) -> None:
    """Raise for the first NUL byte found by a scan of the whole file (`offset`, None if none)."""
    if offset is not None and not spec.encoding.lower().startswith("utf-16"):
        raise nul_error(path, offset, spec)


def _check_names_unique(path: Path, header: list[str]) -> None:
    """Raise for a column the header names twice: one of the two would be read in place of the other.

    DuckDB's column names ignore case, so 'Unit' and 'UNIT' are the same column to it.
    """
    first: dict[str, str] = {}
    for name in header:
        earlier = first.get(name.lower())
        if earlier is not None:
            case = "" if earlier == name else f" (as '{earlier}' and '{name}'; names ignore case)"
            raise StructuralError(f"{path}: column '{earlier}' appears twice in the header{case}")
        first[name.lower()] = name


def check_structure(path: Path, spec: FeedSpec) -> list[str]:
    """Return the header of a structurally sound extract, or raise StructuralError.

    Only the first MiB is read here; a NUL byte further on is found by the scan that hashes the
    file while DuckDB reads it (see `check_no_nul`).
    """
    if not path.is_file():
        raise StructuralError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise StructuralError(f"{path}: file is empty")
    with path.open("rb") as handle:
        head = handle.read(SNIFF_BYTES)
    container = _container(path, head)
    if container:
        raise StructuralError(f"{path}: is {container}")
    if python_codec(spec.encoding) is None:
        raise StructuralError(f"{path}: {unsupported_message(spec.encoding)}")
    check_no_nul(path, spec, nul if (nul := head.find(b"\x00")) >= 0 else None)
    header = [name.strip() for name in _header(path, spec, head)]
    expected = spec.sources
    if len(header) <= 1 and len(expected) > 1:
        found = [d for d in OTHER_DELIMITERS if d != spec.delimiter and header and d in header[0]]
        hint = f"; the header looks {found[0]!r}-delimited" if found else ""
        raise StructuralError(
            f"{path}: expected {spec.delimiter!r}-delimited columns, found one column{hint}"
        )
    _check_names_unique(path, header)
    missing = missing_columns(header, expected)
    if missing:
        raise StructuralError(f"{path}: missing column(s) {missing} required by the {spec.name} spec")
    return header


def missing_columns(header: list[str], expected: list[str]) -> str:
    """The spec's columns absent from a header, each with the closest name the header has ('' if none)."""
    return ", ".join(f"{name}{closest(name, header)}" for name in expected if name not in header)


def raw_columns(header: list[str], spec: FeedSpec) -> str:
    """The select list that makes `raw` from the file's columns: placeholders the spec declares become
    NULL (compared after trimming), and each constant is added as a column of its own."""
    nulls = {c.source: c.null_values for c in spec.columns if c.read_from_file and c.null_values}
    selected = []
    for name in header:
        column = quoted(name)
        if name in nulls:
            values = ", ".join(literal(value) for value in nulls[name])
            column = f"case when trim({column}) in ({values}) then null else {column} end as {column}"
        selected.append(column)
    selected += [f"{literal(c.constant)} as {quoted(c.source)}" for c in spec.columns if not c.read_from_file]
    return ", ".join(selected)


def _readable_path(path: Path) -> str:
    """The path as DuckDB is given it: absolute, and refused if DuckDB would expand it as a glob.

    read_csv expands *, ?, [ and ] even in a bound parameter, so such a path could read other files.
    """
    text = str(path.absolute())
    if GLOB_CHARACTERS & set(text):
        raise StructuralError(
            f"{path}: the path contains a glob character (* ? [ ]), which DuckDB would expand; rename it"
        )
    return text


def load_raw(con: duckdb.DuckDBPyConnection, path: Path, spec: FeedSpec) -> int:
    """Load the extract as text into temp table `raw` (rowid + 1 is the data row number); return the rows."""
    header = check_structure(path, spec)
    columns = {name: "VARCHAR" for name in header}
    _readable_path(path)  # refuse a name DuckDB would expand, whichever file it is given
    try:
        with readable_copy(path, spec.encoding) as readable:
            try:
                con.execute(
                    f"""
                    create or replace temp table {RAW} as
                    select {raw_columns(header, spec)} from read_csv(?, delim = ?, header = true, auto_detect = false,
                                           columns = ?, quote = '"', escape = '"',
                                           strict_mode = true, encoding = ?,
                                           null_padding = false, max_line_size = ?)
                    """,
                    [_readable_path(readable), spec.delimiter, columns, DUCKDB_ENCODING, MAX_LINE_BYTES],
                )
            except duckdb.Error as error:
                explained = _explain(str(error)).replace(str(readable.absolute()), str(path))
                raise RowsError(f"{path}: {explained}") from None
    except UndecodableError as error:
        # A RowsError, as DuckDB's own for invalid UTF-8 is: a NUL byte found by the scan beside
        # the read is the likelier explanation, and is reported instead.
        raise RowsError(str(error)) from None
    rows = con.execute(f"select count(*) from {RAW}").fetchall()[0][0]
    if rows == 0:
        raise StructuralError(f"{path}: has a header but no rows")
    return rows


def _explain(message: str) -> str:
    """Turn DuckDB's reader errors into one line an engineer can act on.

    DuckDB's message quotes the offending line and lists the reader's options ("quote = ..."), so
    only its own sentences, at the start of a line, are matched, the over-long line first: its
    quoted text is cut short and may hold anything. The quoted line is never repeated: it may hold
    identifiers.
    """
    line = re.search(r"^.*?[Ll]ine:? (\d+)", message.split("\n", 1)[0])
    where = f" at line {line.group(1)}" if line else ""
    if too_long := re.search(r"^Maximum line size of (\d+) bytes exceeded", message, re.M):
        number = line.group(1) if line else "?"
        return (
            f"line {number} is longer than the limit of {too_long.group(1)} bytes "
            "(an unclosed quote also makes a line run on)"
        )
    if re.search(r"^(?:Expected Number of Columns|Too many columns)", message, re.M | re.I):
        return f"truncated or ragged row{where}: wrong number of fields"
    if re.search(r"^Value with unterminated quote", message, re.M):
        return f"unterminated quoted field{where} (truncated file?)"
    if re.search(r"^Invalid unicode|not \S+ encoded", message, re.M):
        return f"invalid characters for the spec's encoding{where}"
    return message.splitlines()[0]
