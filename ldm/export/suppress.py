"""Apply the rules to one mart in DuckDB: primary, complementary and secondary suppression.

Every count of the mart becomes a cell (row, column, value, suppressed) in a temporary table, so
that a rule about cells in other rows or other columns (a group that adds up to a published total)
is one SQL statement, whatever the size of the mart. Nothing here loops over rows in Python.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from ldm.dialects import current as dialect
from ldm.export.rules import MartRules, Rules
from ldm.export.working import CELLS, MEMBERS, PICKED, ROWS, final
from ldm.sql import literal, quoted


@dataclass(frozen=True)
class Suppression:
    """How many count cells a mart has and why those withheld were withheld."""

    cells: int
    small: int
    complement: int
    inherited: int
    secondary: int

    @property
    def suppressed(self) -> int:
        return self.small + self.complement + self.inherited + self.secondary


def final_table(mart: str) -> str:
    """The temporary table that keeps a mart's final cell states for marts that inherit them."""
    return quoted(final(mart))


def _small(value: str, rules: Rules) -> str:
    """Whether a count is small (suppressed): suppress_min <= value < suppress_max + 1."""
    return f"({value} >= {rules.suppress_min} and {value} < {rules.suppress_max + 1})"


def suppress(con: duckdb.DuckDBPyConnection, rules: Rules, mart: MartRules) -> Suppression:
    """Build the temporary cell table of `mart` with every rule applied; return the tally."""
    source = f"{quoted(rules.schema)}.{quoted(mart.name)}"
    if mart.order_by:
        order = "order by " + ", ".join(quoted(c) for c in mart.order_by)
    else:  # every column in turn
        order = dialect().order_by_all([row[0] for row in con.execute(dialect().describe(source)).fetchall()])
    con.execute(
        f"create or replace temp table {ROWS} as select row_number() over ({order}) as row_id, * from {source}"
    )
    # Small (_small): a count that is not whole (person-years, a mean of two lists) of 7.5 is small
    # too, not rounded up out of the rule.
    con.execute(
        f"create or replace temp table {CELLS} as "
        + " union all ".join(
            f"select row_id, {literal(c)} as col, cast({quoted(c)} as bigint) as value, "
            f"coalesce({_small(quoted(c), rules)}, false) as suppressed, "
            f"case when {_small(quoted(c), rules)} then 'small' end as reason from {ROWS}"
            for c in mart.counts
        )
    )
    for rule in mart.complements:
        con.execute(
            f"""update {CELLS} set suppressed = true, reason = 'complement'
                where col = {literal(rule.part)} and not suppressed and row_id in (
                    select t.row_id from {ROWS} as t
                    where ({rule.where}) and {_small(f"(t.{quoted(rule.total)} - t.{quoted(rule.part)})", rules)})
                and row_id not in (select row_id from {CELLS} where col = {literal(rule.total)} and suppressed)"""
        )
    for rule in mart.inherit:
        on = " and ".join(f"s.{quoted(column)} = {expression}" for column, expression in rule.match)
        con.execute(
            f"""update {CELLS} set suppressed = true, reason = 'inherited'
                from (select t.row_id, s.col from {ROWS} as t join {final_table(rule.mart)} as s on {on}
                      where s.suppressed and ({rule.where})) as x
                where {CELLS}.row_id = x.row_id and {CELLS}.col = x.col and not {CELLS}.suppressed"""
        )
    _secondary(con, mart)
    con.execute(
        f"create or replace temp table {final_table(mart.name)} as "
        f"select r.*, c.col, c.suppressed from {ROWS} as r join {CELLS} as c using (row_id)"
    )
    row = con.execute(
        "select count(*), "  # count_if of DuckDB 2.0 is NULL, not 0, when every reason is NULL
        + ", ".join(
            f"coalesce(count_if(reason = {literal(reason)}), 0)"
            for reason in ("small", "complement", "inherited", "secondary")
        )
        + f" from {CELLS}"
    ).fetchone()
    assert row is not None
    return Suppression(*row)


def _secondary(con: duckdb.DuckDBPyConnection, mart: MartRules) -> None:
    """Until no group has exactly one suppressed cell, suppress the next cell of each such group."""
    members = []
    sql = dialect()
    for number, group in enumerate(mart.groups):
        key = sql.array([sql.as_text(expression) for expression in group.by])
        for cell in group.cells:
            label = literal(f"{number}:{cell.column}" if group.per_column else number)
            members.append(
                f"select {label} as g, {key} as k, t.row_id, {literal(cell.column)} as col, "
                f"{cell.priority} as priority "
                f"from {ROWS} as t where ({cell.where})"
            )
    if not members:
        return
    con.execute(f"create or replace temp table {MEMBERS} as " + " union all ".join(members))
    next_cells = sql.first_per_group(
        "row_id, col",
        f"m {sql.semi_join()} revealing using (g, k) where not suppressed",
        "g, k",
        "priority, value = 0, value, row_id, col",
        ("row_id", "col"),
        distinct=True,
    )
    while True:
        con.execute(
            f"""create or replace temp table {PICKED} as
                with m as (
                    select m.g, m.k, m.row_id, m.col, m.priority, c.value, c.suppressed
                    from {MEMBERS} as m join {CELLS} as c using (row_id, col)
                ),
                revealing as (
                    select g, k from m group by g, k having count(*) >= 2 and count_if(suppressed) = 1
                )
                {next_cells}"""
        )
        count = con.execute(f"select count(*) from {PICKED}").fetchone()
        if not count or not count[0]:
            return
        con.execute(
            f"""update {CELLS} set suppressed = true, reason = 'secondary'
                from {PICKED} as p where {CELLS}.row_id = p.row_id and {CELLS}.col = p.col"""
        )


