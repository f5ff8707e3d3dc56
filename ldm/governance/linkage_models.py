"""The audit report's section on the probabilistic linkage models (governance.linkage_models).

What each saved model is (prior, decision rule, what it was trained on, how many links it made),
its m, u and weight for every comparison level, and, when the report is written to a file, charts
beside it: Splink's match-weights chart of each model and a waterfall of a few of its links, each
link's levels found from its stored weight (ldm.linkage.fellegi_sunter.explain). Parameters and
comparison levels only: the section reads no token table, so no token can reach it or a chart.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
from splink import SettingsCreator
from splink.internals.charts import WaterfallChart
from splink.internals.waterfall_chart import records_to_waterfall_data

from ldm.dialects import current as dialect
from ldm.governance import markdown
from ldm.linkage.fellegi_sunter import explain

NOTE = (
    "Each model is a Fellegi-Sunter model (Splink) the probabilistic step trained, saved by the batch that "
    "trained it. A probabilistic link names its model in algorithm_version (`...+fs:<model_id>`); its weight "
    "is the model's prior weight plus one level weight per comparison (log2 of m/u). It links only if the "
    "weight reaches the threshold and every other person is at least the margin lower."
)
NEWEST = 3  # models whose parameters and charts the report shows in full
EXAMPLES = 3  # example links drawn as waterfalls per model


def models_sql(batches: list[int] | None) -> str:
    """The models trained in the chosen batches or named by their links, newest first, with their links."""
    chosen = ""
    if batches:
        ids = ", ".join(str(int(b)) for b in batches)
        chosen = f"""where m.batch_id in ({ids}) or m.model_id in (
                         select distinct split_part(algorithm_version, 'fs:', 2) from linkage.record_links
                         where batch_id in ({ids}) and algorithm_version like '%fs:%')"""
    return f"""
        with links as (
            select split_part(algorithm_version, 'fs:', 2) as model_id,
                   count(*) filter (where step = 'probabilistic') as links,
                   count(*) filter (where step = 'ambiguous:probabilistic') as ambiguous
            from linkage.record_links where algorithm_version like '%fs:%' group by 1
        )
        select m.model_id, m.batch_id, m.trained_at, m.compared,
               round(log2(m.prior / (1 - m.prior)), 2) as prior_weight,
               round(m.blocked_prior, 5) as blocked_prior, m.threshold, m.margin, m.spine_persons,
               m.training_records, m.training_undecided, m.training_pairs, m.em_iterations, m.splink_version,
               coalesce(l.links, 0) as links, coalesce(l.ambiguous, 0) as ambiguous
        from governance.linkage_models m left join links l using (model_id)
        {chosen}
        order by m.trained_at desc, m.batch_id desc"""


def examples_sql() -> str:
    """A few links of the model (parameter: `%fs:<model_id>`): the weakest, a middle one, the strongest."""
    middle = dialect().quantile_disc("weight", 0.5)
    return f"""with w as (select distinct weight from linkage.record_links
                           where step = 'probabilistic' and algorithm_version like ?)
               select weight from w where weight in (
                   (select min(weight) from w), (select {middle} from w), (select max(weight) from w))
               order by weight limit {EXAMPLES}"""


def parameter_lines(parameters: list[dict]) -> list[str]:
    lines = ["| comparison | level | m | u | weight |", "|---|---|---|---|---|"]
    for p in parameters:
        m, u = p["m"], p["u"]
        shown = "" if m is None else f"{m:.4g}", "" if u is None else f"{u:.4g}"
        lines.append(f"| {p['comparison']} | {p['level']} | {shown[0]} | {shown[1]} | {p['weight']:.2f} |")
    return lines


def waterfall_record(settings: dict, weight: float) -> dict | None:
    """The comparison vector of a link, found from its weight, as Splink's waterfall reads it."""
    found = explain(settings, weight)
    if len(found) != 1:
        return None
    record = {f"gamma_{name}": gamma for name, _, _, gamma in found[0]}
    record["match_weight"] = weight
    return record


def write_png(spec: dict, path: Path) -> None:
    import vl_convert  # rendering is only needed when charts are written

    path.write_bytes(vl_convert.vegalite_to_png(spec, scale=1))


def model_charts(con, model_id: str, settings: dict, folder: Path) -> list[str]:
    """Write the model's match-weights chart and waterfalls of a few links; the lines naming them."""
    splink_settings = SettingsCreator.from_path_or_dict(settings).get_settings("duckdb")
    weights = folder / f"linkage-model-{model_id}-weights.png"
    write_png(splink_settings.match_weights_chart().chart_dict, weights)
    lines = [f"![match weights of model {model_id}]({weights.name})"]
    for n, (weight,) in enumerate(con.execute(examples_sql(), [f"%fs:{model_id}"]).fetchall(), start=1):
        record = waterfall_record(settings, weight)
        if record is None:
            continue
        data = records_to_waterfall_data([record], splink_settings, True)
        path = folder / f"linkage-model-{model_id}-link-{n}.png"
        write_png(WaterfallChart(data).chart_dict, path)
        lines.append(f"![a link of weight {weight:.2f}]({path.name})")
    return lines


def section(con: duckdb.DuckDBPyConnection, batches: list[int] | None, charts: Path | None) -> list[str]:
    """The report's lines on the models; with `charts`, their charts are written in that folder."""
    lines = ["", "## Probabilistic linkage models", "", NOTE, ""]
    present = con.execute(
        "select count(*) from duckdb_tables() where database_name = current_database() "
        "and schema_name = 'governance' and table_name = 'linkage_models'"
    ).fetchall()[0][0]
    if not present:
        return [*lines, "(this store predates saved linkage models: `ldm db upgrade` adds them)"]
    result = con.execute(models_sql(batches))
    rows = result.fetchall()
    lines += markdown.rows_table([d[0] for d in result.description], rows)
    if not rows:
        return lines
    if charts is None:
        lines += ["", "(charts are written beside the report when it is written to a file: --out)"]
    for row in rows[:NEWEST]:
        model_id = row[0]
        parameters, settings = con.execute(
            "select parameters, model_json from governance.linkage_models where model_id = ?", [model_id]
        ).fetchone()
        lines += ["", f"### Model {model_id}", ""]
        lines += parameter_lines(json.loads(parameters))
        if charts is not None:
            lines += ["", *model_charts(con, model_id, json.loads(settings), charts)]
    return lines
