"""Every SQL query the README shows runs on the store `ldm demo` builds and returns rows; one that reads
a mart holding a series of periods reads one period, unless it is a trend (its rows name their period)."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
from conftest import REPO

# The marts with one set of rows per period (period_type, period_end).
SERIES = (
    "marts.mart_prevalence",
    "marts.mart_utilisation",
    "marts.mart_inequalities",
    "marts.mart_mortality",
    "marts.mart_life_expectancy",
)


def readme_queries() -> list[str]:
    blocks = re.findall(r"```sql\n(.*?)```", (REPO / "README.md").read_text(), flags=re.S)
    return [query.strip() for block in blocks for query in block.split(";") if query.strip()]


def is_trend(query: str) -> bool:
    """A query whose rows say which period they are from (period_end or period_label selected)."""
    body = "\n".join(line for line in query.splitlines() if not line.lstrip().startswith("--"))
    selected = re.split(r"\bfrom\b", body, maxsplit=1, flags=re.I)[0]
    return re.search(r"\bperiod_(end|label)\b", selected) is not None


def periods_read(con: duckdb.DuckDBPyConnection, query: str) -> int:
    """How many periods the rows of a query come from: its own from and where, counting periods."""
    body = "\n".join(line for line in query.splitlines() if not line.lstrip().startswith("--"))
    clauses = re.split(r"\border by\b", re.split(r"\bfrom\b", body, maxsplit=1, flags=re.I)[1], flags=re.I)[0]
    return con.execute(f"select count(distinct (period_type, period_end)) from {clauses}").fetchall()[0][0]


def test_the_readme_queries_run_and_answer(sample_marts_store: Path, monkeypatch):
    queries = readme_queries()
    assert len(queries) >= 5
    monkeypatch.chdir(REPO)  # the README's queries read codelists by their path in the repository
    con = duckdb.connect(str(sample_marts_store), read_only=True)
    try:
        for query in queries:
            assert con.execute(query).fetchall(), query.splitlines()[0]
            if any(mart in query for mart in SERIES) and not is_trend(query):
                assert periods_read(con, query) == 1, query.splitlines()[0]
        trends = [query for query in queries if is_trend(query)]
        assert trends, "the README shows no trend"
        for query in trends:  # a trend over several periods: its rows come from more than one
            assert (
                len({row for row in con.execute(f"select distinct period_end from ({query})").fetchall()}) > 1
            )
    finally:
        con.close()
