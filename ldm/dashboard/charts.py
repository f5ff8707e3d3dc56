"""Vega-Lite specs made with altair: trend, IMD gradient with its fitted SII line, spine and map.

Each function takes the DataFrame the chart draws (the same one the table and the CSV show) and
returns a spec as a dict; the page embeds it and vega-embed draws it offline. Colours come from
`PALETTE`, chosen to be told apart with any colour vision and to meet WCAG 2.2's 3:1 contrast
for graphics on the white page; comparisons also differ by shape, so colour is never the only cue.

altair builds each kind of chart once per set of field names (a template with placeholder titles,
its data a named dataset); a site has hundreds of charts, and altair's own copying of inline data
would take most of the build. Each chart is the template with its titles, data and size filled in.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import altair as alt
import pandas as pd

from ldm.dashboard.indicators import Indicator
from ldm.dashboard.pages import missing

BACKGROUND = "#ffffff"
TEXT = "#1a1a1a"
PALETTE = {
    "line": "#0a5da6",  # Okabe-Ito blue, darkened
    "higher than Leeds": "#0a5da6",
    "lower than Leeds": "#a84300",  # Okabe-Ito vermilion, darkened
    "similar to Leeds": "#595959",
    "not compared": "#767676",
    "city": TEXT,
    "fitted": "#a84300",
}
SHAPES = {
    "higher than Leeds": "triangle-up",
    "lower than Leeds": "triangle-down",
    "similar to Leeds": "circle",
    "not compared": "square",
}
UNPUBLISHED = "#e0e0e0"  # the fill of an area with no published value
MAP_SCHEME = "viridis"  # perceptually even and readable in every common colour-vision deficiency
WIDTH = 420


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-ready rows: dates as ISO strings, missing values as null."""
    out = []
    for row in frame.to_dict("records"):
        clean = {}
        for key, value in row.items():
            if missing(value):
                clean[key] = None
            elif hasattr(value, "isoformat"):
                clean[key] = value.isoformat()[:10] if key.startswith("period") else value.isoformat()
            elif hasattr(value, "item"):  # numpy scalars
                clean[key] = value.item()
            else:
                clean[key] = value
        out.append(clean)
    return out


class _Fields:
    """What a template needs of an indicator: how its value reads, and the names of its columns."""

    def __init__(self, kind: str, value: str, lower: str, upper: str) -> None:
        self.kind, self.value, self.lower, self.upper = kind, value, lower, upper


def value_format(ind: Indicator | _Fields) -> str:
    return {"proportion": ".2%", "rate": ",.1f", "years": ".1f"}[ind.kind]


def axis_title(ind: Indicator | _Fields) -> str:
    return {"proportion": "Prevalence (%)", "rate": "Rate per 1,000 persons", "years": "Years"}[ind.kind]


TABLE, CITY = "table", "city"
SHORT = "__indicator__"  # the placeholder for the indicator's short title in a template


def _spec(chart: alt.TopLevelMixin) -> dict[str, Any]:
    chart = chart.configure(background=BACKGROUND, font="sans-serif")
    chart = chart.configure_axis(labelColor=TEXT, titleColor=TEXT, labelFontSize=12, titleFontSize=12)
    chart = chart.configure_legend(labelColor=TEXT, titleColor=TEXT, labelFontSize=12, titleFontSize=12)
    return chart.configure_view(stroke=None).to_dict(validate=False)


def _filled(template: dict[str, Any], short: str, description: str, **datasets: list[dict]) -> dict[str, Any]:
    """A copy of `template` with the indicator's title, the description and the data put in."""

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return short if node == SHORT else node

    spec = walk(template)
    spec["description"] = description
    spec["datasets"] = {**spec.get("datasets", {}), **datasets}
    return spec


def _tooltips(first: alt.Tooltip, value: str, lower: str, upper: str, fmt: str) -> list[alt.Tooltip]:
    return [
        first,
        alt.Tooltip(f"{value}:Q", title=SHORT, format=fmt),
        alt.Tooltip(f"{lower}:Q", title="95% lower", format=fmt),
        alt.Tooltip(f"{upper}:Q", title="95% upper", format=fmt),
    ]


