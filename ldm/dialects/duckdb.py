"""DuckDB's spelling of each construct: the embedded default, and the SQL ldm has always run.

Each method returns exactly the text the pipeline wrote before the dialects existed, so a store
built through this dialect is the store built without it, at the same speed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ldm.dialects.base import Dialect
from ldm.sql import single_quoted as literal

BIGINT_MASK = 2**63 - 1


class DuckDB(Dialect):
    name = "duckdb"

    def parquet(self, path: object, union_by_name: bool = False) -> str:
        options = ", union_by_name = true" if union_by_name else ""
        return f"read_parquet({literal(path)}{options})"

    def csv(self, path: object, header: bool | None = None, all_varchar: bool = False) -> str:
        options = "" if header is None else f", header = {str(header).lower()}"
        options += ", all_varchar = true" if all_varchar else ""
        return f"read_csv({literal(path)}{options})"

    def describe(self, relation: str) -> str:
        return f"describe select * from {relation}"

    def row_id(self, alias: str = "") -> str:
        return f"{alias}.rowid" if alias else "rowid"

    def anti_join(self) -> str:
        return "anti join"

    def semi_join(self) -> str:
        return "semi join"

    def pair_in(self, columns: Sequence[str], relation: str, negated: bool = False) -> str:
        pair = f"({', '.join(columns)})"
        return f"{pair} {'not in' if negated else 'in'} (select {pair} from {relation})"

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
            f"select {'distinct ' if distinct else ''}{select} from {source}\n"
            f"qualify row_number() over (partition by {partition} order by {order}) = 1"
        )

    def star_except(self, excluded: Sequence[str], columns: Sequence[str], alias: str = "") -> str:
        return f"{alias + '.' if alias else ''}* exclude ({', '.join(excluded)})"

    def star_replace(self, alias: str, replaced: Mapping[str, str], columns: Sequence[str]) -> str:
        return f"{alias}.* replace ({', '.join(f'{sql} as {name}' for name, sql in replaced.items())})"

    def union_all_by_name(self, parts: Sequence[tuple[str, Sequence[str]]]) -> str:
        return " union all by name ".join(select for select, _ in parts)

    def order_by_all(self, columns: Sequence[str]) -> str:
        return "order by all"

    def arg_max(self, value: str, key: str) -> str:
        return f"arg_max({value}, {key})"

    def row_key(self, columns: Sequence[str]) -> str:
        # A row value: DuckDB orders a NULL field after every value.
        return f"({', '.join(columns)})"

    def date_number_key(self, date: str, number: str) -> str:
        # (days since 1970, number) as one HUGEINT, ordered as the pair is: arg_max compares it
        # several times faster than a struct. A missing date sorts after every date, as in a struct.
        return (
            f"(coalesce(date_diff('day', date '1970-01-01', {date}), {2**62})::hugeint * {2**64} + {number})"
        )

    def collect_structs(self, fields: Mapping[str, str]) -> str:
        return f"list(struct_pack({', '.join(f'{name} := {sql}' for name, sql in fields.items())}))"

    def explode(self, expression: str) -> str:
        return f"unnest({expression})"

    def unpivot(self, columns: Sequence[str], value: str = "value", position: str = "position") -> str:
        return f"unnest([{', '.join(columns)}]) as {value}, unnest(range({len(columns)})) as {position}"

    def array(self, expressions: Sequence[str]) -> str:
        return "[" + ", ".join(expressions) + "]"

    def distinct_in_range(self, expression: str, low: int, high: int) -> str:
        # One bit per value of the range: a tenth of the cost of hashing every value into a group.
        return f"bit_count(bitstring_agg({expression}, {low}, {high}))"

    def string_agg_sorted(self, expression: str, separator: str) -> str:
        return f"string_agg({expression}, {literal(separator)} order by {expression})"

    def quantile_disc(self, expression: str, fraction: float) -> str:
        return f"quantile_disc({expression}, {fraction})"

    def row_number_unordered(self) -> str:
        return "row_number() over ()"

    def type_name(self, sql_type: str) -> str:
        return sql_type

    def as_text(self, expression: str) -> str:
        return f"cast({expression} as varchar)"

    def hash64(self, expressions: Sequence[str]) -> str:
        return f"hash({', '.join(expressions)})"

    def digest63(self, expressions: Sequence[str]) -> str:
        return f"cast({self.hash64(expressions)} & {BIGINT_MASK} as bigint)"

    def integer_divide(self, dividend: str, divisor: str) -> str:
        return f"{dividend} // {divisor}"

    def full_match(self, expression: str, pattern: str) -> str:
        return f"regexp_full_match({expression}, {literal(pattern)})"

    def try_parse_timestamp(self, expression: str, strptime_format: str) -> str:
        return f"try_strptime({expression}, {literal(strptime_format)})"

    def format_timestamp(self, expression: str, strptime_format: str) -> str:
        return f"strftime({expression}, {literal(strptime_format)})"

    def whole_years(self, start: str, end: str) -> str:
        return f"date_sub('year', {start}, {end})"

    def days_between(self, start: str, end: str) -> str:
        return f"date_diff('day', {start}, {end})"

    def days_before(self, expression: str, days: str, timestamp: bool) -> str:
        return f"{expression} - to_days({days})" if timestamp else f"{expression} - {days}"

    def write_parquet(self, query: str, path: object, compression: str | None = None) -> str:
        options = f", compression {compression}" if compression else ""
        return f"copy ({query}) to {literal(path)} (format parquet{options})"

    def write_csv(self, query: str, path: object) -> str:
        return f"copy ({query}) to {literal(path)} (format csv, header true)"
