"""`ldm dashboard` on the store `ldm demo` builds: the site's data against `ldm export`, then the pages
in a real headless Chromium.

The site is built once for the module. Its data files are checked against an export of the same
store made here, with the export's own checks (tests/test_export.py, tests/test_disclosure_attacks.py)
where they apply to a chart's rows; the browser tests open every page from the file system.
"""

from __future__ import annotations

import csv
import functools
import json
import re
import shutil
from pathlib import Path

import duckdb
import pytest
import test_disclosure_attacks as attacks
import test_export as export_checks
from conftest import REPO, query
from identifier_scan import occurring
from test_pseudonymise_extracts import raw_identifiers

from ldm.cli import main
from ldm.dashboard import charts, compare
from ldm.dashboard.site import build
from ldm.errors import LdmError

RULES = export_checks.RULES
LOW, HIGH, BASE = export_checks.LOW, export_checks.HIGH, export_checks.BASE
KEYS = {"mart_prevalence": "condition", "mart_utilisation": "measure", "mart_life_expectancy": "sex"}
CHROMIUM = Path("/usr/bin/chromium")
# Without the background-networking flags Chromium tries to reach Google's services on start.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PAGE_TYPES = {
    "overview": "index.html",
    "inequalities": "inequalities.html",
    "places": "places-neighbourhood.html",
    "msoa": "places-msoa.html",
    "indicator": "indicator-prevalence_diabetes.html",
}
# A count of people or events written out in prose ("3 deaths") anywhere on a page.
SMALL_COUNT_TEXT = re.compile(
    r"(?<![\d.,])([1-7])\s+(people|persons|patients|deaths|admissions|attendances|cases|residents)\b", re.I
)


@pytest.fixture(scope="module")
def store(sample_marts_store) -> Path:
    return sample_marts_store


