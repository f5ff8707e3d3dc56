"""Small helpers for SQL that ldm builds as text: names, string literals, working tables.

`quoted` and `literal` quote as standard SQL and DuckDB do. Spark reads a backslash in a string as
an escape, two quotes side by side as two strings run together, and a double-quoted name as a
string (unless its session sets spark.sql.ansi.doubleQuotedIdentifiers), so the Spark dialect
quotes what it writes with `backquoted` and `escaped_literal`.
"""


def quoted(name: str) -> str:
    """An identifier, quoted, for column names as providers spell them ("NHS Number")."""
    return double_quoted(name)


def literal(text: object) -> str:
    """A SQL string literal, e.g. a file path in COPY ... TO (a quote in it is doubled)."""
    return single_quoted(text)


def double_quoted(name: object) -> str:
    """A DuckDB (standard SQL) identifier, quoted with double quotes (a double quote in it is doubled)."""
    return '"' + str(name).replace('"', '""') + '"'


def single_quoted(text: object) -> str:
    """A DuckDB (standard SQL) string literal (a quote in it is doubled)."""
    return "'" + str(text).replace("'", "''") + "'"


def backquoted(name: object) -> str:
    """A Spark SQL identifier or path, quoted with backticks (a backtick in it is doubled)."""
    return "`" + str(name).replace("`", "``") + "`"


def escaped_literal(text: object) -> str:
    """A Spark SQL string literal: a quote and a backslash are escaped with a backslash."""
    return "'" + str(text).replace("\\", "\\\\").replace("'", "\\'") + "'"


class WorkingTable(str):
    """The name of a stage's working table, with a line saying what it holds.

    A `str`, so that it goes into SQL text, `register` and `drop table` as the name it is; each
    stage's `working` module names its tables once, with what they hold.
    """

    about: str

    def __new__(cls, name: str, about: str) -> "WorkingTable":
        table = super().__new__(cls, name)
        table.about = about
        return table
