"""What each page says: the figures, their text and the chart files, page by page.

Each function returns the body of one page (or of one figure) and writes, through DataFiles, the CSV
of every chart it draws; site.py puts the bodies into the page frame and writes the rest.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from ldm.dashboard import charts, describe, figures, pages
from ldm.dashboard.geography import Maps
from ldm.dashboard.indicators import Indicator
from ldm.dashboard.published import Published


@dataclass
class DataFiles:
    """Writes each chart's CSV and remembers which published mart its rows come from."""

    folder: Path
    files: dict[str, list[dict]] = field(default_factory=dict)  # mart (or "derived"): entries

    def csv(self, name: str, frame: pd.DataFrame, mart: str) -> str:
        path = self.folder / "data" / name
        frame.to_csv(path, index=False)
        entry = {
            "file": name,
            "format": "csv",
            "rows": len(frame),
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        }
        self.files.setdefault(mart, []).append(entry)
        return name


def _columns(
    first: tuple[str, str], ind: Indicator, counts: Sequence[str] | None = None
) -> list[tuple[str, str]]:
    """A figure's table columns ((column, header)): `first`, the counts (the indicator's unless given),
    then the indicator's value and its 95% interval."""
    return [
        first,
        *[(c, c.replace("_", " ").capitalize()) for c in (ind.counts if counts is None else counts)],
        (ind.value, ind.short),
        (ind.lower, "95% lower"),
        (ind.upper, "95% upper"),
    ]


def _trend_figure(ind: Indicator, frame: pd.DataFrame, writer: DataFiles, prefix: str) -> str:
    text = describe.trend(ind, frame)
    columns = _columns(("period_label", "Period"), ind)
    mart = "derived" if ind.value == "deprivation_gap" else ind.mart
    csv = writer.csv(f"{prefix}-{ind.key}-trend.csv", frame, mart)
    return pages.figure(
        f"{prefix}-{ind.key}-trend",
        f"{ind.title}: trend",
        charts.trend(ind, frame, text),
        text,
        pages.table(frame, columns, ind, f"{ind.title}, Leeds, by period"),
        csv,
    )


def overview(indicators: list[Indicator], trends: dict[str, pd.DataFrame], writer: DataFiles) -> str:
    cards, sections = [], []
    for ind in indicators:
        latest = figures.latest(ind, trends[ind.key])
        sentence = describe.change(ind, latest.row, latest.earlier, latest.change)
        value = pages.fmt_value(ind, latest.row.get(ind.value) if latest.row else None)
        cards.append(
            f'<li><a href="indicator-{ind.key}.html">{pages.esc(ind.short)}</a><br>'
            f'<span class="headline">{pages.esc(value)}</span> <span class="sig-{latest.change.direction.split()[0]}">'
            f"{pages.esc(latest.change.direction)}</span></li>"
        )
        sections.append(  # a block, so that a printed page keeps the sentence with its chart
            f'<div class="block"><p class="headline">{pages.esc(sentence)}</p>'
            + _trend_figure(ind, trends[ind.key], writer, "overview")
            + "</div>"
        )
    intro = (
        '<p class="lead">The headline indicators for Leeds in the latest rolling 12 months, each against the 12 '
        "months a year earlier (periods a quarter apart share nine months and are not compared). "
        "\u201chigher\u201d or \u201clower\u201d means the change is statistically significant at the 5% level; "
        "\u201csimilar\u201d that it is not. How each test works is on the indicator's page.</p>"
    )
    return intro + f'<ul class="cards">{"".join(cards)}</ul><h2>Trends</h2>' + "".join(sections)


def inequalities(
    pub: Published, indicators: list[Indicator], trends: dict[str, pd.DataFrame], writer: DataFiles
) -> str:
    parts = [
        '<p class="lead">Each indicator in the five IMD 2019 quintiles of Leeds (1 = most deprived), latest rolling '
        "12 months, with the slope index of inequality (SII) drawn as the fitted dashed line. The SII and the "
        "relative index (RII) are fitted here to the published figures (PHEindicatormethods' phe_sii: "
        "population-weighted regression on the relative rank, 95% limits by simulation); the store's own SII, "
        "fitted to exact counts, is not published.</p>"
    ]
    for ind in indicators:
        imd = figures.by_imd(pub, ind)
        if imd is None:
            continue
        value = "rate" if "rate" in imd.frame.columns else ind.value
        view = _as(ind, value)
        text = describe.gradient(ind, imd.frame, value, imd.gradient, imd.reason)
        counts = [c for c in pages.COUNT_COLUMNS if c in imd.frame.columns]
        columns = [*_columns(("imd_quintile", "IMD quintile"), view, counts), ("fitted", "Fitted (SII line)")]
        mart = "mart_inequalities" if value == "rate" else ind.mart
        csv = writer.csv(f"inequalities-{ind.key}.csv", imd.frame, mart)
        parts.append(
            pages.figure(
                f"inequalities-{ind.key}",
                f"{ind.title} by deprivation",
                charts.gradient(view, imd.frame, value, view.lower, view.upper, text),
                text,
                pages.table(imd.frame, columns, view, f"{ind.title} by IMD quintile"),
                csv,
            )
        )
    gaps = [i for i in indicators if i.value == "deprivation_gap"]
    if gaps:
        parts.append("<h2>The gap in life expectancy</h2>")
        for ind in gaps:
            frame = trends[ind.key]
            latest = figures.latest(ind, frame)
            parts.append(
                f'<p class="headline">{pages.esc(describe.change(ind, latest.row, latest.earlier, latest.change))}</p>'
            )
            parts.append(_trend_figure(ind, frame, writer, "inequalities"))
    return "".join(parts)