@pytest.fixture(scope="module")
def site(store: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dashboard") / "site"
    assert main(["dashboard", "--store", str(store), "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def exported(store: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dashboard_export") / "publication"
    assert main(["export", "--store", str(store), "--out", str(out)]) == 0
    return out


def site_files(site: Path) -> list[tuple[str, Path]]:
    """(mart, CSV) for every chart file whose rows come from a published mart."""
    return export_checks.published_files(site / "data")


@functools.cache
def parquet_types(published: Path) -> dict[str, str]:
    schema = duckdb.sql(f"select * from read_parquet('{published}') limit 0")
    return {c: str(t) for c, t in zip(schema.columns, schema.types, strict=True)}


def typed(path: Path, exported: Path, mart: str) -> str:
    """A relation over a site CSV, its mart's columns typed as the export's Parquet types them (a
    column every row of which is suppressed has no type a CSV reader could see)."""
    with path.open(newline="") as file:
        header = next(csv.reader(file))
    types = {c: t for c, t in parquet_types(exported / f"{mart}.parquet").items() if c in header}
    return f"read_csv('{path}', header = true, types = {types})"


@pytest.fixture(scope="module")
def loaded(site: Path, exported: Path) -> tuple[duckdb.DuckDBPyConnection, list[tuple[str, Path, str]]]:
    """Every chart file of the site read once into a database: (mart, file, table)."""
    con = duckdb.connect()
    tables = []
    for number, (mart, path) in enumerate(site_files(site)):
        con.execute(f"create table site_{number} as select * from {typed(path, exported, mart)}")
        tables.append((mart, path, f"site_{number}"))
    return con, tables


def rows_of(con: duckdb.DuckDBPyConnection, table: str) -> list[dict]:
    result = con.execute(f"select * from {table}")
    return [dict(zip([d[0] for d in result.description], row, strict=True)) for row in result.fetchall()]


def test_every_row_on_the_site_is_a_row_the_export_publishes(loaded, exported: Path) -> None:
    """The site reads only what the export publishes: each chart row, on the mart's own columns,
    is a row of the export's file for that mart, value for value."""
    con, tables = loaded
    marts = {mart for mart, _, _ in tables}
    assert marts >= {"mart_prevalence", "mart_utilisation", "mart_inequalities"}
    for mart in marts:
        published = f"read_parquet('{exported / (mart + '.parquet')}')"
        columns = {d[0] for d in con.execute(f"select * from {published} limit 0").description}
        shown = []
        for _, path, table in (t for t in tables if t[0] == mart):
            header = [d[0] for d in con.execute(f"select * from {table} limit 0").description]
            shared = [c for c in header if c in columns]
            assert "period_end" in shared and ("numerator" in shared or "deaths" in shared), path.name
            shown.append((path, table, ", ".join(f'"{c}"' for c in shared)))
        for path, table, shared in shown:
            extra = export_checks.scalar(
                f"select count(*) from (select {shared} from {table} except select {shared} from {published})",
                con,
            )
            assert extra == 0, f"{path.name}: {extra} rows the export does not publish"


def test_the_maps_and_the_gaps_show_only_published_values(site: Path, exported: Path) -> None:
    """The files not tied to one mart's rows: a map shows its ranked chart's values, a life-expectancy
    gap is the export's gap of the most deprived quintile's row."""
    derived = json.loads((site / "data" / "manifest.json").read_text())["derived"]
    maps = [entry["file"] for entry in derived if entry["file"].endswith("-map.csv")]
    gaps = [entry["file"] for entry in derived if "gap" in entry["file"]]
    assert len(maps) > 20
    for name in maps:
        spine = site / "data" / name.replace("-map.csv", "-spine.csv")
        columns = duckdb.sql(
            f"select * from read_csv('{site / 'data' / name}', header = true) limit 0"
        ).columns
        shared = ", ".join(f'"{c}"' for c in columns)
        extra = export_checks.scalar(
            f"select count(*) from (select {shared} from read_csv('{site / 'data' / name}', header = true) "
            f"except select {shared} from read_csv('{spine}', header = true))"
        )
        assert extra == 0, name
    published = exported / "mart_life_expectancy.parquet"
    for name in gaps:
        extra = export_checks.scalar(
            f"""select count(*) from (
                select period_end, sex, start_age, cast(deprivation_gap as double)
                from read_csv('{site / "data" / name}', header = true)
                except select period_end, sex, start_age, deprivation_gap from read_parquet('{published}')
                where geography_level = 'imd_quintile' and area_code = '1')"""
        )
        assert extra == 0, name


def test_no_count_on_the_site_breaks_the_small_count_rule(store: Path, loaded) -> None:
    """test_export's small-count check, on every chart file: no count from 1 to 7, every count a
    multiple of 5, and a count is missing exactly when its flag says it was suppressed."""
    assert query(
        store, f"select count(*) from marts.mart_prevalence where numerator between {LOW} and {HIGH}"
    )[0][0]
    con, tables = loaded
    suppressed = published = 0
    for mart, path, table in tables:
        for column in RULES.marts[mart].counts:
            flag = column + RULES.flag_suffix
            bad, mismatched, hidden, shown = con.execute(
                f"""select count(*) filter (where {column} between 1 and {HIGH} or {column} % {BASE} <> 0
                                               or {column} < 0),
                           count(*) filter (where ({column} is null) <> {flag}),
                           count_if({flag}), count({column})
                    from {table}"""
            ).fetchone()
            assert bad == 0, f"{path.name}: {bad} published {column} values break the rules"
            assert mismatched == 0, (
                f"{path.name}: {column} is missing where its flag is not set, or not where it is"
            )
            suppressed += hidden or 0
            published += shown
    assert suppressed > 0 and published > 0


def test_no_ranked_level_leaves_exactly_one_cell_suppressed(site: Path) -> None:
    """A ranked chart shows every area of a level: test_export's group check holds on each file, so
    the city less the areas shown gives back no suppressed area."""
    checked = 0
    for mart, path in site_files(site):
        if not path.name.endswith("-spine.csv"):
            continue
        for column in RULES.marts[mart].counts:
            assert (
                export_checks.groups_with_one_suppressed(path, KEYS[mart], column, "geography_level", "true")
                == 0
            )
            checked += 1
    assert checked > 20


def prevalence_rows(loaded) -> list[dict]:
    con, tables = loaded
    return [
        row
        for mart, _, table in tables
        if mart == "mart_prevalence"
        for row in rows_of(con, table)
        if row["numerator"] is not None and row["denominator"] is not None
    ]


def test_the_rates_on_the_site_give_back_no_count(store: Path, loaded) -> None:
    """test_disclosure_attacks' back-calculation, on the prevalence rows the site shows; the same rows
    with values computed from exact counts (the previous format) do give counts back, so the attack
    can succeed here."""
    rows = prevalence_rows(loaded)
    assert len(rows) > 50
    exact = attacks.truth(store, "mart_prevalence", attacks.PREVALENCE_KEYS)
    keys = attacks.PREVALENCE_KEYS
    shown = {
        tuple(r[k] for k in keys): (r["crude_rate"], r["crude_rate_lower"], r["crude_rate_upper"])
        for r in rows
    }
    assert attacks.back_calculated(rows, exact, shown) == 0
    from_exact = {
        key: attacks.prevalence_values(exact[key]["numerator"], exact[key]["denominator"]) for key in shown
    }
    assert attacks.back_calculated(rows, exact, from_exact) > 0


def test_every_rate_on_the_site_is_that_of_its_published_counts(loaded) -> None:
    for row in prevalence_rows(loaded):
        assert (
            row["crude_rate"],
            row["crude_rate_lower"],
            row["crude_rate_upper"],
        ) == attacks.prevalence_values(row["numerator"], row["denominator"])


def chart_specs(page: Path) -> list[tuple[dict, str]]:
    """Each chart's Vega-Lite spec on a page and the CSV file its section links to."""
    text = page.read_text()
    found = []
    for section in text.split('<section class="figure"')[1:]:
        spec = re.search(r'<script type="application/json" id="[^"]+">(.*?)</script>', section, re.S)
        csv = re.search(r'<a href="data/([^"]+)" download>', section)
        assert spec and csv, page.name
        found.append((json.loads(spec.group(1).replace("<\\/", "</")), csv.group(1)))
    return found


def test_each_csv_holds_exactly_what_its_chart_draws(site: Path) -> None:
    """Every chart's data, row for row and column for column, is its CSV download."""
    compared = 0
    for page in sorted(site.glob("*.html")):
        for spec, name in chart_specs(page):
            drawn = spec["datasets"]["table"]
            relation = duckdb.sql(
                f"select * from read_csv('{site / 'data' / name}', header = true, all_varchar = true)"
            )
            assert len(drawn) == len(relation.fetchall()), name
            assert list(drawn[0] if drawn else relation.columns) == relation.columns, name
            for row, line in zip(drawn, relation.fetchall(), strict=True):
                for value, text in zip(row.values(), line, strict=True):
                    if value is None:
                        assert text is None, name
                    elif isinstance(value, bool):
                        assert text == str(value), name
                    elif isinstance(value, int | float):
                        assert float(text) == pytest.approx(value, rel=1e-12), name
                    else:
                        assert text == str(value), name
            compared += 1
    assert compared > 100


def test_indicator_pages_carry_their_metadata_and_build_stamp(store: Path, site: Path) -> None:
    invocation, audit_head = query(
        store, "select distinct dbt_invocation_id, audit_head from marts.mart_prevalence"
    )[0]
    pages = sorted(site.glob("indicator-*.html"))
    assert len(pages) >= 12
    for page in pages:
        text = page.read_text()
        for field in (
            "Definition",
            "Numerator",
            "Denominator",
            "Source feeds",
            "Method",
            "Caveats",
            "Build stamp",
        ):
            assert f"<dt>{field}" in text, (page.name, field)
        caveats = re.search(r"<dt>Caveats[^<]*</dt><dd>(.*?)</dd>", text).group(1)
        assert "suppressed" in caveats and "linked" in caveats  # the disclosure and linkage caveats
    diabetes = (site / "indicator-prevalence_diabetes.html").read_text()
    assert invocation in diabetes and audit_head in diabetes
    assert "aged 17 or over" in diabetes  # the register's minimum age, as the published rows give it


def test_the_site_needs_nothing_outside_its_folder(site: Path) -> None:
    """Every script, style and link is a file in the site: no CDN, no web font, no tiles."""
    for page in site.glob("*.html"):
        text = page.read_text()
        for target in re.findall(r'(?:src|href)="([^"]+)"', text):
            assert "://" not in target and not target.startswith("//"), (page.name, target)
            assert (site / target.split("#")[0]).exists() or target.startswith("#"), (page.name, target)
    for asset in (site / "assets").iterdir():
        text = asset.read_text()
        assert "@import" not in text and "fonts.googleapis" not in text and "url(http" not in text, asset.name


def test_every_ward_and_msoa_has_a_boundary(site: Path) -> None:
    """Each area a map shows has its own boundary among the committed ones (ward names as the marts
    spell them, MSOA codes), so no published area is left off a map."""
    text = (site / "assets" / "boundaries.js").read_text()
    geo = json.loads(text.removeprefix("window.LDM_GEO = ").removesuffix(";\n"))
    for level, count in (("ward", 33), ("msoa11", 107)):
        codes = {feature["properties"]["code"] for feature in geo[f"geo_{level}"]}
        assert len(codes) == count and None not in codes, level
        for path in (site / "data").glob(f"*-{level}-map.csv"):
            shown = {
                row[0]
                for row in duckdb.sql(f"select area_code from read_csv('{path}', header = true)").fetchall()
            }
            assert shown == codes, path.name


def luminance(colour: str) -> float:
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


@pytest.mark.parametrize("name", sorted(charts.PALETTE))
def test_chart_colours_meet_wcag_contrast_for_graphics(name: str) -> None:
    """WCAG 2.2 1.4.11: marks need 3:1 against the page; text colours 4.5:1 (1.4.3)."""
    needed = 4.5 if name == "city" else 3.0
    assert contrast(charts.PALETTE[name], charts.BACKGROUND) >= needed


def test_page_text_colours_meet_wcag_contrast(site: Path) -> None:
    css = (site / "assets" / "site.css").read_text()
    colours = dict(re.findall(r"--(text|muted|link|focus): (#[0-9a-f]{6})", css))
    assert set(colours) == {"text", "muted", "link", "focus"}
    for colour in colours.values():
        assert contrast(colour, "#ffffff") >= 4.5
    assert contrast("#ffffff", re.search(r"header \{ background: (#[0-9a-f]{6})", css).group(1)) >= 4.5


def test_user_mistakes_are_one_line_errors(store: Path, site: Path, tmp_path: Path, capsys) -> None:
    with pytest.raises(LdmError, match="not an empty folder"):
        build(store, site)
    with pytest.raises(LdmError, match="no store at"):
        build(tmp_path / "missing.duckdb", tmp_path / "out")
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))
    assert main(["dashboard", "--store", str(tmp_path / "missing.duckdb"), "--out", str(tmp_path / "o")]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(errors) == 1 and errors[0].startswith("ldm dashboard: error: no store at")


# ----------------------------------------------------------------------------------- in Chromium


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium from the system packages (tasks.py installs it), driven by Playwright."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `python3 tasks.py test` installs it (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Tab:
    """One browser tab that records the console errors and the requests of the page it shows."""

    def __init__(self, browser) -> None:
        self.page = browser.new_page(viewport={"width": 1280, "height": 900})
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.requests.append(r.url))

    def open(self, site: Path, name: str):
        """Open a page from the file system and wait until every chart has been drawn (or failed)."""
        self.errors.clear()
        self.requests.clear()
        self.page.goto((site / name).as_uri())
        self.page.wait_for_function(
            "[...document.querySelectorAll('.chart')].every(c => c.dataset.rendered)", timeout=60_000
        )
        return self.page


