"""Spark SQL's spelling of each construct (Spark 3.5), for the same pipeline on a distributed engine.

Where Spark has the construct under another name the method gives it (`arg_max` is `max_by`,
`unnest` is `explode`, `anti join` is `left anti join`, `hash` is `xxhash64`); where it has not,
the method writes the meaning out in plain SQL (`qualify` as a numbered subquery, `* exclude` as
the column list, DuckDB's whole years, month ends included, as date arithmetic). Names are
backquoted and strings escaped with backslashes, as Spark reads them (ldm.sql).

Values differ from DuckDB's where the engines' own functions differ, and say so here:
- `hash64` is xxhash64, not DuckDB's hash: record digests and the anchor sample of the
  probabilistic step differ between engines, so a store keeps the engine it was built with.
- `try_parse_timestamp` uses Java patterns: a field DuckDB reads without its zero padding
  (`1/2/2020` for %d/%m/%Y) needs the padding in Spark.
- A Parquet or CSV file is written as a folder of part files.
- Spark sorts NULL first in ascending order, DuckDB last: the orders a dialect method writes say
  `nulls last` where DuckDB would put them last (`first_per_group`, `order_by_all`); an order a
  builder writes itself sorts NULL as its engine does.
- Division by zero is NULL in Spark (an error under ANSI mode), infinity in DuckDB: every division
  ldm writes is guarded (nullif, or a group that cannot be empty).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from ldm.dialects.base import Dialect, NotExpressible
from ldm.sql import backquoted
from ldm.sql import escaped_literal as literal

BIGINT_MASK = 2**63 - 1
TYPES = {"varchar": "string", "hugeint": "decimal(38, 0)", "integer": "int"}
# C strptime codes -> Java DateTimeFormatter patterns (Spark's datetime patterns).
STRPTIME = {
    "Y": "yyyy", "y": "yy", "m": "MM", "d": "dd", "H": "HH", "I": "hh", "M": "mm", "S": "ss",
    "f": "SSSSSS", "p": "a", "b": "MMM", "B": "MMMM", "a": "EEE", "A": "EEEE", "j": "DDD", "z": "XX",
}  # fmt: skip
FIRST = "ldm_first_in_group"


def java_pattern(strptime_format: str) -> str:
    """The Java datetime pattern of a C strptime format; letters outside codes are quoted."""
    out, text = [], []
    for code, plain in re.findall(r"%(.)|([^%])", strptime_format):
        if plain:
            text.append(plain)
            continue
        if text:
            out.append(_quote_text("".join(text)))
            text = []
        if code == "%":
            out.append("%")
        elif code in STRPTIME:
            out.append(STRPTIME[code])
        else:
            raise ValueError(f"strptime code %{code} has no Spark pattern (in {strptime_format!r})")
    if text:
        out.append(_quote_text("".join(text)))
    return "".join(out)


def _quote_text(text: str) -> str:
    """Literal text of a Java pattern: letters (pattern letters) and quotes inside single quotes."""
    if not re.search(r"[A-Za-z']", text):
        return text
    return "'" + text.replace("'", "''") + "'"


class Spark(Dialect):
    name = "spark"

    def parquet(self, path: object, union_by_name: bool = False) -> str:
        if union_by_name:
            raise NotExpressible(
                "Spark SQL reads Parquet files of different columns by name only with the session's "
                "spark.sql.parquet.mergeSchema = true (or spark.read.option('mergeSchema', 'true'))"
            )
        return f"parquet.{backquoted(path)}"

    def csv(self, path: object, header: bool | None = None, all_varchar: bool = False) -> str:
        if header is not False:
            raise NotExpressible(
                "Spark SQL reads a CSV file's header only through a view with options: "
                "CREATE TEMPORARY VIEW v USING csv OPTIONS (path '...', header 'true')"
            )
        return f"csv.{backquoted(path)}"  # every column text, as Spark infers no types here

    def describe(self, relation: str) -> str:
        return f"describe query select * from {relation}"

    def row_id(self, alias: str = "") -> str:
        raise NotExpressible(
            "a Spark table has no row id, and a CSV file read by Spark keeps no row order: number the "
            "rows where the file is read (DataFrame.rdd.zipWithIndex) into a column of their own"
        )

    def anti_join(self) -> str:
        return "left anti join"

    def semi_join(self) -> str:
        return "left semi join"

    def pair_in(self, columns: Sequence[str], relation: str, negated: bool = False) -> str:
        names = ", ".join(columns)
        return f"({names}) {'not in' if negated else 'in'} (select {names} from {relation})"

    def first_per_group(
        self,
        select: str,
        source: str,
        partition: str,
        order: str,
        output: Sequence[str],
        distinct: bool = False,
    ) -> str:
        return (
            f"select {'distinct ' if distinct else ''}{', '.join(output)} from ("
            f"select {select}, row_number() over (partition by {partition} order by {_nulls_last(order)}) as {FIRST} "
            f"from {source}) where {FIRST} = 1"
        )

    def star_except(self, excluded: Sequence[str], columns: Sequence[str], alias: str = "") -> str:
        prefix = alias + "." if alias else ""
        return ", ".join(prefix + backquoted(c) for c in columns if c not in excluded)

    def star_replace(self, alias: str, replaced: Mapping[str, str], columns: Sequence[str]) -> str:
        return ", ".join(
            f"{replaced[c]} as {backquoted(c)}" if c in replaced else f"{alias}.{backquoted(c)}"
            for c in columns
        )

    def union_all_by_name(self, parts: Sequence[tuple[str, Sequence[str]]]) -> str:
        names = list(dict.fromkeys(name for _, columns in parts for name in columns))
        return " union all ".join(
            "select "
            + ", ".join(backquoted(n) if n in columns else f"null as {backquoted(n)}" for n in names)
            + f" from ({select})"
            for select, columns in parts
        )

    def order_by_all(self, columns: Sequence[str]) -> str:
        return "order by " + ", ".join(f"{backquoted(c)} nulls last" for c in columns)

    def arg_max(self, value: str, key: str) -> str:
        return f"max_by({value}, {key})"

    def row_key(self, columns: Sequence[str]) -> str:
        # Spark orders a NULL struct field first: a flag before each field puts it last, as DuckDB does.
        return "struct(" + ", ".join(f"{c} is null, {c}" for c in columns) + ")"

    def date_number_key(self, date: str, number: str) -> str:
        return self.row_key([date, number])

    def collect_structs(self, fields: Mapping[str, str]) -> str:
        pairs = ", ".join(f"{literal(name)}, {sql}" for name, sql in fields.items())
        return f"collect_list(named_struct({pairs}))"

    def explode(self, expression: str) -> str:
        return f"explode({expression})"

    def unpivot(self, columns: Sequence[str], value: str = "value", position: str = "position") -> str:
        return f"posexplode(array({', '.join(columns)})) as ({position}, {value})"

    def array(self, expressions: Sequence[str]) -> str:
        return f"array({', '.join(expressions)})"

    def distinct_in_range(self, expression: str, low: int, high: int) -> str:
        return f"count(distinct {expression})"

    def string_agg_sorted(self, expression: str, separator: str) -> str:
        # NULL for a group with no text, as DuckDB's string_agg (array_join of nothing is '').
        joined = f"array_join(array_sort(collect_list({expression})), {literal(separator)})"
        return f"case when count({expression}) > 0 then {joined} end"

    def quantile_disc(self, expression: str, fraction: float) -> str:
        return f"percentile_disc({fraction}) within group (order by {expression})"

    def row_number_unordered(self) -> str:
        return "row_number() over (order by monotonically_increasing_id())"

    def type_name(self, sql_type: str) -> str:
        return TYPES.get(sql_type.lower(), sql_type)

    def as_text(self, expression: str) -> str:
        return f"cast({expression} as string)"

    def hash64(self, expressions: Sequence[str]) -> str:
        return f"xxhash64({', '.join(expressions)})"

    def digest63(self, expressions: Sequence[str]) -> str:
        return f"({self.hash64(expressions)} & {BIGINT_MASK})"

    def integer_divide(self, dividend: str, divisor: str) -> str:
        return f"{dividend} div {divisor}"

    def full_match(self, expression: str, pattern: str) -> str:
        # rlike finds a match anywhere: anchored at both ends (\z: the very end, not before a newline).
        return f"({expression} rlike {literal('^(?:' + pattern + ')' + chr(92) + 'z')})"

    def try_parse_timestamp(self, expression: str, strptime_format: str) -> str:
        return f"try_to_timestamp({expression}, {literal(java_pattern(strptime_format))})"

    def format_timestamp(self, expression: str, strptime_format: str) -> str:
        return f"date_format({expression}, {literal(java_pattern(strptime_format))})"

    def whole_years(self, start: str, end: str) -> str:
        return (
            f"case when {start} <= {end} then ({_months(start, end)}) div 12 "
            f"else -(({_months(end, start)}) div 12) end"
        )

    def days_between(self, start: str, end: str) -> str:
        return f"datediff({end}, {start})"

    def days_before(self, expression: str, days: str, timestamp: bool) -> str:
        if timestamp:
            return f"{expression} - make_interval(0, 0, 0, {days})"
        return f"date_sub({expression}, {days})"

    def write_parquet(self, query: str, path: object, compression: str | None = None) -> str:
        options = f" options (compression {literal(compression)})" if compression else ""
        return f"insert overwrite directory {literal(path)} using parquet{options} {query}"

    def write_csv(self, query: str, path: object) -> str:
        return f"insert overwrite directory {literal(path)} using csv options (header 'true') {query}"


def _nulls_last(order: str) -> str:
    """An order by list with NULL last in each item that does not say (DuckDB's default)."""
    items, depth, current = [], 0, ""
    for character in order:
        depth += {"(": 1, ")": -1}.get(character, 0)
        if character == "," and depth == 0:
            items.append(current.strip())
            current = ""
        else:
            current += character
    items.append(current.strip())
    return ", ".join(item if "nulls" in item.lower() else f"{item} nulls last" for item in items)


def _months(start: str, end: str) -> str:
    """Complete months from `start` to a later `end`, as DuckDB counts them: a month is complete when
    `end`'s day is at least `start`'s, or `end` is the last day of its month (31 January to
    28 February is a month)."""
    short = f"day({end}) < day({start}) and day({end}) <> day(last_day(cast({end} as date)))"
    return (
        f"(year({end}) - year({start})) * 12 + month({end}) - month({start}) "
        f"- case when {short} then 1 else 0 end"
    )
