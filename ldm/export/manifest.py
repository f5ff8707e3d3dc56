"""manifest.json of an export: what was written, from which store state, under which rules.

A recipient checks the files against their SHA-256; an IG lead ties the export to the store's
audit chain (its newest entry hash) and to the exact rules file that was applied.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from ldm.export.rules import Rules
from ldm.files import write_checksummed_manifest

MANIFEST = "manifest.json"


def store_state(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """The audit head and the batches behind the marts, so the export can be traced to its inputs."""
    head = con.execute(
        "select seq, entry_hash from governance.audit_log order by seq desc limit 1"
    ).fetchone()
    batches = con.execute(
        "select count(*), max(batch_id), max(loaded_at) from governance.batches where status = 'loaded'"
    ).fetchone()
    assert batches is not None
    return {
        "audit_head": head[1] if head else None,
        "audit_seq": head[0] if head else None,
        "batches_loaded": batches[0],
        "latest_batch_id": batches[1],
        "latest_batch_loaded_at": batches[2].isoformat() if batches[2] else None,
    }


def write_manifest(
    folder: Path, store: Path, rules: Rules, state: dict[str, Any], marts: list[dict[str, Any]]
) -> Path:
    """Write DIR/manifest.json; `marts` already lists each mart's files with their row counts."""
    content = {
        "store": {"file": store.name, **state},
        "rules": {"file": rules.path.name, "version": rules.version, "sha256": rules.sha256},
        "marts": marts,
    }
    return write_checksummed_manifest(
        folder, content, [entry for mart in marts for entry in mart.get("files", [])]
    )
