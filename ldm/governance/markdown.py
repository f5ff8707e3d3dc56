"""Markdown tables for the IG report: one way to show a query's rows, for every section."""

from __future__ import annotations

from collections.abc import Sequence


def rows_table(names: Sequence[str], rows: Sequence[Sequence]) -> list[str]:
    """Lines of a Markdown table (whole numbers with thousands separators), or "(none)"."""
    if not rows:
        return ["(none)"]
    lines = ["| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
    for row in rows:
        shown = ("" if v is None else f"{v:,}" if isinstance(v, int) else str(v) for v in row)
        lines.append("| " + " | ".join(shown) + " |")
    return lines


def table(con, sql: str, params: Sequence = ()) -> list[str]:
    """The rows of a query as a Markdown table, its column names as headings."""
    result = con.execute(sql, list(params))
    return rows_table([d[0] for d in result.description], result.fetchall())
