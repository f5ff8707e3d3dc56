"""The figures each chart draws, as tables read from the published marts.

Each function returns one DataFrame per chart; the page draws the chart from it, shows it as the
table beside the chart and writes it as the chart's CSV, so the three never disagree. Columns keep
the published marts' names (a row can be matched to the export's files); columns computed here
(a comparison, an SII, a test's p-value) have names the marts do not use.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ldm.dashboard import compare
from ldm.dashboard.indicators import Indicator
from ldm.dashboard.pages import COUNT_COLUMNS
from ldm.dashboard.published import Published
from ldm.sql import literal, quoted

PERIOD_TYPE = "rolling_12_months"  # a rolling 12 months at every quarter end: what a board receives
PERIOD = ["period_type", "period_label", "period_end"]
KEYS = {
    "mart_prevalence": ["condition", "min_age"],
    "mart_utilisation": ["measure"],
    "mart_life_expectancy": ["sex", "start_age"],
    "mart_inequalities": ["indicator_domain", "indicator", "value_type"],
}
AREA = ["geography_level", "area_code", "area_name"]
# Place tiers in the order a board reads them, each with the geography levels the marts hold for it.
TIERS = {
    "system": ("System: ICB and sub-ICB location", ["icb", "sub_icb"]),
    "place": ("Place: Leeds", ["city"]),
    "neighbourhood": ("Neighbourhoods: primary care networks and wards", ["pcn", "ward"]),
    "msoa": ("Neighbourhoods: MSOAs", ["msoa11"]),
}
LEVEL_NAMES = {
    "icb": "ICB",
    "sub_icb": "sub-ICB location",
    "city": "city",
    "pcn": "primary care network",
    "ward": "ward",
    "msoa11": "MSOA",
}


def _columns(ind: Indicator, mart: str | None = None) -> list[str]:
    mart = mart or ind.mart
    counts = [c for count in ind.counts for c in (count, f"{count}_suppressed")]
    return [*PERIOD, *AREA, *KEYS[mart], *counts]


def _frame(pub: Published, sql: str) -> pd.DataFrame:
    """The rows of `sql`, counts as whole numbers (a suppressed one missing, not NaN beside floats)."""
    frame = pub.con.execute(sql).df()
    for column in COUNT_COLUMNS:
        if column in frame.columns:
            frame[column] = frame[column].astype("Int64")
    return frame


def available(pub: Published, ind: Indicator) -> bool:
    return ind.mart in pub.marts


def trend(pub: Published, ind: Indicator) -> pd.DataFrame:
    """The city's value in every rolling period, with its interval (for the gap: least less most)."""
    if ind.value == "deprivation_gap":
        return _gap_trend(pub, ind)
    select = ", ".join(quoted(c) for c in [*_columns(ind), ind.value, ind.lower, ind.upper])
    return _frame(
        pub,
        f"select {select} from {quoted(ind.mart)} where ({ind.where}) and geography_level = 'city' "
        f"and period_type = {literal(PERIOD_TYPE)} order by period_end",
    )


def _gap_trend(pub: Published, ind: Indicator) -> pd.DataFrame:
    """The published gap by period; its interval from the published intervals of its two ends."""
    rows = pub.rows(
        f"select period_type, period_label, period_end, sex, start_age, area_code, deprivation_gap, "
        f"life_expectancy, life_expectancy_lower, life_expectancy_upper from mart_life_expectancy "
        f"where ({ind.where}) and geography_level = 'imd_quintile' "
        f"and period_type = {literal(PERIOD_TYPE)} and area_code in ('1', '5') order by period_end, area_code"
    )
    out = []
    for end in sorted({r["period_end"] for r in rows}):
        ends = {r["area_code"]: r for r in rows if r["period_end"] == end}
        most, least = ends.get("1"), ends.get("5")
        if not most or not least:
            continue
        interval = compare.gap_interval(
            most, least, "life_expectancy", "life_expectancy_lower", "life_expectancy_upper"
        )
        gap = most["deprivation_gap"]
        out.append(
            {
                **{k: most[k] for k in ("period_type", "period_label", "period_end", "sex", "start_age")},
                "deprivation_gap": gap,
                "gap_lower": round(interval[0], 1) if interval and gap is not None else None,
                "gap_upper": round(interval[1], 1) if interval and gap is not None else None,
            }
        )
    return pd.DataFrame(
        out, columns=[*PERIOD, "sex", "start_age", "deprivation_gap", "gap_lower", "gap_upper"]
    )


@dataclass(frozen=True)
class Latest:
    """The latest period's value and its change from the period a year earlier."""

    row: dict | None
    earlier: dict | None
    change: compare.Change


def latest(ind: Indicator, series: pd.DataFrame) -> Latest:
    """The last period of the series, tested against the period ending a year earlier (the rolling
    periods a quarter apart share nine months, so only periods a year apart are compared)."""
    rows = series.astype(object).where(series.notna(), None).to_dict("records")
    if not rows:
        return Latest(None, None, compare.Change("no published period", None, "not tested"))
    last = rows[-1]
    target = pd.Timestamp(last["period_end"]) - pd.DateOffset(years=1)
    earlier = next((r for r in rows if pd.Timestamp(r["period_end"]) == target), None)
    if earlier is None:
        return Latest(last, None, compare.Change("no period a year earlier", None, "not tested"))
    return Latest(last, earlier, compare.change(ind.kind, earlier, last, ind.value, ind.lower, ind.upper))


