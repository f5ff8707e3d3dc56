"""Text alternatives and headline sentences, written from the same tables the charts draw.

A screen-reader user, or a reader of the printed board paper, gets the chart's message in words:
first and last values, ranges, how many areas differ from the city, the fitted gradient.
"""

from __future__ import annotations

import pandas as pd

from ldm.dashboard.compare import Change, Gradient
from ldm.dashboard.figures import LEVEL_NAMES
from ldm.dashboard.indicators import Indicator
from ldm.dashboard.pages import fmt_value


def _published(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    return frame[frame[column].notna()]


def trend(ind: Indicator, frame: pd.DataFrame) -> str:
    shown = _published(frame, ind.value)
    if shown.empty:
        return f"Line chart of {ind.short} in Leeds: no period has a published value."
    first, last = shown.iloc[0], shown.iloc[-1]
    return (
        f"Line chart of {ind.short} in Leeds over {len(frame)} rolling 12-month periods ({len(shown)} published), "
        f"with the 95% interval as a band: {fmt_value(ind, first[ind.value])} in the {first['period_label']}, "
        f"{fmt_value(ind, last[ind.value])} in the {last['period_label']}."
    )


def change(ind: Indicator, latest: dict | None, earlier: dict | None, result: Change) -> str:
    if latest is None:
        return "No published value."
    now = (
        f"{fmt_value(ind, latest.get(ind.value))} in the {latest['period_label']} "
        f"(95% interval {fmt_value(ind, latest.get(ind.lower))} to {fmt_value(ind, latest.get(ind.upper))})"
    )
    if earlier is None or result.p_value is None:
        return f"{now}; change not tested ({result.test.replace('not tested: ', '')})."
    before = f"{fmt_value(ind, earlier.get(ind.value))} a year earlier"
    p = "p < 0.001" if result.p_value < 0.001 else f"p = {result.p_value:.3f}"
    if result.significant:
        verdict = f"significantly {result.direction} than {before} ({result.test}, {p})"
    else:
        verdict = f"no significant change from {before} ({result.test}, {p})"
    return f"{now}: {verdict}."


def gradient(ind: Indicator, frame: pd.DataFrame, value: str, fit: Gradient | None, reason: str) -> str:
    parts = [f"quintile {int(r['imd_quintile'])} {fmt_value(ind, r[value])}" for _, r in frame.iterrows()]
    text = (
        f"Chart of {ind.short} by IMD quintile, most deprived (1) to least deprived (5): {', '.join(parts)}."
    )
    if fit is None:
        return f"{text} No fitted line: {reason}."
    sii = (
        fmt_value(ind, abs(fit.sii))
        if ind.kind != "proportion"
        else f"{abs(fit.sii) * 100:.2f} percentage points"
    )
    direction = "higher" if fit.sii < 0 else "lower"
    return (
        f"{text} The fitted line (slope index of inequality) puts the most deprived {sii} {direction} than the "
        f"least deprived (SII {fit.sii:.4g}, 95% interval {fit.sii_lower:.4g} to {fit.sii_upper:.4g}; "
        f"RII {fit.rii:.3f}, {fit.rii_lower:.3f} to {fit.rii_upper:.3f})."
    )


def spine(ind: Indicator, frame: pd.DataFrame, level: str) -> str:
    name = LEVEL_NAMES[level]
    shown = _published(frame, ind.value).sort_values(ind.value)
    if shown.empty:
        return f"Ranked chart of {ind.short} by {name}: no {name} has a published value."
    counts = frame["comparison"].value_counts()
    tally = ", ".join(
        f"{counts.get(c, 0)} {c}" for c in ("higher than Leeds", "similar to Leeds", "lower than Leeds")
    )
    top, bottom = shown.iloc[-1], shown.iloc[0]
    return (
        f"Ranked chart of {ind.short} for {len(frame)} areas ({name}), {len(shown)} published, each with its 95% "
        f"interval and a line at the Leeds value: highest {top['area_name']} {fmt_value(ind, top[ind.value])}, "
        f"lowest {bottom['area_name']} {fmt_value(ind, bottom[ind.value])}; {tally}."
    )


def choropleth(ind: Indicator, frame: pd.DataFrame, level: str, unmatched: list[str]) -> str:
    name = LEVEL_NAMES[level]
    shown = _published(frame, ind.value)
    text = (
        f"Map of Leeds shaded by {ind.short} for each {name} ({len(shown)} of {len(frame)} published; grey where "
        "not published or where no boundary matches)."
    )
    if unmatched:
        text += f" Not on the map (no matching boundary): {', '.join(unmatched)}."
    return text + " The table beside it lists every area."
