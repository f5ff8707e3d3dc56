"""What linkage quality means, once: precision, recall and link rates, overall and by group.

A record's link is a true link when the person it was linked to is its true person (by the
synthetic ground truth); a record whose true person is on no person of the spine (out of area,
never registered) has no true match, so linking it is a false positive. Link rates are broken
down by IMD quintile, age band, sex and ethnic group of the true person, because missed links in
deprived or minority groups bias every inequality figure built on the linked data.

Two scorers feed these definitions: ldm.linkage.scoring scores the store `ldm run` built (the
figure that counts), and ldm.linkage.engine_only the engine alone on one in-memory pass.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from ldm.dialects import current as dialect
from ldm.errors import LdmError
from ldm.linkage.working import SCORED, TRUE_RECORDS
from ldm.reference import reference_path
from ldm.sql import literal
from ldm.synthetic.config import SampleConfig

if TYPE_CHECKING:
    from ldm.linkage.engine import LinkageRun

# Ages of the true persons are taken on the synthetic sample's extract date.
AGE_AS_OF: datetime.date = SampleConfig.as_of
# The feed whose records found the persons: its records give each person its true person.
SPINE_FEED = "gp_registrations"


def age_band(age: str) -> str:
    """SQL: the age band of an age in whole years (null stays null)."""
    return (
        f"case when {age} < 16 then '0-15' when {age} < 45 then '16-44' when {age} < 65 then '45-64' "
        f"when {age} < 80 then '65-79' when {age} >= 80 then '80+' end"
    )


def groups() -> dict[str, str]:
    """Group name -> SQL over a scored table (see `score`); with its title in a printed table."""
    return {
        "feed": "feed",
        "step": "step",
        "nhs_number": "case when nhs_valid then 'valid' else 'not valid' end",
        "imd_quintile": dialect().as_text("imd_quintile"),
        "age_band": age_band("age"),
        "sex": "sex",
        "ethnic_group": "ethnic_group",
    }


# Groups over a subset of the records: name -> (SQL of the group, condition).
SUBSET_GROUPS = {"no_valid_nhs_number_by_feed": ("feed", "not nhs_valid")}
TITLES = {
    "feed": "feed",
    "step": "link step",
    "nhs_number": "NHS number",
    "imd_quintile": "IMD quintile (1 = most deprived)",
    "age_band": "age band",
    "sex": "sex",
    "ethnic_group": "ethnic group",
    "no_valid_nhs_number_by_feed": "no valid NHS number, by feed",
}
COUNTS = ("records", "in_spine", "linked", "true_links")
RATES = ("precision", "recall", "link_rate")

MEASURES = """
    count(*) as records,
    count(*) filter (where true_spine) as in_spine,
    count(*) filter (where is_linked) as linked,
    count(*) filter (where person_key_linked = person_key) as true_links,
    true_links / nullif(linked, 0) as precision,
    true_links / nullif(in_spine, 0) as recall,
    linked / count(*) as link_rate
