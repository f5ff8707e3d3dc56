"""Small helpers for SQL that ldm builds as text."""


def quoted(name: str) -> str:
    """A DuckDB identifier, quoted, for column names as providers spell them ("NHS Number")."""
    return '"' + name.replace('"', '""') + '"'


def literal(text: object) -> str:
    """A SQL string literal, e.g. a file path in COPY ... TO (a quote in it is doubled)."""
    return "'" + str(text).replace("'", "''") + "'"