def trend(ind: Indicator, frame: pd.DataFrame, description: str) -> dict[str, Any]:
    """The city's value by period: a line with points and the 95% interval as a band."""
    template = _trend(ind.kind, ind.value, ind.lower, ind.upper)
    return _filled(template, ind.short, description, **{TABLE: records(frame)})


@functools.cache
def _trend(kind: str, value: str, lower: str, upper: str) -> dict[str, Any]:
    ind = _Fields(kind, value, lower, upper)
    base = alt.Chart(alt.Data(name=TABLE)).encode(
        x=alt.X("period_end:T", title="End of the 12 months", axis=alt.Axis(format="%b %Y", labelAngle=0)),
    )
    fmt = value_format(ind)
    band = base.mark_area(opacity=0.25, color=PALETTE["line"]).encode(
        y=alt.Y(
            f"{ind.lower}:Q", title=axis_title(ind), axis=alt.Axis(format=fmt), scale=alt.Scale(zero=False)
        ),
        y2=f"{ind.upper}:Q",
    )
    line = base.mark_line(point=alt.OverlayMarkDef(size=60, filled=True), color=PALETTE["line"]).encode(
        y=f"{ind.value}:Q",
        tooltip=_tooltips(
            alt.Tooltip("period_label:N", title="Period"), ind.value, ind.lower, ind.upper, fmt
        ),
    )
    return _spec((band + line).properties(width=WIDTH, height=200))


def gradient(
    ind: Indicator, frame: pd.DataFrame, value: str, lower: str, upper: str, description: str
) -> dict:
    """Each IMD quintile at its relative rank (0 = most deprived), its interval, and the line fitted
    by the SII (drawn when every quintile is published)."""
    fitted = not frame["relative_rank"].isna().all()
    template = _gradient(ind.kind, value, lower, upper, fitted)
    return _filled(template, ind.short, description, **{TABLE: records(frame)})


@functools.cache
def _gradient(kind: str, value: str, lower: str, upper: str, fitted: bool) -> dict[str, Any]:
    ind = _Fields(kind, value, lower, upper)
    fmt = value_format(ind)
    data = alt.Data(name=TABLE)
    x = alt.X(
        "relative_rank:Q",
        title="Relative deprivation rank (0 = most deprived, 1 = least)",
        scale=alt.Scale(domain=[0, 1]),
    )
    if not fitted:  # no fit: place the quintiles evenly
        x = alt.X("imd_quintile:O", title="IMD quintile (1 = most deprived)", axis=alt.Axis(labelAngle=0))
    base = alt.Chart(data).encode(x=x)
    bars = base.mark_rule(color=PALETTE["similar to Leeds"], strokeWidth=2).encode(
        y=alt.Y(f"{lower}:Q", title=axis_title(ind), axis=alt.Axis(format=fmt), scale=alt.Scale(zero=False)),
        y2=f"{upper}:Q",
    )
    points = base.mark_point(filled=True, size=80, color=PALETTE["line"], shape="circle").encode(
        y=f"{value}:Q",
        tooltip=_tooltips(alt.Tooltip("imd_quintile:O", title="IMD quintile"), value, lower, upper, fmt),
    )
    layers = [bars, points]
    if fitted:
        layers.append(
            base.mark_line(color=PALETTE["fitted"], strokeDash=[6, 3], strokeWidth=2).encode(y="fitted:Q")
        )
    return _spec(alt.layer(*layers).properties(width=WIDTH, height=220))


def spine(ind: Indicator, frame: pd.DataFrame, description: str) -> dict[str, Any]:
    """Areas ranked by value with their 95% intervals, against the city value (Fingertips' spine)."""
    city = frame["city_value"].dropna()
    template = _spine(ind.kind, ind.value, ind.lower, ind.upper, not city.empty)
    spec = _filled(
        template,
        ind.short,
        description,
        **{TABLE: records(frame), CITY: [{"city_value": float(city.iloc[0])}] if not city.empty else []},
    )
    spec["height"] = max(60, 16 * len(frame))
    return spec


