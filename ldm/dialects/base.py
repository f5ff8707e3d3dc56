"""What an engine must spell for ldm: every SQL construct the pipeline writes in Python that engines
spell differently, one method each, returning SQL text.

A method's docstring is its contract: what the SQL it returns means, whatever the engine. Builders
put the text into their SQL; one place runs it. Names and paths reach a method already as SQL
(`ldm.sql.quoted`, `ldm.sql.literal`), except a method's `path`, which it quotes itself.

An engine that cannot say a construct in SQL at all raises `NotExpressible` naming why, rather
than returning text that would mean something else.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence


class NotExpressible(NotImplementedError):
    """The engine has no SQL for this construct (the message says why, and what to do instead)."""


class Dialect(ABC):
    name: str

    # Relations

    @abstractmethod
    def parquet(self, path: object, union_by_name: bool = False) -> str:
        """A relation of the rows of a Parquet file (or a glob of files, their columns matched by
        name when `union_by_name`)."""

    @abstractmethod
    def csv(self, path: object, header: bool | None = None, all_varchar: bool = False) -> str:
        """A relation of the rows of a CSV file: its first line the header when `header` (None: the
        engine's own guess), every column text when `all_varchar`."""

    @abstractmethod
    def describe(self, relation: str) -> str:
        """One row per column of `relation`, its name first, in the relation's order."""

    @abstractmethod
    def row_id(self, alias: str = "") -> str:
        """The engine's own number of a row of a table read from one file (0 for the first row)."""

    # Joins and filters

    @abstractmethod
    def anti_join(self) -> str:
        """The join keyword: left rows with no match on the right, left columns only."""

    @abstractmethod
    def semi_join(self) -> str:
        """The join keyword: left rows with a match on the right, each once, left columns only."""

    @abstractmethod
    def pair_in(self, columns: Sequence[str], relation: str, negated: bool = False) -> str:
        """Whether the row's `columns` together are (not) among the same columns of `relation`."""

    @abstractmethod
    def first_per_group(
        self,
        select: str,
        source: str,
        partition: str,
        order: str,
        output: Sequence[str],
        distinct: bool = False,
    ) -> str:
        """`select <select> from <source>`, keeping only the first row of each `partition` in `order`
        (then distinct rows when `distinct`); its columns are `output`, the names `select` gives."""

    @abstractmethod
    def star_except(self, excluded: Sequence[str], columns: Sequence[str], alias: str = "") -> str:
        """Every column of a relation (`alias`.*) but `excluded`; `columns` are its columns in order."""

    @abstractmethod
    def star_replace(self, alias: str, replaced: Mapping[str, str], columns: Sequence[str]) -> str:
        """Every column of `alias` in order (`columns`), those in `replaced` as its expression instead."""

    @abstractmethod
    def union_all_by_name(self, parts: Sequence[tuple[str, Sequence[str]]]) -> str:
        """The rows of every select in `parts` (select, its column names), columns matched by name,
        NULL where a select lacks one."""

    @abstractmethod
    def order_by_all(self, columns: Sequence[str]) -> str:
        """Order by every output column (`columns`), left to right."""

    # Aggregates and lists

    @abstractmethod
    def arg_max(self, value: str, key: str) -> str:
        """The aggregate: `value` of the row with the greatest `key` (rows whose key is NULL ignored)."""

    @abstractmethod
    def row_key(self, columns: Sequence[str]) -> str:
        """A key ordering rows by `columns` in turn, a NULL column after every value (for arg_max)."""

    @abstractmethod
    def date_number_key(self, date: str, number: str) -> str:
        """A key ordering rows by a DATE, a missing date after every date, then by a positive BIGINT
        below 2^63: the same order as `row_key([date, number])`, cheaper to compare."""

    @abstractmethod
    def collect_structs(self, fields: Mapping[str, str]) -> str:
        """The aggregate: a list of one struct per row, field name -> expression."""

    @abstractmethod
    def explode(self, expression: str) -> str:
        """One row per element of the list `expression` (in a select list)."""

    @abstractmethod
    def unpivot(self, columns: Sequence[str], value: str = "value", position: str = "position") -> str:
        """Select-list items giving one row per column of `columns`: `value` its value and
        `position` its place, 0 first."""

    @abstractmethod
    def array(self, expressions: Sequence[str]) -> str:
        """A list of the `expressions`' values, usable as a grouping and join key."""

    @abstractmethod
    def distinct_in_range(self, expression: str, low: int, high: int) -> str:
        """The aggregate: how many distinct values the BIGINT `expression` takes, every value known to
        lie in [low, high] (a range narrow enough for a bitmap)."""

    @abstractmethod
    def string_agg_sorted(self, expression: str, separator: str) -> str:
        """The aggregate: the texts of `expression`, in their sort order, joined by `separator`."""

    @abstractmethod
    def quantile_disc(self, expression: str, fraction: float) -> str:
        """The aggregate: the value at `fraction` of the sorted values (one of the values)."""

    @abstractmethod
    def row_number_unordered(self) -> str:
        """A number 1, 2, ... for each row of a select, in no particular order."""

    # Numbers, hashes, text and dates

    @abstractmethod
    def type_name(self, sql_type: str) -> str:
        """The engine's name of a DuckDB type name (varchar, hugeint, integer, ...)."""

    @abstractmethod
    def as_text(self, expression: str) -> str:
        """The value as text (a cast)."""

    @abstractmethod
    def hash64(self, expressions: Sequence[str]) -> str:
        """A 64-bit hash of the values together (equal values, equal hash; the engine's own)."""

    @abstractmethod
    def digest63(self, expressions: Sequence[str]) -> str:
        """A non-negative BIGINT digest of the values together: 63 bits of `hash64`."""

    @abstractmethod
    def integer_divide(self, dividend: str, divisor: str) -> str:
        """Integer division, truncated toward zero."""

    @abstractmethod
    def full_match(self, expression: str, pattern: str) -> str:
        """Whether the whole text matches the regular expression `pattern` (a Python string)."""

    @abstractmethod
    def try_parse_timestamp(self, expression: str, strptime_format: str) -> str:
        """The TIMESTAMP the text spells in `strptime_format` (C strptime codes), NULL if it does not."""

    @abstractmethod
    def format_timestamp(self, expression: str, strptime_format: str) -> str:
        """The text of a TIMESTAMP in `strptime_format` (C strftime codes)."""

    @abstractmethod
    def whole_years(self, start: str, end: str) -> str:
        """Completed years from `start` (a date, or a time at midnight) to `end`, truncated toward zero,
        a month counted complete when `end` is the last day of its month (so 29 February to
        28 February is a year), negative when `end` comes first."""

    @abstractmethod
    def days_between(self, start: str, end: str) -> str:
        """Days from the date of `start` to the date of `end` (day boundaries crossed)."""

    @abstractmethod
    def days_before(self, expression: str, days: str, timestamp: bool) -> str:
        """A DATE (or with `timestamp`, a TIMESTAMP) moved back by an INTEGER number of days."""

    # Writing files

    @abstractmethod
    def write_parquet(self, query: str, path: object, compression: str | None = None) -> str:
        """A statement writing the rows of `query` as Parquet at `path`."""

    @abstractmethod
    def write_csv(self, query: str, path: object) -> str:
        """A statement writing the rows of `query` as comma-separated text with a header at `path`."""
