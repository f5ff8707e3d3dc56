"""The linkage engine alone, in one pass in memory: a timing figure and an engine test, not the
store's quality.

Every activity feed is linked at once against a spine of current GP registrations, with no
opt-outs, no batches and no earlier persons. That isolates the engine's speed and its ceiling,
but it is not what `ldm run` does; the quality of the linked data is the store's, scored by
ldm.linkage.scoring.
"""

from __future__ import annotations

import datetime
import shutil
import tempfile
from pathlib import Path

import duckdb

from ldm.errors import LdmError
from ldm.feeds.spec import builtin_specs
from ldm.linkage import quality
from ldm.linkage.columns import VALID_NHS_TOKEN
from ldm.linkage.engine import LinkageConfig, LinkageRun, link
from ldm.pseudonymise.batch import pseudonymise_folder
from ldm.pseudonymise.keys import init_key
from ldm.sql import literal
from ldm.synthetic.config import ACTIVITY_FEEDS


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
) -> quality.QualityReport:
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
            raise LdmError(f"pseudonymisation failed for {len(result.failed)} extract(s)")
        con = duckdb.connect()
        run = link_sample(con, pseudonymised, config)
        return measure(con, run, sample / "ground_truth")


def _parquet(folder: Path, feed: str) -> str:
    return f"read_parquet({literal(folder / feed / '*.parquet')}, union_by_name = true)"


def link_sample(
    con: duckdb.DuckDBPyConnection, pseudonymised: Path, config: LinkageConfig | None = None
) -> LinkageRun:
    """Link every activity feed of a pseudonymised folder to qa_spine in one pass (qa_records
    holds the records, with a record_key the run's result table refers to)."""
    build_spine(con, _parquet(pseudonymised, quality.SPINE_FEED))
    feeds = [f for f in ACTIVITY_FEEDS if (pseudonymised / f).is_dir()]
    union = " union all by name ".join(
        f"select {literal(feed)} as feed, * from {_parquet(pseudonymised, feed)}" for feed in feeds
    )
    con.execute(
        "create or replace temp table qa_records as "
        f"select row_number() over () as record_key, * from ({union})"
    )
    return link(con, "qa_spine", "qa_records", config=config)


def measure(con: duckdb.DuckDBPyConnection, run: LinkageRun, truth: Path) -> quality.QualityReport:
    """The figures of a one-pass run against the ground truth (a spine row's true person is its
    registration's)."""
    quality.load_truth(con, truth)
    con.execute(
        f"""create or replace temp table qa_spine_truth as
            select s.person_id, t.person_key from qa_spine s
            join qa_truth t on t.feed = {literal(quality.SPINE_FEED)} and t.record_id = s.record_id"""
    )
    records = f"""(select r.feed, r.record_id, l.person_id, l.step,
                          coalesce(r.nhs_number_valid, false) as nhs_valid
                   from {run.table} l join qa_records r using (record_key))"""
    report = quality.evaluate(con, quality.score(con, records, "qa_spine_truth", truth))
    report.run = run
    return report
