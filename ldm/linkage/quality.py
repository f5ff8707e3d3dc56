"""Linkage quality against ground truth: precision, recall and link rates, overall and by group.

A record's true match is the spine row of its true person; a record of someone not on the
spine (out of area, or no longer registered) has none, so linking it is a false positive. Link
rates are broken down by IMD quintile, age band and sex of the true person, because missed
links in deprived groups bias every inequality figure built on the linked data.
"""

from __future__ import annotations

import datetime
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from ldm.feeds.spec import builtin_specs
from ldm.linkage.columns import VALID_NHS_TOKEN
from ldm.linkage.engine import LinkageConfig, LinkageRun, link
from ldm.pseudonymise.batch import pseudonymise_folder
from ldm.pseudonymise.keys import init_key
from ldm.sql import literal
from ldm.synthetic.config import ACTIVITY_FEEDS

AGE_BANDS = (
    "case when age < 16 then '0-15' when age < 45 then '16-44' when age < 65 then '45-64' "
    "when age < 80 then '65-79' else '80+' end"
)
GROUPS = {
    "feed": "feed",
    "step": "step",
    "nhs_number": "case when nhs_valid then 'valid' else 'not valid' end",
    "imd_quintile": "cast(imd_quintile as varchar)",
    "age_band": AGE_BANDS,
    "sex": "true_sex",
}
# Groups over a subset of the records.
SUBSET_GROUPS = {"no_valid_nhs_number_by_feed": ("feed", "not nhs_valid")}


@dataclass
class QualityReport:
    overall: dict[str, float]
    by: dict[str, list[dict]] = field(default_factory=dict)
    run: LinkageRun | None = None

    def lines(self) -> list[str]:
        """A plain-text report (figures only, no identifiers)."""
        out = ["overall " + _figures(self.overall)]
        for group, rows in self.by.items():
            for row in rows:
                out.append(f"{group}={row['group']} " + _figures(row))
        return out


def _figures(row: dict) -> str:
    def show(value):
        return "-" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)

    names = ("records", "in_spine", "linked", "true_links", "precision", "recall", "link_rate")
    return " ".join(f"{name}={show(row[name])}" for name in names)


MEASURES = """
    count(*) as records,
    count(*) filter (where true_spine) as in_spine,
    count(person_key_linked) as linked,
    count(*) filter (where person_key_linked = person_key) as true_links,
    true_links / nullif(linked, 0) as precision,
    true_links / nullif(in_spine, 0) as recall,
    linked / count(*) as link_rate
"""


def evaluate(con: duckdb.DuckDBPyConnection, scored: str) -> QualityReport:
    """Figures from `scored`: one row per record with person_key (true), person_key_linked
    (true person of the spine row it was linked to, or null), true_spine (the true person is
    on the spine), step, feed, nhs_valid, imd_quintile, age and true_sex."""
    result = con.execute(f"select {MEASURES} from {scored}")
    columns = [d[0] for d in result.description]
    report = QualityReport(overall=dict(zip(columns, result.fetchall()[0], strict=True)))
    every_record = {name: (expression, "true") for name, expression in GROUPS.items()}
    for name, (expression, where) in (every_record | SUBSET_GROUPS).items():
        rows = con.execute(
            f"select {expression} as grp, {MEASURES} from {scored} where {where} group by grp order by grp"
        ).fetchall()
        report.by[name] = [dict(zip(["group", *columns], row, strict=True)) for row in rows]
    return report


def build_spine(con: duckdb.DuckDBPyConnection, registrations: str) -> None:
    """qa_spine: current GP registrations, one row per person (the latest registration).

    Without linkage a "person" is a valid NHS number token; a registration without one stands
    for its own person. person_id is the registration's record id.
    """
    con.execute(
        f"""create or replace temp table qa_spine as
            select record_id as person_id, * from {registrations}
            where registration_end is null and date_of_death is null
            qualify row_number() over (
                partition by coalesce({VALID_NHS_TOKEN},
                                      cast(record_id as varchar))
                order by registration_start desc, record_id desc) = 1"""
    )


def run_on_sample(
    sample: Path,
    *,
    config: LinkageConfig | None = None,
    work: Path | None = None,
    today: datetime.date = datetime.date(2025, 4, 1),
) -> QualityReport:
    """Pseudonymise a sample folder (extracts/ and ground_truth/) with a temporary key, link
    the activity feeds to the spine of current GP registrations, and measure the result."""
    with tempfile.TemporaryDirectory(prefix="ldm-linkage-") as temporary:
        folder = Path(work) if work else Path(temporary)
        key = init_key(Path(temporary) / "linkage.key")
        pseudonymised = folder / "pseudonymised"
        # A copy of the extracts: pseudonymisation writes quarantine files next to its input.
        extracts = shutil.copytree(sample / "extracts", Path(temporary) / "extracts", dirs_exist_ok=True)
        result = pseudonymise_folder(extracts, pseudonymised, key, builtin_specs(), today=today)
        if result.failed:
            raise RuntimeError(f"pseudonymisation failed for {len(result.failed)} extract(s)")
        con = duckdb.connect()
        return _link_and_measure(con, pseudonymised, sample / "ground_truth", config)


def _parquet(folder: Path, feed: str) -> str:
    return f"read_parquet({literal(folder / feed / '*.parquet')}, union_by_name = true)"


def _link_and_measure(
    con: duckdb.DuckDBPyConnection, pseudonymised: Path, truth: Path, config: LinkageConfig | None
) -> QualityReport:
    build_spine(con, _parquet(pseudonymised, "gp_registrations"))
    feeds = [f for f in ACTIVITY_FEEDS if (pseudonymised / f).is_dir()]
    union = " union all by name ".join(
        f"select {literal(feed)} as feed, * from {_parquet(pseudonymised, feed)}" for feed in feeds
    )
    con.execute(
        "create or replace temp table qa_records as "
        f"select row_number() over () as record_key, * from ({union})"
    )
    run = link(con, "qa_spine", "qa_records", config=config)
    as_of = datetime.date(2025, 3, 31)
    con.execute(
        f"""create or replace temp table qa_truth as
            select distinct feed, record_id, person_key from {literal(truth / "records.parquet")}"""
    )
    con.execute(
        f"""create or replace temp table qa_scored as
            with spine_keys as (
                select s.person_id, t.person_key from qa_spine s
                join qa_truth t on t.feed = 'gp_registrations' and t.record_id = s.record_id
            )
            select r.feed, coalesce(r.nhs_number_valid, false) as nhs_valid, l.step,
                   t.person_key, k.person_key as person_key_linked,
                   t.person_key in (select person_key from spine_keys) as true_spine,
                   (p.imd_decile + 1) // 2 as imd_quintile,
                   date_sub('year', p.date_of_birth, date {literal(as_of.isoformat())}) as age,
                   p.sex as true_sex
            from {run.table} l
            join qa_records r using (record_key)
            join qa_truth t on t.feed = r.feed and t.record_id = r.record_id
            join {literal(truth / "persons.parquet")} p on p.person_key = t.person_key
            left join spine_keys k on k.person_id = l.person_id"""
    )
    report = evaluate(con, "qa_scored")
    report.run = run
    return report
