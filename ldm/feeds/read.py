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
from ldm.feeds.spec import FeedSpec

SNIFF_BYTES = 1 << 20
OTHER_DELIMITERS = (",", "|", "\t", ";")
DUCKDB_ENCODINGS = {
    "utf-8": "utf-8",
    "utf8": "utf-8",
    "latin-1": "latin-1",
    "iso-8859-1": "latin-1",
    "utf-16": "utf-16",
}


class StructuralError(LdmError):
    """The extract cannot be read as its spec describes."""


def _header(path: Path, spec: FeedSpec, head: bytes) -> list[str]:
    try:
        text = head.decode(spec.encoding)
    except UnicodeDecodeError as error:
        if len(head) == SNIFF_BYTES and error.start > len(head) - 4:  # a character cut by the sniff
            text = head[: error.start].decode(spec.encoding)
        else:
            raise StructuralError(
                f"{path}: not readable as {spec.encoding} (byte {error.start} is invalid)"
            ) from None
    first_line = text.lstrip("\ufeff").splitlines()[0] if text.strip() else ""
    return next(csv.reader([first_line], delimiter=spec.delimiter)) if first_line else []


def check_structure(path: Path, spec: FeedSpec) -> list[str]:
    """Return the header of a structurally sound extract, or raise StructuralError."""
    if not path.is_file():
        raise StructuralError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise StructuralError(f"{path}: file is empty")
    with path.open("rb") as handle:
        head = handle.read(SNIFF_BYTES)
    if b"\x00" in head and not spec.encoding.startswith("utf-16"):
        raise StructuralError(
            f"{path}: contains binary data (NUL bytes); is this really a {spec.feed} extract?"
        )
    header = [name.strip() for name in _header(path, spec, head)]
    expected = [c.source for c in spec.columns]
    if len(header) <= 1 and len(expected) > 1:
        found = [d for d in OTHER_DELIMITERS if d != spec.delimiter and header and d in header[0]]
        hint = f"; the header looks {found[0]!r}-delimited" if found else ""
        raise StructuralError(
            f"{path}: expected {spec.delimiter!r}-delimited columns, found one column{hint}"
        )
    missing = [name for name in expected if name not in header]
    if missing:
        raise StructuralError(
            f"{path}: missing column(s) {', '.join(missing)} required by the {spec.feed} spec"
        )
    return header


def load_raw(con: duckdb.DuckDBPyConnection, path: Path, spec: FeedSpec) -> int:
    """Load the extract as text into temp table `raw` (rowid + 1 is the data row number); return the rows."""
    header = check_structure(path, spec)
    columns = {name: "VARCHAR" for name in header}
    encoding = DUCKDB_ENCODINGS.get(spec.encoding.lower())
    if encoding is None:
        raise StructuralError(f"{path}: encoding {spec.encoding} is not supported")
    try:
        con.execute(
            """
            create or replace temp table raw as
            select * from read_csv(?, delim = ?, header = true, auto_detect = false, columns = ?,
                                   quote = '"', escape = '"', strict_mode = true, encoding = ?,
                                   null_padding = false)
            """,
            [str(path), spec.delimiter, columns, encoding],
        )
    except duckdb.Error as error:
        raise StructuralError(f"{path}: {_explain(str(error))}") from None
    rows = con.execute("select count(*) from raw").fetchall()[0][0]
    if rows == 0:
        raise StructuralError(f"{path}: has a header but no rows")
    return rows


def _explain(message: str) -> str:
    """Turn DuckDB's reader errors into one line an engineer can act on."""
    line = re.search(r"[Ll]ine:? (\d+)", message)
    where = f" at line {line.group(1)}" if line else ""
    if "Expected Number of Columns" in message or "too many columns" in message.lower():
        return f"truncated or ragged row{where}: wrong number of fields"
    if "unicode" in message.lower() or "encoding" in message.lower():
        return f"invalid characters for the spec's encoding{where}"
    if "unterminated quote" in message.lower() or "quote" in message.lower():
        return f"unterminated quoted field{where} (truncated file?)"
    return message.splitlines()[0]
