"""manifest.json of a release: what was written, for which project, under which spec and check.

The recipient checks each file against its SHA-256 and reads what every column is (a pseudonym, a
month, a band); an IG lead ties the release to its record in governance.releases (its id) and to
the store's audit chain (the head of the entry that recorded it). The manifest holds no person or
record id, and nothing that tells one project's pseudonyms from another's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ldm.files import write_checksummed_manifest

MANIFEST = "manifest.json"


def write_manifest(folder: Path, content: dict[str, Any], files: list[dict[str, Any]]) -> Path:
    """Write FOLDER/manifest.json; each entry of `files` gains the SHA-256 and size of its file."""
    return write_checksummed_manifest(folder, {**content, "files": files}, files)
