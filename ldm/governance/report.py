"""`ldm audit report`: an account of batches that an IG lead can read without SQL.

Counts and rule names only: the store holds no identifiers, and the report adds none.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from ldm.dialects import current as dialect
from ldm.governance import audit, linkage_models, markdown
from ldm.linkage.quality import age_band
from ldm.sql import literal, quoted
from models.feeds import FEED_TABLES

ROWS_NOTE = (
    "Each row of an extract is counted once: rows_in = quarantined + duplicate + re-sent + withheld + loaded. "
    "Duplicates repeat a later row of the same extract (the last is kept); re-sent rows are records the "
    "store already held; revised rows replaced an earlier version and are among those withheld or "
    "loaded; withheld rows belong to people who opted out. For an opt-out list, loaded counts its "
    "entries. A blank duplicate count: loaded before ldm counted duplicates apart (they are in re-sent)."
)


def audit_report(
    con: duckdb.DuckDBPyConnection,
    batches: list[int] | None,
    anchor: audit.Head | None,
    key: bytes | None,
    charts: Path | None = None,
) -> str:
    """The report; the chain is verified when the audit key is given (it cannot be checked without it).
    With `charts`, the linkage models' charts are written in that folder (ldm.governance.linkage_models)."""
    chosen = batches or [
        b for (b,) in con.execute("select batch_id from governance.batches order by 1").fetchall()
    ]
    ids = chosen or [-1]
    marks = ", ".join("?" for _ in ids)
    lines = ["# Audit report", ""]
    if key is None:
        lines.append("Audit chain: not verified (no key given; run `ldm audit verify` with the key file).")
    else:
        verification = audit.verify(con, key, anchor)
        problems = verification.problems
        lines.append(
            f"Audit chain: intact, {verification.entries} entries, head {verification.head}."
            if not problems
            else "Audit chain: BROKEN: " + "; ".join(map(str, problems))
        )
    lines += ["", "## What came in", ""]
    lines += markdown.table(
        con,
        f"""select batch_id, feed, provider, spec_name, spec_version, input_file,
                                left(input_sha256, 16) as sha256_prefix, key_id, operator, status, loaded_at
                         from governance.batches where batch_id in ({marks}) order by batch_id""",
        ids,
    )
    lines += ["", "## Where every row went", "", ROWS_NOTE, ""]
    lines += markdown.table(
        con,
        f"""select batch_id, feed, rows_in, rows_accepted, rows_quarantined, rows_duplicate,
                                rows_resent, rows_revised, rows_withheld, rows_loaded,
                                case when rows_loaded is null then null
                                     when rows_in = rows_quarantined + coalesce(rows_duplicate, 0) + rows_resent
                                                    + rows_withheld + rows_loaded then 'yes' else 'NO' end
                                    as reconciles
                         from governance.batches where batch_id in ({marks}) order by batch_id""",
        ids,
    )
    lines += ["", "## Quarantined and why", ""]
    lines += markdown.table(
        con,
        f"""select batch_id, severity, rule, rows from governance.quarantine_counts
                         where batch_id in ({marks}) order by batch_id, severity, rows desc""",
        ids,
    )
    lines += ["", "## Links by step", ""]
    lines += markdown.table(
        con,
        f"""select batch_id, step, records_in, linked, ambiguous, unlinked,
                                round(link_rate, 4) as link_rate, algorithm_version
                         from governance.linkage_log where batch_id in ({marks}) and records_in > 0
                         order by batch_id, log_id""",
        ids,
    )
    lines += ["", "## Opt-outs applied", ""]
    lines += markdown.table(
        con,
        f"""select batch_id, records_removed, persons_removed, applied_at
                         from governance.opt_out_counts where batch_id in ({marks}) order by run_id""",
        ids,
    )
    lines += link_rate_lines(con, ids)
    lines += linkage_models.section(con, batches, charts)
    lines += _releases(con)
    return "\n".join(lines) + "\n"


LINK_RATES_NOTE = (
    "What the store shows alone: the share of each feed's records linked to a person. IMD quintile, age band "
    '(from the age at the event) and sex are the record\'s own, as its provider sent them; "not recorded" '
    'where a feed does not carry one, "unknown" where a record lacks it. Whether the links are right '
    "needs ground truth: `ldm bench-linkage` scores a store built from a synthetic sample."
)


