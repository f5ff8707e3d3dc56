"""The published figures: what `ldm export` writes, read back into an in-memory database.

The dashboard never opens the marts' own tables. It runs the export itself (same rules, same code)
into a hidden folder beside the site, loads the Parquet files it wrote into DuckDB in memory, and
removes the folder; every figure on the site is read from those tables.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from ldm.dialects import DIALECTS
from ldm.export.export import export
from ldm.export.manifest import MANIFEST
from ldm.sql import quoted

DUCKDB = DIALECTS["duckdb"]  # the published files are read in embedded DuckDB, whatever built them


@dataclass
class Published:
    """An in-memory database with one table per exported mart, and the export's manifest."""

    con: duckdb.DuckDBPyConnection
    manifest: dict[str, Any]

    @property
    def marts(self) -> set[str]:
        return {m["mart"] for m in self.manifest["marts"] if m.get("files")}

    def rows(self, sql: str, params: list | None = None) -> list[dict[str, Any]]:
        result = self.con.execute(sql, params or [])
        names = [d[0] for d in result.description]
        return [dict(zip(names, row, strict=True)) for row in result.fetchall()]


def read_published(
    store: Path, beside: Path, rules: Path | None = None, progress: Callable[[str], None] = lambda m: None
) -> Published:
    """Export `store` under `rules` into a hidden folder beside `beside` and load what it published."""
    work = Path(tempfile.mkdtemp(prefix=f".{beside.name}.export-", dir=beside.parent))
    try:
        folder = work / "export"
        export(store, folder, rules, progress=progress)
        manifest = json.loads((folder / MANIFEST).read_text())
        con = duckdb.connect()
        for mart in manifest["marts"]:
            for entry in mart.get("files", []):
                if entry["format"] == "parquet":
                    source = DUCKDB.parquet(folder / entry["file"])
                    con.execute(f"create table {quoted(mart['mart'])} as select * from {source}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return Published(con, manifest)
