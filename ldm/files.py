"""File helpers every zone uses: checksums and writes that never leave half a file behind."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def write_atomically(path: Path, content: bytes) -> None:
    """Write `content` beside `path` and rename it into place, so readers see all or nothing."""
    temporary = path.with_name(path.name + ".partial")
    temporary.write_bytes(content)
    os.replace(temporary, path)
