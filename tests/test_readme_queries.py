"""Every SQL query the README shows runs on the store `ldm demo` builds and returns rows."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
from conftest import REPO


def readme_queries() -> list[str]:
    blocks = re.findall(r"```sql\n(.*?)```", (REPO / "README.md").read_text(), flags=re.S)
    return [query.strip() for block in blocks for query in block.split(";") if query.strip()]


def test_the_readme_queries_run_and_answer(sample_marts_store: Path, monkeypatch):
    queries = readme_queries()
    assert len(queries) >= 5
    monkeypatch.chdir(REPO)  # the README's queries read codelists by their path in the repository
    con = duckdb.connect(str(sample_marts_store), read_only=True)
    try:
        for query in queries:
            assert con.execute(query).fetchall(), query.splitlines()[0]
    finally:
        con.close()
