"""Small helpers for SQL that ldm builds as text."""


def quoted(name: str) -> str:
    """A DuckDB identifier, quoted, for column names as providers spell them ("NHS Number")."""
    return '"' + name.replace('"', '""') + '"'
