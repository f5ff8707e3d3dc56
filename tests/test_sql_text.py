"""No SQL is built from data: what an f-string puts into SQL text goes through ldm.sql.

Values reach SQL as bound parameters where DuckDB takes them, or as `literal(text)`; names as
`quoted(name)`. The walker below reads every f-string of the package that looks like SQL and
reports two kinds of placeholder:

- one inside a quoted string of the SQL text (`'{x}'`, `'a:{x}'`, `"{x}"`): literal() or
  quoted() writes the quotes, so that a quote in the value is doubled;
- a plain variable (a name, attribute or subscript, or a path built from them with `/` or
  str()) whose words say it is a path or a file (`from {staged}`, `read_parquet({path})`):
  paths are data, so they need literal() or a bound parameter.

An f-string counts as SQL when its constant text has an SQL keyword or function (select, from,
describe, read_parquet, read_csv, strptime, cast, ...) as a whole word, or an SQL phrase made of
words that English uses too (insert into, update ... set, set x =, copy (, create table, ...);
an f-string given straight to raise, assert, print, a logger, warnings or an exception is a
message, not SQL.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from ldm.sql import literal, quoted

REPO = Path(__file__).resolve().parent.parent
SOURCES = sorted(
    path.relative_to(REPO).as_posix()
    for folder in ("ldm", "models", "migrations")
    for path in (REPO / folder).rglob("*.py")
)

# SQL keywords and functions as whole words; words that English uses too only in an SQL phrase.
# Placeholders read as {} (`update {} set`).
SQL_WORDS = re.compile(
    r"""\b(select | from | describe | pragma | attach | case \s+ when)\b
      | \b(read_parquet | read_csv | strptime | try_strptime | strftime | nextval | cast | coalesce | bool_or) \s* \(
      | \b(insert \s+ into | update \s+ \S+ \s+ set | set \s+ \w+ \s* = | copy \s* \( | copy \s+ \S+ \s+ to \b)
      | \bcreate \s+ (or \s+ replace \s+)? (temp\w* \s+)? (table|view|schema|macro|index|sequence|type) \b""",
    re.IGNORECASE | re.VERBOSE,
)
# Words of a placeholder's text that say it holds a path or a file name (plurals count too).
PATH_WORDS = {
    "path", "file", "filename", "folder", "dir", "parquet", "csv", "staged", "output", "target",
    "temporary", "tmp", "location", "truth", "extracts", "pseudonymised", "out", "glob",
}  # fmt: skip
# Calls whose f-string arguments are messages for people (and any name ending in Error,
# Exception or Warning).
MESSAGE_CALLS = {"print", "debug", "info", "warning", "error", "exception", "critical", "warn", "_fail"}
# Calls that hand a path on unchanged: str(path) is still a path.
PATH_CALLS = {"str", "fspath", "as_posix", "resolve", "absolute"}


def _called(call: ast.Call) -> str:
    func = call.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""


def _fstrings_in(expression: ast.expr, *, into_calls: bool) -> Iterator[ast.JoinedStr]:
    """The f-strings that make up a message: `f"..."`, `"..." + f"..."`, `Error(f"...")`."""
    if isinstance(expression, ast.JoinedStr):
        yield expression
    elif isinstance(expression, ast.BinOp):
        yield from _fstrings_in(expression.left, into_calls=into_calls)
        yield from _fstrings_in(expression.right, into_calls=into_calls)
    elif isinstance(expression, ast.Call) and into_calls:
        for argument in expression.args:
            yield from _fstrings_in(argument, into_calls=False)


def messages(tree: ast.AST) -> set[int]:
    """ids of the f-strings given straight to raise, assert, print, a logger or an exception."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise) and node.exc is not None:
            found |= {id(f) for f in _fstrings_in(node.exc, into_calls=True)}
        elif isinstance(node, ast.Assert) and node.msg is not None:
            found |= {id(f) for f in _fstrings_in(node.msg, into_calls=False)}
        elif isinstance(node, ast.Call) and (
            _called(node) in MESSAGE_CALLS or _called(node).endswith(("Error", "Exception", "Warning"))
        ):
            for argument in [*node.args, *(keyword.value for keyword in node.keywords)]:
                found |= {id(f) for f in _fstrings_in(argument, into_calls=False)}
    return found


def is_sql(fstring: ast.JoinedStr) -> bool:
    text = "".join(part.value if isinstance(part, ast.Constant) else "{}" for part in fstring.values)
    return SQL_WORDS.search(text) is not None


def names_a_path(expression: ast.expr) -> bool:
    """A plain variable, or a path built from one, whose words say path or file."""
    if isinstance(expression, ast.Call):  # literal(...), quoted(...) and SQL-building helpers pass
        inner = list(expression.args)
        if isinstance(expression.func, ast.Attribute):
            inner.append(expression.func.value)  # path.as_posix()
        return _called(expression) in PATH_CALLS and any(names_a_path(e) for e in inner)
    if isinstance(expression, ast.BinOp):  # folder / feed / "x.parquet"
        return names_a_path(expression.left) or names_a_path(expression.right)
    if not isinstance(expression, ast.Name | ast.Attribute | ast.Subscript):
        return False
    words = re.split(r"[^a-z0-9]+", ast.unparse(expression).lower())
    return any(word in PATH_WORDS or word.removesuffix("s") in PATH_WORDS for word in words)


def offenders(source: str, filename: str) -> list[str]:
    """'file:line: {placeholder} why', for every unsafe placeholder in the SQL f-strings of `source`."""
    tree = ast.parse(source, filename=filename)
    skip = messages(tree)
    found = []
    for fstring in ast.walk(tree):
        if not isinstance(fstring, ast.JoinedStr) or id(fstring) in skip or not is_sql(fstring):
            continue
        quote = None  # the quote of the SQL string or identifier the text is in, if any
        for part in fstring.values:
            if isinstance(part, ast.Constant):
                for character in part.value:
                    if quote is None and character in "'\"":
                        quote = character
                    elif character == quote:
                        quote = None  # a doubled quote closes and reopens: still right
            elif quote is not None:
                found.append(
                    f"{filename}:{part.value.lineno}: {{{ast.unparse(part.value)}}} is inside {quote}...{quote}:"
                    " use literal() or quoted()"
                )
            elif names_a_path(part.value):
                found.append(
                    f"{filename}:{part.value.lineno}: {{{ast.unparse(part.value)}}} looks like a path:"
                    " use literal() or a bound parameter"
                )
    return found


@pytest.mark.parametrize("path", SOURCES)
def test_sql_text_takes_no_data_unquoted(path):
    found = offenders((REPO / path).read_text(encoding="utf-8"), path)
    assert not found, f"{len(found)} unsafe placeholder(s) in SQL text:\n" + "\n".join(found)


def test_the_walker_reports_what_it_should():
    source = """
con.execute(f"select * from '{folder}/x.parquet'")
con.execute(f"select '{a}', \\"{b}\\", 'x:{c}' as {d} from t")
con.execute(f"copy (select 1) to {target_path}")
con.execute(f"select * from read_parquet({str(staged / 'x')})")
con.execute(f"select {literal(path)}, {quoted(name)}, {n} from {relation} where a = 'it''s' or b = {k}")
raise LdmError(f"cannot read from '{path}'")
logger.info("copied %s", f"from '{path}'")
"""
    assert [re.search(r": (\{.*\}) (is inside|looks like)", line)[1] for line in offenders(source, "x.py")] == [
        "{folder}", "{a}", "{b}", "{c}", "{target_path}", "{str(staged / 'x')}",
    ]  # fmt: skip


# Quotes, statement ends, line ends, a long name, non-ASCII, backslashes (not escapes in SQL).
AWKWARD = [
    "plain",
    "it's",
    "it''s",
    'say "hi"',
    "'; drop table t; --",
    '"; drop table t; --',
    "a;b",
    "line\nbreak",
    "tab\tand\r\nreturn",
    "n" * 255,
    "café ☕ 東京 Ŵ",
    "back\\slash\\'",
    "{braces} %s ?",
]


@pytest.mark.parametrize("text", [*AWKWARD, ""])
def test_literal_round_trips_through_duckdb(text):
    con = duckdb.connect()
    assert con.execute(f"select {literal(text)}").fetchall() == [(text,)]


@pytest.mark.parametrize("name", AWKWARD)
def test_quoted_round_trips_through_duckdb(name):
    con = duckdb.connect()
    con.execute(f"create table t ({quoted(name)} int, other int)")
    assert [row[0] for row in con.execute("describe t").fetchall()] == [name, "other"]
    con.execute(f"insert into t ({quoted(name)}) values (1)")
    assert con.execute(f"select {quoted(name)} from t").fetchall() == [(1,)]
