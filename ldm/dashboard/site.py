"""Assemble the site: every page, its charts' CSV files, the JavaScript and the data manifest.

The site is written to a hidden folder beside DIR and renamed to DIR only when complete, as the
export does, so a failed build leaves nothing half-written where a reader might open it.
"""

from __future__ import annotations

import datetime
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ldm.dashboard import content, figures, pages
from ldm.dashboard.geography import ATTRIBUTION, Maps, maps
from ldm.dashboard.indicators import INDICATORS
from ldm.dashboard.published import Published, read_published
from ldm.errors import LdmError

DATA_MANIFEST = "manifest.json"


@dataclass
class SiteResult:
    folder: Path
    pages: list[str]
    data_files: int
    seconds: float


def build(
    store: Path, out: Path, rules: Path | None = None, progress: Callable[[str], None] = lambda m: None
) -> SiteResult:
    """Build the site for `store` into the new or empty folder `out`."""
    started = time.perf_counter()
    out = Path(out).expanduser().absolute()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise LdmError(f"{out} already exists and is not an empty folder; choose a new --out")
    if not out.parent.is_dir():
        raise LdmError(f"folder {out.parent} does not exist; create it first or choose another --out")
    partial = out.with_name(f".{out.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    (partial / "data").mkdir(parents=True)
    (partial / "assets").mkdir()
    bundle = _start_bundle(partial / "assets" / BUNDLE)
    try:
        progress("publishing the marts under disclosure control")
        pub = read_published(store, out, rules, progress)
        try:
            writer = content.DataFiles(partial)
            geo = maps(_areas(pub))
            names = _write_pages(pub, writer, geo, progress)
            progress("writing the scripts")
            _write_assets(partial, geo)
            _write_manifest(pub, writer)
        finally:
            pub.con.close()
        if bundle.wait() != 0:
            raise LdmError(
                f"vl-convert could not write the Vega bundle: {bundle.stderr.read().strip()[-300:]}"
            )
    except BaseException:
        bundle.kill()
        bundle.wait()
        shutil.rmtree(partial, ignore_errors=True)
        raise
    finally:
        bundle.stderr.close()
    if out.exists():
        out.rmdir()
    partial.rename(out)
    files = sum(len(v) for v in writer.files.values())
    return SiteResult(out, names, files, time.perf_counter() - started)


def _footer(pub: Published) -> str:
    store, rules = pub.manifest["store"], pub.manifest["rules"]
    return (
        f"<p>Every figure here was published by <code>ldm export</code> under the disclosure-control rules "
        f"(version {pages.esc(rules['version'])}, SHA-256 {pages.esc(rules['sha256'][:16])}…): counts from 0 to 7 "
        "are suppressed and the rest rounded to the nearest 5. Store audit head "
        f"{pages.esc(store.get('audit_seq'))}:{pages.esc((store.get('audit_head') or '')[:16])}…; site built "
        f"{datetime.datetime.now(datetime.UTC).strftime('%Y-%m-%d %H:%M UTC')}. Maps: {pages.esc(ATTRIBUTION)}</p>"
    )


def _areas(pub: Published) -> dict[str, dict[str, str]]:
    """The published areas of each place level, {level: {code: name}}, to match to boundaries."""
    return {
        level: dict(
            pub.con.execute(
                "select distinct area_code, area_name from (select area_code, area_name, geography_level "
                "from mart_prevalence union all select area_code, area_name, geography_level from mart_utilisation) "
                "where geography_level = ?",
                [level],
            ).fetchall()
        )
        for _, levels in figures.TIERS.values()
        for level in levels
    }


def _write_pages(
    pub: Published, writer: content.DataFiles, geo: Maps, progress: Callable[[str], None]
) -> list[str]:
    indicators = [i for i in INDICATORS if figures.available(pub, i)]
    footer = _footer(pub)
    written = []

    def write(name: str, title: str, body: str) -> None:
        (writer.folder / name).write_text(pages.page(title, name, body, footer), encoding="utf-8")
        written.append(name)

    progress("overview and indicator pages")
    trends = {ind.key: figures.trend(pub, ind) for ind in indicators}
    write("index.html", "Overview: Leeds at a glance", content.overview(indicators, trends, writer))
    progress("inequalities")
    write(
        "inequalities.html",
        "Inequalities by deprivation",
        content.inequalities(pub, indicators, trends, writer),
    )
    progress("places")
    for tier, (title, levels) in figures.TIERS.items():
        write(f"places-{tier}.html", title, content.places(pub, indicators, tier, levels, geo, writer))
    write("indicators.html", "Indicators and their definitions", content.indicator_index(indicators))
    for ind in indicators:
        write(
            f"indicator-{ind.key}.html", ind.title, content.indicator_page(pub, ind, trends[ind.key], writer)
        )
    return written


BUNDLE = "vega-bundle.js"


def _start_bundle(path: Path) -> subprocess.Popen:
    """Write vl-convert's Vega, Vega-Lite and vega-embed bundle in a process of its own: it takes a
    couple of seconds of one core (holding the GIL), while the export and the pages use the other."""
    code = (
        "import sys, vl_convert; from pathlib import Path; "
        "Path(sys.argv[1]).write_text(vl_convert.javascript_bundle(), encoding='utf-8')"
    )
    return subprocess.Popen(
        [sys.executable, "-c", code, str(path)], stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )


def _write_assets(folder: Path, geo: Maps) -> None:
    """The style, the script that draws the charts, and the boundaries every map of a page shares."""
    assets = folder / "assets"
    (assets / "boundaries.js").write_text(
        "window.LDM_GEO = " + json.dumps(geo.datasets, separators=(",", ":")) + ";\n", encoding="utf-8"
    )
    (assets / "site.css").write_text(pages.CSS, encoding="utf-8")
    (assets / "site.js").write_text(pages.SCRIPT, encoding="utf-8")


def _write_manifest(pub: Published, writer: content.DataFiles) -> None:
    """data/manifest.json: each CSV with the mart its published rows come from (the export's
    manifest format, so the export's checks read it), and the export it was built from."""
    content = {
        "export": {"store": pub.manifest["store"], "rules": pub.manifest["rules"]},
        "marts": [
            {"mart": mart, "files": files} for mart, files in writer.files.items() if mart != "derived"
        ],
        "derived": writer.files.get("derived", []),
    }
    (writer.folder / "data" / DATA_MANIFEST).write_text(json.dumps(content, indent=2, default=str) + "\n")