@pytest.mark.slow
def test_every_page_renders_offline_with_no_error_and_no_small_count(
    browser, site: Path, tmp_path: Path
) -> None:
    names = sorted(p.name for p in site.glob("*.html"))
    assert len(names) >= 20
    shots = {v: k for k, v in PAGE_TYPES.items()}
    root = site.resolve().as_uri() + "/"
    tab = Tab(browser)
    for name in names:
        page = tab.open(site, name)
        assert tab.errors == [], (name, tab.errors)
        assert tab.requests and [r for r in tab.requests if not r.startswith(root)] == [], name
        charts_drawn = page.evaluate(
            "[...document.querySelectorAll('.chart')].map(c => [c.dataset.rendered, c.querySelectorAll('svg').length])"
        )
        assert all(state == "true" and svgs > 0 for state, svgs in charts_drawn), name
        assert charts_drawn or name == "indicators.html", name  # every page but the list has charts
        text = page.inner_text("body")
        assert not SMALL_COUNT_TEXT.search(text), (name, SMALL_COUNT_TEXT.search(text))
        # nothing drawn from a value that is not there (a legend over no published area reads NaN)
        drawn = page.evaluate(
            "[...document.querySelectorAll('.chart svg')].map(s => s.textContent).join(' ')"
        )
        assert "NaN" not in text and "NaN" not in drawn, name
        for cell in page.eval_on_selector_all("td.count", "cells => cells.map(c => c.textContent)"):
            if cell != "suppressed":
                count = int(cell.replace(",", ""))
                assert count % BASE == 0 and not LOW <= count <= HIGH, (name, cell)
        if name in shots:
            page.screenshot(path=str(tmp_path / f"{shots[name]}.png"), full_page=False)
    tab.page.close()
    assert {p.stem for p in tmp_path.glob("*.png")} == set(PAGE_TYPES)


