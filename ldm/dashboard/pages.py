"""HTML of the site: the page frame, a figure (chart, text alternative, table, CSV link) and tables.

Plain HTML with the text escaped; every chart sits in a figure with its description as text and its
data as a table, so a reader who cannot see the chart (or prints the page) loses nothing.
"""

from __future__ import annotations

import html
import json
import math
from typing import Any

import pandas as pd

from ldm.dashboard.indicators import Indicator

NAV = [
    ("index.html", "Overview"),
    ("inequalities.html", "Inequalities"),
    ("places-system.html", "System"),
    ("places-place.html", "Place"),
    ("places-neighbourhood.html", "Neighbourhoods"),
    ("places-msoa.html", "MSOAs"),
    ("indicators.html", "Indicators"),
]
COUNT_COLUMNS = ("numerator", "denominator", "deaths", "person_years")  # the published counts, in table order
NOT_PUBLISHED = "not published"


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def missing(value: Any) -> bool:
    """Whether a cell holds no value: None, pandas' NA or NaT, or a float NaN."""
    return (
        value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and math.isnan(value))
    )


def fmt_value(ind: Indicator, value: Any) -> str:
    if missing(value):
        return NOT_PUBLISHED
    value = float(value)
    return {"proportion": f"{value * 100:.2f}%", "rate": f"{value:,.1f}", "years": f"{value:.1f}"}[ind.kind]


def fmt_count(value: Any, suppressed: Any) -> str:
    if suppressed is True or missing(value):
        return "suppressed"
    return f"{int(value):,}"


def page(title: str, current: str, body: str, footer: str) -> str:
    here = ' aria-current="page"'
    links = "".join(
        f'<li><a href="{href}"{here if href == current else ""}>{esc(label)}</a></li>' for href, label in NAV
    )
    return f"""<!doctype html>
<html lang="en-GB">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)} · Leeds population health</title>
<link rel="stylesheet" href="assets/site.css">
<script src="assets/vega-bundle.js"></script>
<script src="assets/boundaries.js"></script>
<script src="assets/site.js" defer></script>
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header>
<p class="site-name">Leeds population health: a dashboard for the Health and Wellbeing Board</p>
<nav aria-label="Pages"><ul>{links}</ul></nav>
</header>
<main id="main" tabindex="-1">
<h1>{esc(title)}</h1>
{body}
</main>
<footer>{footer}</footer>
</body>
</html>
"""


def table(frame: pd.DataFrame, columns: list[tuple[str, str]], ind: Indicator | None, caption: str) -> str:
    """An HTML table of `columns` ((column, header)) of `frame`: counts as published (or "suppressed"),
    values of the indicator formatted as the chart shows them, anything else as text."""
    value_columns = {ind.value, ind.lower, ind.upper, "city_value", "fitted"} if ind else set()
    count = ' data-kind="count"'
    head = "".join(f'<th scope="col"{count if c in COUNT_COLUMNS else ""}>{esc(h)}</th>' for c, h in columns)
    rows = []
    for record in frame.to_dict("records"):
        cells = []
        for i, (column, _) in enumerate(columns):
            value = record.get(column)
            if missing(value):
                value = None
            if column in COUNT_COLUMNS:
                text, cls = fmt_count(value, record.get(f"{column}_suppressed")), "count"
            elif column in value_columns and ind is not None:
                text, cls = fmt_value(ind, value), "num"
            elif isinstance(value, float):
                text, cls = f"{value:.4g}", "num"
            else:
                text, cls = (
                    ("" if value is None else str(value)[:10] if column == "period_end" else str(value)),
                    "",
                )
            tag, attributes = ("th", ' scope="row"') if i == 0 else ("td", "")
            cells.append(f'<{tag}{attributes} class="{cls}">{esc(text)}</{tag}>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f"<table><caption>{esc(caption)}</caption><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def figure(
    fid: str, title: str, spec: dict, description: str, table_html: str, csv: str, note: str = ""
) -> str:
    """A chart with its text alternative, its table beside it and a link to its CSV."""
    data = json.dumps(spec, separators=(",", ":")).replace("</", "<\\/")
    note_html = f'<p class="note">{note}</p>' if note else ""
    return f"""<section class="figure" aria-labelledby="{fid}-title">
<h3 id="{fid}-title">{esc(title)}</h3>
<div class="figure-body">
<figure class="chart-wrap">
<div class="chart" id="{fid}" role="img" aria-label="{esc(description)}" data-spec="{fid}-spec"></div>
<figcaption>{esc(description)}</figcaption>
</figure>
<div class="table-wrap" tabindex="0" role="region" aria-label="Data table: {esc(title)}">{table_html}</div>
</div>
{note_html}<p class="download"><a href="data/{esc(csv)}" download>Download the data of this chart (CSV)</a></p>
<script type="application/json" id="{fid}-spec">{data}</script>
</section>
"""


