"""File helpers every zone uses: checksums and writes that never leave half a file behind."""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ldm import __version__

CHUNK = 1 << 22
STEM_LIMIT = 100  # leaves room for ".<sha12>.manifest.json.partial" under the 255-byte name limit
UNSAFE_IN_NAME = re.compile(r"[^A-Za-z0-9._-]")


@dataclass(frozen=True)
class FileScan:
    """What one read of a file tells: its SHA-256, and where its first NUL byte is (None: nowhere)."""

    sha256: str
    nul_offset: int | None = None


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def scan_file(path: Path) -> FileScan:
    """Hash the file and find its first NUL byte in the same read.

    A NUL byte in a text extract means binary junk or a wrong encoding, wherever it is; finding it
    while hashing costs no second read of a file of gigabytes (bytes.find runs at memory speed,
    unlike counting lines, which is left to `line_of` on the rare file that has a NUL).
    """
    digest = hashlib.sha256()
    nul, offset = None, 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            if nul is None and (found := chunk.find(b"\x00")) >= 0:
                nul = offset + found
            offset += len(chunk)
    return FileScan(digest.hexdigest(), nul)


def line_of(path: Path, offset: int) -> int:
    """The 1-based line number of byte `offset`: newlines before it, plus one.

    Only called to explain a fault, so reading the file up to the offset again does not matter.
    """
    lines, remaining = 1, offset
    with path.open("rb") as handle:
        while remaining > 0 and (chunk := handle.read(min(CHUNK, remaining))):
            lines += chunk.count(b"\n")
            remaining -= len(chunk)
    return lines


def safe_stem(name: str) -> str:
    """A file name derived from `name` that is safe on any file system and in any SQL or shell text.

    Extract names come from providers and may hold quotes, spaces, control characters or 255 bytes;
    the files ldm writes from them (seam files, manifests, quarantine files) keep only [A-Za-z0-9._-]
    and at most 100 characters. When that changes the name, a digest of the original name is put at
    the end, so two extracts whose names differ only in what was replaced cannot overwrite each
    other's quarantine file.
    """
    cleaned = UNSAFE_IN_NAME.sub("_", name).lstrip(".") or "_"
    if cleaned == name and len(name) <= STEM_LIMIT:
        return name
    digest = hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:8]
    return f"{cleaned[: STEM_LIMIT - len(digest) - 1]}-{digest}"


def shown(name: str) -> str:
    """A file name as it can be printed on one line: quoted with escapes if it has control characters."""
    return (
        repr(name) if any(ord(c) < 0x20 or c == "\x7f" or 0xDC80 <= ord(c) <= 0xDCFF for c in name) else name
    )


def write_atomically(path: Path, content: bytes) -> None:
    """Write `content` beside `path` and rename it into place, so readers see all or nothing."""
    temporary = path.with_name(path.name + ".partial")
    temporary.write_bytes(content)
    os.replace(temporary, path)


def write_checksummed_manifest(folder: Path, content: dict, files: list[dict]) -> Path:
    """Write FOLDER/manifest.json: `content`, and `files`, each entry given its file's SHA-256 and size.

    One writer for every publication and release, so that each is described and checked alike.
    """
    for entry in files:
        path = folder / entry["file"]
        entry["sha256"] = file_sha256(path)
        entry["bytes"] = path.stat().st_size
    manifest = {
        "created_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "software_version": f"ldm {__version__}",
        **content,
    }
    path = folder / "manifest.json"
    path.write_text(json.dumps(manifest, indent=2, default=str) + "\n")
    return path