@pytest.mark.slow
def test_pages_work_by_keyboard_and_print_on_a4(browser, site: Path) -> None:
    page = Tab(browser).open(site, "places-neighbourhood.html")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    seen = set()
    for _ in range(12):  # from the nav, the tab order reaches the pages and then the data tables
        page.keyboard.press("Tab")
        seen.add(
            page.evaluate("document.activeElement.getAttribute('role') || document.activeElement.tagName")
        )
    assert "region" in seen  # a table's scrolling region takes focus, so it scrolls by keyboard
    page.emulate_media(media="print")
    assert page.evaluate("getComputedStyle(document.querySelector('nav')).display") == "none"
    assert page.evaluate("getComputedStyle(document.querySelector('.table-wrap')).overflow") == "visible"
    pdf = page.pdf(format="A4", prefer_css_page_size=True)
    assert pdf.startswith(b"%PDF") and len(pdf) > 10_000
    page.close()


def test_the_readme_shows_the_committed_overview_screenshot() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert "docs/images/dashboard_overview.png" in readme
    image = Path(__file__).resolve().parents[1] / "docs" / "images" / "dashboard_overview.png"
    assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_failed_build_leaves_no_site(store: Path, tmp_path: Path) -> None:
    """A rules file the export refuses stops the build before anything is written where DIR is."""
    rules = tmp_path / "rules.yaml"
    shutil.copy(RULES.path, rules)
    rules.write_text(rules.read_text().replace("publish: &le_rule", "recompute: '1', publish: &le_rule"))
    with pytest.raises(LdmError, match="exactly one of"):
        build(store, tmp_path / "site", rules)
    assert [p.name for p in tmp_path.iterdir()] == ["rules.yaml"]


