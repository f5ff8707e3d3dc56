"""Small helpers for SQL that ldm builds as text."""


def quoted(name: str) -> str:
    """A DuckDB identifier, quoted, for column names as providers spell them ("NHS Number")."""
    return '"' + name.replace('"', '""') + '"'


def literal(text: object) -> str:
    """A SQL string literal, e.g. a file path in COPY ... TO (a quote in it is doubled)."""
    return "'" + str(text).replace("'", "''") + "'"


def spark_quoted(name: str) -> str:
    """A Spark SQL identifier, quoted with backticks (a backtick in it is doubled), e.g. a database."""
    return "`" + name.replace("`", "``") + "`"
