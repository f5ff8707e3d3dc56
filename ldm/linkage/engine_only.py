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

from ldm.dialects import current as dialect
from ldm.errors import LdmError
from ldm.feeds.spec import builtin_specs
from ldm.linkage import quality
from ldm.linkage.columns import VALID_NHS_TOKEN, columns_of
from ldm.linkage.engine import LinkageConfig, LinkageRun, link
from ldm.linkage.working import QA_RECORDS, QA_SPINE, QA_SPINE_TRUE, TRUE_RECORDS
from ldm.pseudonymise.batch import pseudonymise_folder
from ldm.pseudonymise.keys import init_key
from ldm.sql import literal
from ldm.synthetic.config import ACTIVITY_FEEDS


def build_spine(con: duckdb.DuckDBPyConnection, registrations: str) -> None:
    """qa_spine: current GP registrations, one row per person (the latest registration).

    Without linkage a "person" is a valid NHS number token; a registration without one stands
    for its own person. person_id is the registration's record id.
    """
    sql = dialect()
    latest = sql.first_per_group(
        "record_id as person_id, *",
        f"{registrations} where registration_end is null and date_of_death is null",
        f"coalesce({VALID_NHS_TOKEN}, {sql.as_text('record_id')})",
        "registration_start desc, record_id desc",
        ["person_id", *columns_of(con, registrations)],
    )
    con.execute(f"create or replace temp table {QA_SPINE} as {latest}")


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
    return dialect().parquet(folder / feed / "*.parquet", union_by_name=True)


def link_sample(
    con: duckdb.DuckDBPyConnection, pseudonymised: Path, config: LinkageConfig | None = None
) -> LinkageRun:
    """Link every activity feed of a pseudonymised folder to qa_spine in one pass (qa_records
    holds the records, with a record_key the run's result table refers to)."""
    build_spine(con, _parquet(pseudonymised, quality.SPINE_FEED))  # QA_SPINE
    feeds = [f for f in ACTIVITY_FEEDS if (pseudonymised / f).is_dir()]
    union = dialect().union_all_by_name(
        [
            (f"select {literal(feed)} as feed, * from {source}", ["feed", *columns_of(con, source)])
            for feed in feeds
            for source in [_parquet(pseudonymised, feed)]
        ]
    )
    con.execute(
        f"create or replace temp table {QA_RECORDS} as "
        f"select {dialect().row_number_unordered()} as record_key, * from ({union})"
    )
    return link(con, QA_SPINE, QA_RECORDS, config=config)


def measure(con: duckdb.DuckDBPyConnection, run: LinkageRun, truth: Path) -> quality.QualityReport:
    """The figures of a one-pass run against the ground truth (a spine row's true person is its
    registration's)."""
    quality.load_truth(con, truth)
    con.execute(
        f"""create or replace temp table {QA_SPINE_TRUE} as
            select s.person_id, t.person_key from {QA_SPINE} s
            join {TRUE_RECORDS} t on t.feed = {literal(quality.SPINE_FEED)} and t.record_id = s.record_id"""
    )
    records = f"""(select r.feed, r.record_id, l.person_id, l.step,
                          coalesce(r.nhs_number_valid, false) as nhs_valid
                   from {run.table} l join {QA_RECORDS} r using (record_key))"""
    report = quality.evaluate(con, quality.score(con, records, QA_SPINE_TRUE, truth))
    report.run = run
    return report