# ----------------------------------------------------------------------------------- statistics


@pytest.mark.parametrize(
    ("x1", "n1", "x2", "n2"), [(50, 1000, 80, 1000), (400, 5000, 410, 5200), (10, 20, 15, 20)]
)
def test_the_change_in_a_proportion_is_the_chi_square_test(x1, n1, x2, n2) -> None:
    """The two-proportion z-test equals the chi-square test of the 2x2 table without correction."""
    from scipy.stats import chi2_contingency

    result = compare.change(
        "proportion", {"numerator": x1, "denominator": n1}, {"numerator": x2, "denominator": n2}, "", "", ""
    )
    expected = chi2_contingency([[x1, n1 - x1], [x2, n2 - x2]], correction=False).pvalue
    assert result.p_value == pytest.approx(expected, rel=1e-9)
    assert result.direction == ("similar" if expected >= 0.05 else "higher" if x2 / n2 > x1 / n1 else "lower")


@pytest.mark.parametrize(
    ("earlier", "latest", "significant"),
    [
        ((200, 10_000), (200, 10_000), False),
        ((200, 10_000), (400, 10_000), True),
        ((40, 1_000), (30, 1_000), False),
    ],
)
def test_the_change_in_a_rate_is_the_exact_poisson_test(earlier, latest, significant) -> None:
    result = compare.change(
        "rate",
        {"numerator": earlier[0], "denominator": earlier[1]},
        {"numerator": latest[0], "denominator": latest[1]},
        "",
        "",
        "",
    )
    assert result.significant is significant
    if earlier == latest:
        assert result.p_value == pytest.approx(1.0) and result.direction == "similar"
    suppressed = compare.change(
        "rate", {"numerator": None, "denominator": 10}, {"numerator": 5, "denominator": 10}, "", "", ""
    )
    assert suppressed.p_value is None and suppressed.direction == "not tested"


def test_the_fitted_sii_line_is_the_weighted_least_squares_line() -> None:
    """The line drawn is phe_sii's fit: checked against numpy's weighted polynomial fit."""
    import numpy as np

    values, weights = [0.09, 0.08, 0.075, 0.06, 0.05], [900, 1100, 1000, 950, 800]
    lowers, uppers = [v - 0.01 for v in values], [v + 0.01 for v in values]
    fit = compare.gradient(values, weights, lowers, uppers)
    share = np.array(weights) / sum(weights)
    ranks = np.cumsum(share) - share / 2
    slope, intercept = np.polyfit(ranks, values, 1, w=np.sqrt(share))
    assert fit.ranks == pytest.approx(tuple(ranks))
    assert (fit.sii, fit.fitted_most, fit.fitted_least) == pytest.approx(
        (slope, intercept, intercept + slope)
    )
    assert fit.sii_lower < fit.sii < fit.sii_upper < 0  # higher in the more deprived groups
    assert (
        compare.gradient([*values[:4], None], weights, lowers, uppers) is None
    )  # a suppressed group: no line


def test_no_identifier_reaches_a_page_or_data_file(site: Path) -> None:
    """No NHS number, name or postcode of the extracts the store was built from, in any file of the
    site (pages, CSVs, the manifest, the scripts)."""
    identifiers = {
        v for v in raw_identifiers(REPO / "sample_data" / "extracts", dates_of_birth=False) if len(v) >= 6
    }
    assert identifiers
    files = [path for path in site.rglob("*") if path.is_file()]
    assert len(files) > 100
    for path in files:
        text = path.read_bytes().decode(errors="replace")
        assert not occurring(identifiers, text), path
