"""Every SQL query the README shows runs on the store `ldm demo` builds and returns rows; one that reads
a mart holding a series of periods reads one period, or shows the period of each row (a trend)."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
from conftest import REPO

# The marts with one set of rows per period (period_type, period_end).
SERIES = (
    "mart_prevalence",
    "mart_utilisation",
    "mart_inequalities",
    "mart_mortality",
    "mart_life_expectancy",
)


def readme_queries() -> list[str]:
    blocks = re.findall(r"```sql\n(.*?)```", (REPO / "README.md").read_text(), flags=re.S)
    return [query.strip() for block in blocks for query in block.split(";") if query.strip()]


def top_level(query: str, keyword: str) -> list[int]:
    """Where `keyword` (a regular expression) starts outside any parentheses of `query`."""
    depth, found = 0, []
    for match in re.finditer(rf"\(|\)|\b{keyword}\b", query, flags=re.I):
        if match.group(0) in "()":
            depth += 1 if match.group(0) == "(" else -1
        elif depth == 0:
            found.append(match.start())
    return found


def periods_read(con: duckdb.DuckDBPyConnection, query: str) -> int:
    """How many periods the rows of a query come from: its own from and where, counting periods."""
    body = "\n".join(line for line in query.splitlines() if not line.lstrip().startswith("--"))
    start = top_level(body, "from")[0] + len("from")
    end = (top_level(body, r"order\s+by") or [len(body)])[-1]
    return con.execute(f"select count(distinct (period_type, period_end)) from {body[start:end]}").fetchall()[
        0
    ][0]


def shows_the_period(query: str) -> bool:
    body = "\n".join(line for line in query.splitlines() if not line.lstrip().startswith("--"))
    return bool(re.search(r"\bperiod_(end|label)\b", body[: top_level(body, "from")[0]]))


def test_the_readme_queries_run_and_answer(sample_marts_store: Path, monkeypatch):
    queries = readme_queries()
    assert len(queries) >= 5
    monkeypatch.chdir(REPO)  # the README's queries read codelists by their path in the repository
    con = duckdb.connect(str(sample_marts_store), read_only=True)
    try:
        for query in queries:
            assert con.execute(query).fetchall(), query.splitlines()[0]
            if re.search(rf"\bmarts\.({'|'.join(SERIES)})\b", query):
                periods = periods_read(con, query)
                assert periods == 1 or (periods > 1 and shows_the_period(query)), query.splitlines()[0]
    finally:
        con.close()