"""


@dataclass
class QualityReport:
    overall: dict[str, float]
    by: dict[str, list[dict]] = field(default_factory=dict)
    # Persons of the spine against the true persons (store scoring only): store_persons,
    # true_persons, split (a true person with 2+ store persons), merged (2+ true persons in one).
    persons: dict[str, int] = field(default_factory=dict)
    run: LinkageRun | None = None

    @property
    def imd_gap_points(self) -> float | None:
        """Link rate of IMD quintile 1 (most deprived) minus that of quintile 5, in percentage points."""
        rates = {row["group"]: row["link_rate"] for row in self.by.get("imd_quintile", [])}
        if rates.get("1") is None or rates.get("5") is None:
            return None
        return 100 * (rates["1"] - rates["5"])

    def table(self) -> list[str]:
        """The figures as a plain-text table: counts and rates only, no identifiers."""
        width = max(len(f"  {row['group']}") for rows in self.by.values() for row in rows) if self.by else 8
        width = max(width, len("overall"))
        header = f"{'':<{width}}" + "".join(f"{name.replace('_', ' '):>12}" for name in COUNTS + RATES)
        lines = [header, _row("overall", self.overall, width)]
        for group, rows in self.by.items():
            lines.append(TITLES.get(group, group))
            lines += [_row(f"  {'unknown' if r['group'] is None else r['group']}", r, width) for r in rows]
        if self.persons:
            p = self.persons
            lines += [
                "",
                f"persons in the store {p['store_persons']:,}, true persons among them {p['true_persons']:,}",
                f"split persons {p['split']:,} (a true person with 2+ store persons)",
                f"merged persons {p['merged']:,} (a store person with registrations of 2+ true persons)",
            ]
        gap = self.imd_gap_points
        if gap is not None:
            lines.append(f"link rate gap, IMD quintile 1 minus quintile 5: {gap:+.2f} points")
        return lines


def _row(label: str, row: dict, width: int) -> str:
    counts = "".join(f"{row[name]:>12,}" for name in COUNTS)
    rates = "".join(f"{'-' if row[name] is None else format(row[name], '.4f'):>12}" for name in RATES)
    return f"{label:<{width}}{counts}{rates}"


def evaluate(con: duckdb.DuckDBPyConnection, scored: str) -> QualityReport:
    """Figures from `scored`, a table made by `score`: overall and by every group."""
    result = con.execute(f"select {MEASURES} from {scored}")
    columns = [d[0] for d in result.description]
    report = QualityReport(overall=dict(zip(columns, result.fetchall()[0], strict=True)))
    every_record = {name: (expression, "true") for name, expression in groups().items()}
    for name, (expression, where) in (every_record | SUBSET_GROUPS).items():
        rows = con.execute(
            f"select {expression} as grp, {MEASURES} from {scored} where {where} group by grp order by grp"
        ).fetchall()
        report.by[name] = [dict(zip(["group", *columns], row, strict=True)) for row in rows]
    return report


def truth_files(truth: Path) -> tuple[Path, Path]:
    """records.parquet and persons.parquet of a sample's ground_truth folder."""
    files = (truth / "records.parquet", truth / "persons.parquet")
    missing = [path.name for path in files if not path.is_file()]
    if missing:
        raise LdmError(f"{truth} is not a sample's ground_truth folder: it has no {' or '.join(missing)}")
    return files


def load_truth(con: duckdb.DuckDBPyConnection, truth: Path) -> None:
    """qa_truth: each record's true person, one row per (feed, record_id) (a row sent twice is one)."""
    records, _ = truth_files(truth)
    con.execute(
        f"""create or replace temp table {TRUE_RECORDS} as
            select distinct feed, record_id, person_key from {dialect().parquet(records)}"""
    )


def score(
    con: duckdb.DuckDBPyConnection,
    records: str,
    true_person_of: str,
    truth: Path,
    as_of: datetime.date = AGE_AS_OF,
) -> str:
    """qa_scored: one row per record of `records` (feed, record_id, person_id, step, nhs_valid)
    with its true person and the true person of the person it was linked to (`true_person_of`:
    person_id -> person_key), and the groups of its true person. Needs qa_truth (`load_truth`)."""
    _, persons = truth_files(truth)
    ethnic_groups = reference_path("nhs_ethnic_category_groups.csv")
    sql = dialect()
    con.execute(
        f"""create or replace temp table {SCORED} as
            select r.feed, r.step, r.nhs_valid, t.person_key,
                   r.person_id is not null as is_linked, k.person_key as person_key_linked,
                   t.person_key in (select person_key from {true_person_of}) as true_spine,
                   {sql.integer_divide("(p.imd_decile + 1)", "2")} as imd_quintile,
                   {sql.whole_years("p.date_of_birth", f"date {literal(as_of.isoformat())}")} as age,
                   p.sex, g.ethnic_group_name as ethnic_group
            from {records} r
            join {TRUE_RECORDS} t on t.feed = r.feed and t.record_id = r.record_id
            join {sql.parquet(persons)} p on p.person_key = t.person_key
            left join {sql.csv(ethnic_groups, header=True, all_varchar=True)} g
              on g.ethnic_category = p.ethnic_category
            left join {true_person_of} k on k.person_id = r.person_id"""
    )
    return SCORED