def record_groups() -> dict[str, tuple[str, str]]:
    """The record's own attributes that link rates are broken down by: name -> (column, SQL of the group)."""
    return {
        "imd_quintile": ("imd_quintile", dialect().as_text("imd_quintile")),
        "age_band": ("age_at_event", age_band("age_at_event")),
        "sex": ("sex", "sex"),
    }


RECORD_GROUP_TITLES = {
    "imd_quintile": "IMD quintile (1 = most deprived)",
    "age_band": "age band",
    "sex": "sex",
}


def link_rate_lines(con: duckdb.DuckDBPyConnection, ids: list[int]) -> list[str]:
    """Link rates of the batches `ids` by feed, step, and the record's IMD quintile, age band and sex."""
    marks = ", ".join("?" for _ in ids)
    union = " union all ".join(
        f"select {literal(feed)} as feed, batch_id, person_id, link_step from main.{quoted(table)}"
        for feed, table in FEED_TABLES.items()
    )
    lines = ["", "## Link rate by feed", "", LINK_RATES_NOTE, ""]
    lines += markdown.table(
        con,
        f"""select feed, count(*) as records, count(person_id) as linked,
                                round(count(person_id) / count(*), 4) as link_rate
                         from ({union}) where batch_id in ({marks}) group by feed order by feed""",
        ids,
    )
    lines += ["", "## Records by link step, as stored", ""]
    lines += markdown.table(
        con,
        f"""select feed, link_step, count(*) as records,
                                round(count(*) / sum(count(*)) over (partition by feed), 4) as share_of_feed
                         from ({union}) where batch_id in ({marks}) group by feed, link_step
                         order by feed, records desc, link_step""",
        ids,
    )
    for name, (column, expression) in record_groups().items():
        parts = []
        for feed, table in FEED_TABLES.items():
            recorded = column in _columns(con, table)
            group = f"coalesce({expression}, 'unknown')" if recorded else "'not recorded'"
            parts.append(
                f"select {literal(feed)} as feed, batch_id, person_id, {group} as {name} from main.{quoted(table)}"
            )
        lines += ["", f"## Link rate by {RECORD_GROUP_TITLES[name]}", ""]
        lines += markdown.table(
            con,
            f"""select feed, {name}, count(*) as records, count(person_id) as linked,
                                    round(count(person_id) / count(*), 4) as link_rate
                             from ({" union all ".join(parts)}) where batch_id in ({marks})
                             group by all order by feed, {name}""",
            ids,
        )
    return lines


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> set[str]:
    return {row[0] for row in con.execute(dialect().describe(f"main.{quoted(table)}")).fetchall()}


RELEASES_NOTE = (
    "Every person-level release to an analysis project, whatever its outcome: recorded before anything was "
    "written, then written, refused (its smallest group over the quasi-identifiers, k, below the threshold) "
    "or failed. Person and record ids in a release are pseudonyms under the project's own key."
)


def _releases(con) -> list[str]:
    """The projects approved for releases, and every release made to them (all of them, whatever batches)."""
    lines = ["", "## Analysis projects", ""]
    present = con.execute(
        "select count(*) from duckdb_tables() where database_name = current_database() "
        "and schema_name = 'governance' and table_name = 'releases'"
    ).fetchall()[0][0]
    if not present:
        return [*lines, "(this store predates releases: `ldm db upgrade` adds them)"]
    lines += markdown.table(
        con,
        """select project, approver, legal_basis, approved_on, expires_on, registered_at, amended_at
                         from governance.projects order by project""",
        [],
    )
    lines += ["", "## Releases to analysis projects", "", RELEASES_NOTE, ""]
    lines += markdown.table(
        con,
        """select release_id, project, release_number, status, requested_at, operator, k_threshold,
                                k_smallest, persons, left(spec_sha256, 16) as spec_sha256_prefix,
                                left(manifest_sha256, 16) as manifest_sha256_prefix, out_folder, reason
                         from governance.releases order by release_id""",
        [],
    )
    return lines
