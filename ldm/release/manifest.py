"""manifest.json of a release: what was written, for which project, under which spec and check.

The recipient checks each file against its SHA-256 and reads what every column is (a pseudonym, a
month, a band); an IG lead ties the release to its record in governance.releases (its id) and to
the store's audit chain (the head of the entry that recorded it). The manifest holds no person or
record id, and nothing that tells one project's pseudonyms from another's.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

from ldm import __version__
from ldm.files import file_sha256

MANIFEST = "manifest.json"


def write_manifest(folder: Path, content: dict[str, Any], files: list[dict[str, Any]]) -> Path:
    """Write FOLDER/manifest.json; each entry of `files` gains the SHA-256 and size of its file."""
    for entry in files:
        path = folder / entry["file"]
        entry["sha256"] = file_sha256(path)
        entry["bytes"] = path.stat().st_size
    manifest = {
        "created_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "software_version": f"ldm {__version__}",
        **content,
        "files": files,
    }
    path = folder / MANIFEST
    path.write_text(json.dumps(manifest, indent=2, default=str) + "\n")
    return path