def latest_end(pub: Published, mart: str, where: str):
    """The last period end of the rows of `mart` that `where` selects (None if there are none)."""
    return pub.con.execute(
        f"select max(period_end) from {quoted(mart)} where ({where}) and period_type = {literal(PERIOD_TYPE)}"
    ).fetchone()[0]


def places(pub: Published, ind: Indicator, level: str) -> pd.DataFrame:
    """Every area of `level` in the latest period, with the city's value and Fingertips' comparison."""
    end = latest_end(pub, ind.mart, ind.where)
    select = ", ".join(quoted(c) for c in [*_columns(ind), ind.value, ind.lower, ind.upper])
    frame = _frame(
        pub,
        f"select {select} from {quoted(ind.mart)} where ({ind.where}) and period_type = {literal(PERIOD_TYPE)} "
        f"and period_end = {literal(str(end))} and geography_level in ({literal(level)}, 'city') order by area_name",
    )
    city = frame[frame["geography_level"] == "city"][ind.value]
    city_value = None if city.empty or pd.isna(city.iloc[0]) else float(city.iloc[0])
    frame = frame[frame["geography_level"] == level].copy()
    frame["city_value"] = city_value
    frame["comparison"] = [
        compare.against(*(None if pd.isna(v) else float(v) for v in values), city_value)
        for values in zip(frame[ind.value], frame[ind.lower], frame[ind.upper], strict=True)
    ]
    return frame.reset_index(drop=True)


SII_FIELDS = ("sii", "sii_lower", "sii_upper", "rii", "rii_lower", "rii_upper")  # of compare.Gradient


@dataclass(frozen=True)
class ByImd:
    frame: pd.DataFrame
    gradient: compare.Gradient | None
    reason: str  # why there is no gradient, when there is none


def by_imd(pub: Published, ind: Indicator) -> ByImd | None:
    """The indicator in each IMD quintile in the latest period, with the SII and RII fitted to the
    published values (the store's own SII is fitted to exact counts and is not published)."""
    if ind.inequality_where and "mart_inequalities" in pub.marts:
        mart, weight, value, lower, upper = (
            "mart_inequalities",
            "denominator",
            "rate",
            "rate_lower",
            "rate_upper",
        )
        columns = [
            *PERIOD,
            *KEYS[mart],
            "imd_scale",
            "imd_group",
            "numerator",
            "numerator_suppressed",
            "denominator",
            "denominator_suppressed",
            value,
            lower,
            upper,
        ]
        where = f"({ind.inequality_where}) and value_type = 'crude' and imd_scale = 'imd_quintile'"
        group = "imd_group"
    elif ind.mart == "mart_life_expectancy" and ind.value == "life_expectancy" and ind.mart in pub.marts:
        mart, weight, value, lower, upper = ind.mart, "person_years", ind.value, ind.lower, ind.upper
        columns = [*_columns(ind), value, lower, upper]
        where = f"({ind.where}) and geography_level = 'imd_quintile'"
        group = "area_code"
    else:
        return None
    end = latest_end(pub, mart, where)
    frame = _frame(
        pub,
        f"select {', '.join(quoted(c) for c in columns)} from {quoted(mart)} where {where} "
        f"and period_type = {literal(PERIOD_TYPE)} and period_end = {literal(str(end))} "
        f"order by try_cast({group} as integer)",
    )
    frame.insert(frame.columns.get_loc(group) + 1, "imd_quintile", [int(g) for g in frame[group]])
    inputs = frame[[value, weight, lower, upper]]
    inputs = inputs.astype(object).where(inputs.notna(), None)
    fit = compare.gradient(*(list(inputs[c]) for c in (value, weight, lower, upper)))
    if fit is None:
        for name in ("relative_rank", "fitted", *(f"{n}_from_published" for n in SII_FIELDS)):
            frame[name] = None
        return ByImd(frame, None, "a quintile's figure is suppressed or not published, so no line is fitted")
    frame["relative_rank"] = [round(r, 4) for r in fit.ranks]
    frame["fitted"] = [round(fit.fitted_most + fit.sii * r, 4) for r in fit.ranks]
    for name in SII_FIELDS:
        frame[f"{name}_from_published"] = round(getattr(fit, name), 4)
    return ByImd(frame, fit, "")


def build_stamp(pub: Published, mart: str) -> dict:
    """The dbt invocation, build time and audit head the published rows carry (one build per store)."""
    rows = pub.rows(
        f"select distinct dbt_invocation_id, built_at, audit_head from {quoted(mart)} order by built_at desc limit 1"
    )
    return rows[0] if rows else {}


def min_age(pub: Published, ind: Indicator) -> int | None:
    if ind.mart != "mart_prevalence":
        return None
    row = pub.con.execute(f"select max(min_age) from mart_prevalence where {ind.where}").fetchone()
    return row[0] if row else None