def metadata(rows: list[tuple[str, str]]) -> str:
    items = "".join(f"<dt>{esc(k)}</dt><dd>{v}</dd>" for k, v in rows)
    return f'<dl class="metadata">{items}</dl>'


CSS = """
:root { --text: #1a1a1a; --muted: #4a4a4a; --link: #0a4f8f; --focus: #b34700; --rule: #c8c8c8; --panel: #f4f6f8; }
* { box-sizing: border-box; }
body { margin: 0; font-family: system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; color: var(--text);
       background: #fff; line-height: 1.45; }
a { color: var(--link); }
a:focus-visible, [tabindex]:focus-visible, button:focus-visible {
  outline: 3px solid var(--focus); outline-offset: 2px; }
.skip { position: absolute; left: -999px; top: 0; background: #fff; padding: .5rem 1rem; z-index: 10; }
.skip:focus { left: 1rem; }
header { background: #12355b; color: #fff; padding: .75rem 1.25rem; }
header a { color: #fff; }
.site-name { margin: 0 0 .4rem; font-weight: 600; }
nav ul { list-style: none; margin: 0; padding: 0; display: flex; flex-wrap: wrap; gap: .25rem 1.1rem; }
nav a[aria-current="page"] { font-weight: 700; text-decoration-thickness: 3px; }
main { padding: 1rem 1.25rem 2rem; max-width: 1280px; }
h1 { margin-top: .25rem; }
h2 { border-bottom: 2px solid var(--rule); padding-bottom: .2rem; margin-top: 2rem; }
.lead { max-width: 60rem; }
.figure { border-top: 1px solid var(--rule); padding: .75rem 0 1rem; break-inside: avoid; }
.figure h3 { margin: .2rem 0 .5rem; }
.figure-body { display: flex; flex-wrap: wrap; gap: 1rem 1.5rem; align-items: flex-start; }
.chart-wrap { margin: 0; flex: 0 1 auto; min-width: 300px; }
.chart-wrap figcaption { font-size: .9rem; color: var(--muted); max-width: 34rem; }
.table-wrap { flex: 1 1 360px; max-height: 420px; overflow: auto; border: 1px solid var(--rule); }
table { border-collapse: collapse; width: 100%; font-size: .88rem; }
caption { text-align: left; font-weight: 600; padding: .35rem .5rem; }
th, td { padding: .25rem .5rem; border-bottom: 1px solid #e3e3e3; text-align: left; vertical-align: top; }
thead th { position: sticky; top: 0; background: var(--panel); }
td.num, td.count { text-align: right; font-variant-numeric: tabular-nums; }
.headline { font-size: 1.05rem; }
.sig-higher, .sig-lower { font-weight: 600; }
.note { color: var(--muted); font-size: .9rem; max-width: 60rem; }
.metadata dt { font-weight: 700; margin-top: .6rem; }
.metadata dd { margin: 0 0 0 0; max-width: 60rem; }
footer { border-top: 1px solid var(--rule); padding: .75rem 1.25rem; font-size: .85rem; color: var(--muted); }
.cards { list-style: none; padding: 0; display: grid; gap: .75rem;
         grid-template-columns: repeat(auto-fill, minmax(16rem, 1fr)); }
.cards li { background: var(--panel); padding: .6rem .8rem; border-left: 4px solid #12355b; }
@media print {
  @page { size: A4 portrait; margin: 14mm 12mm; }
  header nav, .skip, .download { display: none; }
  header { background: none; color: #000; padding: 0; border-bottom: 1px solid #000; }
  body { font-size: 10pt; }
  main { max-width: none; padding: 0; }
  .table-wrap { max-height: none; overflow: visible; border: none; }
  .figure, .block { break-inside: avoid; page-break-inside: avoid; }
  .figure-body { display: block; }
  a { color: #000; text-decoration: none; }
  thead th { position: static; }
}
"""

SCRIPT = """
(function () {
  "use strict";
  var geo = window.LDM_GEO || {};
  document.querySelectorAll(".chart[data-spec]").forEach(function (el) {
    var spec = JSON.parse(document.getElementById(el.dataset.spec).textContent);
    var datasets = spec.datasets || {};
    var text = JSON.stringify(spec);
    Object.keys(geo).forEach(function (name) {  // the boundaries a map names, shared by every map of a page
      if (text.indexOf('"name":"' + name + '"') >= 0) { datasets[name] = geo[name]; }
    });
    spec.datasets = datasets;
    vegaEmbed(el, spec, { renderer: "svg", actions: false }).then(function () {
      el.dataset.rendered = "true";
    }).catch(function (error) { el.dataset.rendered = "failed"; console.error("chart " + el.id + ": " + error); });
  });
})();
"""