def _as(ind: Indicator, value: str) -> Indicator:
    """The indicator with its value columns renamed as they are in another mart (mart_inequalities)."""
    if value == ind.value:
        return ind
    return replace(ind, value=value, lower=f"{value}_lower", upper=f"{value}_upper")


def places(
    pub: Published, indicators: list[Indicator], tier: str, levels: list[str], geo: Maps, writer: DataFiles
) -> str:
    plural = [figures.LEVEL_NAMES[level] + "s" for level in levels]
    parts = [
        f'<p class="lead">Each indicator for the {pages.esc(" and ".join(plural))} of Leeds in '
        "the latest rolling 12 months: a map, and the areas ranked with their 95% intervals against the Leeds value "
        "(dashed line), marked higher, similar or lower where the interval lies above, around or below it, as "
        "Fingertips does.</p>"
    ]
    if tier == "system":  # one ICB and one sub-ICB location, each holding only the city's people here
        parts.append(
            '<p class="note">The data model holds the registered population of Leeds, so the ICB and sub-ICB '
            "figures are those of the Leeds population within them, not of all West Yorkshire.</p>"
        )
    for ind in indicators:
        if not ind.places:
            continue
        for level in levels:
            frame = figures.places(pub, ind, level)
            if frame.empty:
                continue
            fid = f"{tier}-{ind.key}-{level}"
            title = f"{ind.title} by {figures.LEVEL_NAMES[level]}"
            parts.append(f"<h2>{pages.esc(title)}</h2>")
            if geo.has(level):
                text = describe.choropleth(ind, frame, level, geo.unmatched.get(level, []))
                shown = frame[["area_code", "area_name", ind.value, "comparison"]]
                csv = writer.csv(f"{fid}-map.csv", shown, "derived")
                parts.append(
                    pages.figure(
                        f"{fid}-map",
                        f"{title}: map",
                        charts.choropleth(ind, frame, f"geo_{level}", text),
                        text,
                        pages.table(
                            shown, [("area_name", "Area"), (ind.value, ind.short)], ind, f"{title}, mapped"
                        ),
                        csv,
                    )
                )
            text = describe.spine(ind, frame, level)
            columns = [*_columns(("area_name", "Area"), ind), ("comparison", "Compared with Leeds")]
            csv = writer.csv(f"{fid}-spine.csv", frame, ind.mart)
            parts.append(
                pages.figure(
                    f"{fid}-spine",
                    f"{title}: ranked against Leeds",
                    charts.spine(ind, frame, text),
                    text,
                    pages.table(frame, columns, ind, f"{title}, ranked"),
                    csv,
                )
            )
    return "".join(parts)


def indicator_index(indicators: list[Indicator]) -> str:
    items = "".join(
        f'<li><a href="indicator-{i.key}.html">{pages.esc(i.title)}</a> ({pages.esc(i.unit)})</li>'
        for i in indicators
    )
    lead = "Each indicator's definition, method, sources and caveats, as Fingertips shows them."
    return f'<p class="lead">{lead}</p><ul>{items}</ul>'


def indicator_page(pub: Published, ind: Indicator, trend: pd.DataFrame, writer: DataFiles) -> str:
    age = figures.min_age(pub, ind)
    stamp = figures.build_stamp(pub, ind.mart)
    latest = figures.latest(ind, trend)
    periods = (
        f"{trend['period_label'].iloc[0]} to {trend['period_label'].iloc[-1]}"
        if len(trend)
        else "none published"
    )
    rows = [
        ("Definition", pages.esc(ind.text("definition", age))),
        ("Numerator", pages.esc(ind.text("numerator", age))),
        ("Denominator", pages.esc(ind.text("denominator", age))),
        ("Unit", pages.esc(ind.unit)),
        ("Source feeds", pages.esc(ind.sources)),
        ("Method", pages.esc(ind.method)),
        (
            "Change since the last comparable period",
            pages.esc(
                f"{latest.change.test}; compared with the rolling 12 months ending a year earlier, significant at 5%."
            ),
        ),
        ("Caveats (linkage and disclosure control)", pages.esc(ind.caveats)),
        ("Periods", pages.esc(f"Rolling 12 months at each quarter end: {periods}.")),
        ("Published from", pages.esc(f"{ind.mart} (ldm export)")),
        (
            "Build stamp",
            pages.esc(
                f"dbt invocation {stamp.get('dbt_invocation_id')}, built at {stamp.get('built_at')}, "
                f"audit head {stamp.get('audit_head')}"
            ),
        ),
    ]
    summary = describe.change(ind, latest.row, latest.earlier, latest.change)
    return (
        f'<p class="headline">{pages.esc(summary)}</p>'
        + pages.metadata(rows)
        + _trend_figure(ind, trend, writer, "indicator")
    )
