"""A store with the marts built from the committed sample, made once per folder (for tests).

``ldm demo`` runs the whole job on sample_data/ (including ``dbt build`` of every mart) with a
key of its own kept in the folder. A second call with the same folder in the same process, or in
a later one after a complete build, returns the store already built, so several test modules can
share one build.
"""

from __future__ import annotations

import os
from pathlib import Path

from ldm.errors import LdmError
from ldm.pseudonymise.keys import KEY_FILE_ENV, init_key

_DONE = ".marts-built"


def demo_marts_store(folder: Path) -> Path:
    """The store of ``ldm demo --out FOLDER/demo`` (built on first use), marts included."""
    from ldm.cli import main  # the CLI imports most of ldm: only when a build is needed

    store = folder / "demo" / "store.duckdb"
    if (folder / _DONE).exists() and store.exists():
        return store
    folder.mkdir(parents=True, exist_ok=True)
    key = folder / "demo.key"
    if not key.exists():
        init_key(key)
    previous = os.environ.get(KEY_FILE_ENV)
    os.environ[KEY_FILE_ENV] = str(key)
    try:
        if main(["demo", "--out", str(folder / "demo")]) != 0:
            raise LdmError(f"ldm demo failed in {folder}")
    finally:
        if previous is None:
            os.environ.pop(KEY_FILE_ENV, None)
        else:
            os.environ[KEY_FILE_ENV] = previous
    (folder / _DONE).write_text("ok\n")
    return store