def _withdrawn(mart: MartRules) -> str:
    """Whether the `publish`ed values of the row's publish_together group are all suppressed: where
    a row passes its condition on the published counts but the store has no value (life expectancy
    not computed: no deaths in the oldest band, or too wide an interval), a value missing from that
    one row would tell why; so every row of the group goes without."""
    own = [d for d in mart.derived if d.publish and not d.across_by]
    if not own:
        return "false"
    conditions = []
    for rule in own:
        suppressed = " or ".join(f"t.{quoted('s_' + source)}" for source in rule.sources)
        conditions.append(f"not ({suppressed}) and coalesce(({rule.publish}), false)")
    passes = " and ".join(conditions)
    missing = " or ".join(f"t.{quoted('store_' + d.column)} is null" for d in own)
    return f"bool_or(({passes}) and ({missing})) over (partition by {', '.join(mart.publish_together)})"


def published_sql(rules: Rules, mart: MartRules, columns: list[str], exact: bool = False) -> str:
    """The mart as it may be published: `columns` in the store's order, a flag after each count.

    Counts are rounded (or NULL when suppressed); each derived value is recomputed from the
    rounded counts, in the order declared, so that it can tell no more than they do, or withheld,
    or (`publish`) the store's value where its condition holds on the published counts.
    `exact` evaluates the same expressions on the exact counts, with nothing hidden: only for the
    test that the expressions reproduce the marts' own values. export_row_id keeps the declared
    order; it is dropped when the files are written.
    """
    flags = ", ".join(
        f"bool_or(col = {literal(c)} and suppressed) as {quoted('s_' + c)}" for c in mart.counts
    )
    others = [
        quoted(c) for c in columns if c not in mart.counts and c not in {d.column for d in mart.derived}
    ]
    counts = []
    for column in mart.counts:
        name = quoted(column)
        rounded = f"cast(round(t.{name} / cast({rules.round_to} as double)) * {rules.round_to} as bigint)"
        value = f"t.{name}" if exact else f"case when s.{quoted('s_' + column)} then null else {rounded} end"
        counts.append(f"{value} as {name}")
    # the store's own value of each `publish`ed column, shown only where its condition holds
    stored = "".join(
        f", t.{quoted(d.column)} as {quoted('store_' + d.column)}" for d in mart.derived if d.publish
    )
    flag_columns = [f"s_{c}" for c in mart.counts]
    layer = (
        f"select t.row_id as export_row_id, {', '.join(f't.{c}' for c in others) or 'null as no_dimension'}, "
        f"{', '.join(counts)}{stored}, {dialect().star_except(['row_id'], ['row_id', *flag_columns], 's')} "
        f"from {ROWS} as t join (select row_id, {flags} from {CELLS} group by row_id) as s using (row_id)"
    )
    layer = f"select t.*, {_withdrawn(mart)} as publish_withdrawn from ({layer}) as t"
    for rule in mart.derived:  # each may use the counts and the derived values declared before it
        name = quoted(rule.column)
        partition = ", ".join(rule.across_by)
        if rule.withhold:
            value = "cast(null as double)"
        elif rule.publish:
            value = f"t.{quoted('store_' + rule.column)}"
        elif rule.across_by:
            value = f"max(case when ({rule.across_where}) then ({rule.recompute}) end) over (partition by {partition})"
        else:
            value = f"({rule.recompute})"
        if not exact:
            hidden = " or ".join(f"t.{quoted('s_' + source)}" for source in rule.sources)
            if rule.publish:  # suppressed too where the condition fails on the published counts
                hidden = f"{hidden} or not coalesce(({rule.publish}), false) or t.publish_withdrawn"
            if rule.across_by:
                hidden = f"bool_or(({rule.across_where}) and ({hidden})) over (partition by {partition})"
            value = f"case when {hidden} then null else {value} end"
        layer = f"select t.*, cast({value} as double) as {name} from ({layer}) as t"
    select = []
    for column in columns:
        name = quoted(column)
        rule = next((d for d in mart.derived if d.column == column), None)
        if column in mart.counts:
            select.append(f"t.{name}")
            select.append(f"t.{quoted('s_' + column)} as {quoted(column + rules.flag_suffix)}")
        elif rule is not None and rule.decimals is not None and not exact:
            select.append(f"round(t.{name}, {int(rule.decimals)}) as {name}")
        else:
            select.append(f"t.{name}")
    return f"select t.export_row_id, {', '.join(select)} from ({layer}) as t order by t.export_row_id"