@functools.cache
def _spine(kind: str, value: str, lower: str, upper: str, with_city: bool) -> dict[str, Any]:
    ind = _Fields(kind, value, lower, upper)
    fmt = value_format(ind)
    data = alt.Data(name=TABLE)
    y = alt.Y("area_name:N", title=None, sort=alt.EncodingSortField(field=ind.value, order="descending"))
    base = alt.Chart(data).encode(y=y)
    interval = base.mark_rule(color=PALETTE["similar to Leeds"]).encode(
        x=alt.X(
            f"{ind.lower}:Q", title=axis_title(ind), axis=alt.Axis(format=fmt), scale=alt.Scale(zero=False)
        ),
        x2=f"{ind.upper}:Q",
    )
    categories = list(SHAPES)
    points = base.mark_point(filled=True, size=70).encode(
        x=f"{ind.value}:Q",
        color=alt.Color(
            "comparison:N",
            title="Compared with Leeds (95% interval)",
            scale=alt.Scale(domain=categories, range=[PALETTE[c] for c in categories]),
            legend=alt.Legend(orient="bottom", columns=2),
        ),
        shape=alt.Shape(
            "comparison:N", scale=alt.Scale(domain=categories, range=[SHAPES[c] for c in categories])
        ),
        tooltip=[
            alt.Tooltip("area_name:N", title="Area"),
            alt.Tooltip(f"{ind.value}:Q", title=SHORT, format=fmt),
            alt.Tooltip("comparison:N", title="Compared with Leeds"),
        ],
    )
    layers = [interval, points]
    if with_city:
        city = alt.Chart(alt.Data(name=CITY))
        layers.insert(0, city.mark_rule(color=PALETTE["city"], strokeDash=[4, 2]).encode(x="city_value:Q"))
    return _spec(alt.layer(*layers).properties(width=WIDTH - 120, height=60))


def choropleth(ind: Indicator, frame: pd.DataFrame, geography: str, description: str) -> dict[str, Any]:
    """The areas of a level shaded by value; the boundaries are the site's named dataset `geography`
    (features whose properties.code is a published area code), so each page carries them once."""
    values = records(frame[["area_code", "area_name", ind.value, "comparison"]])
    # With no area published there is no scale to show (its labels would read NaN).
    template = _choropleth(ind.kind, ind.value, geography, bool(frame[ind.value].notna().any()))
    return _filled(template, ind.short, description, **{TABLE: values})


@functools.cache
def _choropleth(kind: str, value: str, geography: str, shaded: bool) -> dict[str, Any]:
    ind = _Fields(kind, value, "", "")
    fmt = value_format(ind)
    # Every boundary in grey underneath; the areas with a published value drawn over it in colour
    # (Vega-Lite leaves out the rest), so an unpublished area is never shown as the lowest value.
    base = (
        alt.Chart(alt.Data(name=geography))
        .mark_geoshape(fill=UNPUBLISHED, stroke="#333333", strokeWidth=0.6)
        .encode(tooltip=[alt.Tooltip("properties.name:N", title="Boundary")])
        .project(type="mercator")
    )
    shape = (
        alt.Chart(alt.Data(name=geography))
        .mark_geoshape(stroke="#333333", strokeWidth=0.6)
        .transform_lookup(
            lookup="properties.code",
            from_=alt.LookupData(
                data=alt.Data(name=TABLE), key="area_code", fields=[ind.value, "area_name", "comparison"]
            ),
        )
        .transform_filter(f"isValid(datum[{json.dumps(ind.value)}])")
        .encode(
            color=alt.Color(
                f"{ind.value}:Q",
                title=SHORT,
                scale=alt.Scale(scheme=MAP_SCHEME),
                legend=alt.Legend(format=fmt, orient="bottom", gradientLength=240) if shaded else None,
            ),
            tooltip=[
                alt.Tooltip("properties.name:N", title="Boundary"),
                alt.Tooltip("area_name:N", title="Area"),
                alt.Tooltip(f"{ind.value}:Q", title=SHORT, format=fmt),
            ],
        )
        .project(type="mercator")
    )
    return _spec(alt.layer(base, shape).properties(width=WIDTH - 40, height=300))
