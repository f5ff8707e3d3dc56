"""The encodings a feed spec may declare, and streaming transcoding to UTF-8 of those DuckDB misreads.

DuckDB 2.0's CSV reader (measured) reads UTF-8, with or without a BOM, correctly. It does not know
windows-1252 at all; its latin-1 refuses the bytes 0x80-0x9F, which Python's latin-1 codec maps to
the C1 control characters; its utf-16 reads only little-endian text (a big-endian file gives no rows
and no error) and refuses characters outside the Basic Multilingual Plane. Files in those encodings
are decoded by Python, chunk by chunk, into a temporary UTF-8 file that DuckDB reads instead; the
original file is left as received (its SHA-256 is still that of the bytes received).
"""

from __future__ import annotations

import codecs
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CHUNK_BYTES = 1 << 20  # bytes read, decoded and written at a time
# Every accepted spelling (compared in lower case) -> the encoding it names.
ENCODINGS = {
    "utf-8": "utf-8",
    "utf8": "utf-8",
    "utf-8-sig": "utf-8",
    "windows-1252": "windows-1252",
    "cp1252": "windows-1252",
    "latin-1": "latin-1",
    "latin1": "latin-1",
    "iso-8859-1": "latin-1",
    "utf-16": "utf-16",
}
# The encodings DuckDB reads correctly itself; the others are transcoded first.
NATIVE = frozenset({"utf-8"})
# The Python codec that decodes each encoding.
CODECS = {"utf-8": "utf-8", "windows-1252": "cp1252", "latin-1": "latin-1", "utf-16": "utf-16"}


class UndecodableError(ValueError):
    """A byte the declared encoding cannot decode, with where it is in the file."""

    def __init__(self, path: Path, encoding: str, offset: int, byte: int | None, line: int):
        self.path, self.encoding, self.offset, self.byte, self.line = path, encoding, offset, byte, line
        if byte is None:
            what = f"the file ends inside a character at byte {offset} (line {line})"
        else:
            what = f"byte 0x{byte:02X} at byte {offset} (line {line})"
        super().__init__(f"{path}: {what} is not valid {encoding}")


def canonical_encoding(name: str) -> str | None:
    """The encoding a spec's `encoding` names (case-insensitive), or None when it is not accepted."""
    return ENCODINGS.get(str(name).strip().lower())


def unsupported_message(name: str) -> str:
    """One line refusing an encoding and listing the accepted spellings."""
    return f"encoding {name!r} is not supported (accepted: {', '.join(ENCODINGS)})"


def python_codec(name: str) -> str | None:
    """The Python codec that decodes the encoding `name` names, or None when it is not accepted."""
    encoding = canonical_encoding(name)
    return CODECS[encoding] if encoding else None


def needs_transcoding(name: str) -> bool:
    """Whether DuckDB must be given a UTF-8 copy of a file in this (accepted) encoding."""
    encoding = canonical_encoding(name)
    return encoding is not None and encoding not in NATIVE


def undecodable_error(
    path: Path,
    encoding: str,
    error: UnicodeDecodeError,
    base: int,
    text_before: str,
    lines_before: int,
    final: bool,
) -> UndecodableError:
    """The error for `error`, raised decoding bytes whose first is at file offset `base`.

    `text_before` is what those bytes decoded to up to the fault; `lines_before` the newlines
    decoded before them; `final` whether those bytes run to the end of the file.
    """
    offset = base + error.start
    truncated = final and error.end >= len(error.object)
    byte = None if truncated else error.object[error.start]
    line = 1 + lines_before + text_before.count("\n")
    return UndecodableError(path, encoding, offset, byte, line)


def transcode_to(source: Path, target: Path, name: str, chunk_bytes: int = CHUNK_BYTES) -> None:
    """Write `source`, decoded from the encoding `name` names, to `target` as UTF-8.

    Only `chunk_bytes` of the file are held at a time; a character split between two chunks is
    completed by the incremental decoder. Raise UndecodableError for the first byte that cannot be
    decoded. Line ends are copied unchanged, so DuckDB's line numbers are the file's.
    """
    encoding = canonical_encoding(name)
    if encoding is None:
        raise ValueError(unsupported_message(name))
    decoder = codecs.getincrementaldecoder(CODECS[encoding])("strict")
    fed = 0  # bytes of the file given to the decoder so far
    lines = 0  # newlines decoded so far
    with source.open("rb") as reading, target.open("wb") as writing:
        while True:
            chunk = reading.read(chunk_bytes)
            final = not chunk
            pending, flag = decoder.getstate()  # bytes of an unfinished character kept from before
            try:
                text = decoder.decode(chunk, final=final)
            except UnicodeDecodeError as error:
                # error.start counts from the first pending byte; decode the valid prefix again
                # from the same state (with nothing pending) for the line number.
                again = codecs.getincrementaldecoder(CODECS[encoding])("strict")
                again.setstate((b"", flag))
                before = again.decode(error.object[: error.start])
                base = fed - len(pending)
                raise undecodable_error(source, encoding, error, base, before, lines, final) from None
            fed += len(chunk)
            lines += text.count("\n")
            writing.write(text.encode("utf-8"))
            if final:
                return


@contextmanager
def readable_copy(path: Path, name: str, chunk_bytes: int = CHUNK_BYTES) -> Iterator[Path]:
    """The path DuckDB should read for `path` in the encoding `name`: itself, or a UTF-8 copy.

    The copy holds the extract's identifiers, so it stays in the identifiable zone: a hidden file
    beside the extract (readable by its owner only), removed when the block ends, whatever happens.
    """
    if not needs_transcoding(name):
        yield path
        return
    handle, temporary = tempfile.mkstemp(prefix=".ldm-transcoded-", suffix=".csv", dir=path.parent)
    os.close(handle)
    copy = Path(temporary)
    try:
        transcode_to(path, copy, name, chunk_bytes)
        yield copy
    finally:
        copy.unlink(missing_ok=True)
