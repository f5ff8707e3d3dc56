"""Load pseudonymised extracts into the store: one batch, one transaction.

Each batch is written whole or not at all: its governance row, quarantine counts, linked rows,
opt-out counts and audit entry commit together, so an error or a kill mid-batch leaves the store
exactly as before. A batch whose extract (same feed, same SHA-256) is already loaded is refused
unless replacement is asked for, and records already in the store under another file are
recognised one by one (ldm.load.records). Opt-out lists load first, so that opted-out people's
records are withheld before they reach the store; a person who opts out later is removed when the
list comes.

A store belongs to one key: the key id of its first batch. A manifest or a key with another key id
is refused before anything is written, because its tokens match nobody and would found every
person a second time and let opted-out people back in. Every batch is sealed in the keyed audit
chain with digests of what it wrote (ldm.governance.audit), and a load refuses to start on a
store that fails its audit check, so that tampering is never sealed over.
"""

from __future__ import annotations

import datetime
import getpass
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from ldm import minimise
from ldm.errors import LdmError
from ldm.feeds.spec import DEFAULT_PROVIDER
from ldm.files import file_sha256
from ldm.governance import audit, digests
from ldm.linkage.columns import VALID_NHS_TOKEN, columns_of
from ldm.linkage.engine import ALGORITHM_VERSION, LinkageConfig
from ldm.load import evidence, records
from ldm.load.linking import link_extract, spine_of
from ldm.pseudonymise.extract import Manifest
from ldm.pseudonymise.keys import AUDIT, MasterKey
from ldm.sql import literal
from ldm.store import connect, head_revision
from ldm.store.lock import store_lock
from models.feeds import FEED_TABLES, FEEDS, REPEATED_FIELDS, repeated_column

LOAD_ORDER = FEEDS
ANALYST_TABLES = (
    *FEED_TABLES.values(),
    *(field.table for fields in REPEATED_FIELDS.values() for field in fields.values()),
)
STORE_MEMORY = "3GB"  # the store connection's share; linkage runs beside it on its own connection
# A seam file is named by the manifest beside it: a plain name in the same folder, nothing else.
SEAM_FILE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")


@dataclass
class BatchLoad:
    """What one batch did with its accepted rows, each counted once (ldm.load.records):

    rows_accepted = rows_duplicate + rows_resent + withheld_by_opt_out + rows_loaded for a
    records feed (revised rows are loaded or withheld too). For the opt-out list, rows_loaded is its
    entries, each NHS number once, and withheld_by_opt_out the records it removed from earlier batches.
    """

    batch_id: int
    feed: str
    input_file: str
    rows_accepted: int
    rows_loaded: int
    withheld_by_opt_out: int = 0
    steps: list = field(default_factory=list)
    persons_added: int = 0
    persons_removed: int = 0
    rows_resent: int = 0  # already in the store from an earlier file: not loaded again
    rows_revised: int = 0  # replaced an earlier version of the same record
    rows_duplicate: int = 0  # a later row of the same extract is the same record: not loaded
    revised_batches: list[int] = field(default_factory=list)  # batches whose rows they replaced
    evidence_added: int = 0  # identities learnt for persons (linkage.person_evidence)
    evidence_conflicts: int = 0  # identities not learnt: their NHS number is another person's


@dataclass
class LoadSummary:
    loaded: list[BatchLoad] = field(default_factory=list)
    already_loaded: list[tuple[str, int]] = field(default_factory=list)  # (input file, batch id)
    duplicates: list[tuple[str, str]] = field(default_factory=list)  # (input file, the file it repeats)
    audit_head: audit.Head = audit.EMPTY


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


def _manifests(folder: Path, only: list[Path] | None = None) -> list[tuple[Manifest, Path]]:
    """The manifests to load with their seam files: every one in `folder`, or only those listed."""
    if not folder.is_dir():
        raise LdmError(f"pseudonymised folder {folder} does not exist")
    found = []
    for path in sorted(folder.glob("*/*.manifest.json")) if only is None else only:
        manifest = Manifest.read(path)
        if manifest.feed not in LOAD_ORDER:
            raise LdmError(f"{path}: unknown feed {manifest.feed!r}")
        unknown = sorted(set(manifest.repeated) - set(REPEATED_FIELDS.get(manifest.feed, {})))
        if unknown:  # never dropped in silence: the spec check refuses such a spec, so this file was altered
            raise LdmError(f"{path}: repeated field(s) {', '.join(unknown)} have no table in the store")
        if not SEAM_FILE_NAME.fullmatch(manifest.output_file):
            raise LdmError(
                f"{path}: names {manifest.output_file!r}, which is not a plain file name beside it"
            )
        parquet = path.parent / manifest.output_file
        if not parquet.is_file():
            raise LdmError(f"{path}: its Parquet file {parquet.name} is missing")
        found.append((manifest, parquet))
    found.sort(key=lambda item: (_load_rank(*item), LOAD_ORDER.index(item[0].feed), item[0].started_at))
    return found


def _load_rank(manifest: Manifest, parquet: Path) -> int:
    """Opt-out lists first (their people's records are withheld before they arrive), then
    registrations (they found persons), then feeds that carry more than an NHS number, whose links
    teach the evidence (ldm.load.evidence) that feeds with nothing else (GP events) link through."""
    if manifest.feed == "opt_out":
        return 0
    if manifest.feed == "gp_registrations":
        return 1
    return 2 if "date_of_birth_token" in pq.read_schema(parquet).names else 3


def _insert_batch(con, manifest: Manifest) -> int:
    nhs = manifest.nhs_numbers or {}
    batch_id = con.execute("select nextval('governance.batch_id_seq')").fetchone()[0]
    con.execute(
        """insert into governance.batches (batch_id, feed, input_file, input_sha256, input_bytes, output_file,
               output_sha256, rows_in, rows_accepted, rows_quarantined, nhs_numbers_present, nhs_numbers_valid,
               nhs_numbers_invalid, nhs_numbers_missing, spec_version, key_id, software_version, operator,
               started_at, finished_at, provider, spec_name, status)
           values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'loading')""",
        [
            batch_id,
            manifest.feed,
            manifest.input_file,
            manifest.input_sha256,
            manifest.input_bytes,
            manifest.output_file,
            manifest.output_sha256,
            manifest.rows_in,
            manifest.rows_accepted,
            manifest.rows_quarantined,
            nhs.get("present"),
            nhs.get("valid"),
            nhs.get("invalid"),
            nhs.get("missing"),
            manifest.spec_version,
            manifest.key_id,
            manifest.software_version,
            manifest.operator,
            manifest.started_at,
            manifest.finished_at,
            manifest.provider or None,  # a manifest from before providers were recorded names none
            manifest.spec_name or None,
        ],
    )
    for rule in manifest.rules:
        if rule["rows"]:
            con.execute(
                "insert into governance.quarantine_counts (batch_id, rule, column_name, severity, rows) "
                "values (?, ?, ?, ?, ?)",
                [batch_id, rule["rule"], rule["column"], rule["severity"], rule["rows"]],
            )
    con.execute(
        "insert into governance.key_ids (key_id, first_seen_at) select ?, ? "
        "where not exists (select 1 from governance.key_ids where key_id = ?)",
        [manifest.key_id, now(), manifest.key_id],
    )
    return batch_id


OPTED_OUT_PERSONS = """select k.person_id from linkage.person_keys k
                        join linkage.opt_outs o on o.nhs_number_token = k.nhs_number_token"""


def _stage(con, staged: Path, materialise: bool) -> None:
    """`incoming`: the staged extract (its rows with their link, and whether opt-out withholds them).

    A view over the staged Parquet file, except where rows are changed before insertion (new persons
    in registrations), which needs a table; so a 20-million-row extract is never copied in memory.
    """
    kind = "table" if materialise else "view"
    con.execute(f"create or replace temp {kind} incoming as select * from read_parquet({literal(staged)})")


def _insert_rows(con, table: str, batch_id: int) -> int:
    """Insert the rows not withheld into the feed's table and record_links; return how many."""
    target = columns_of(con, f"main.{table}")
    available = set(columns_of(con, "incoming")) | {"batch_id"}
    names = [name for name in target if name in available]
    inserted = con.execute(
        f"insert into main.{table} ({', '.join(names)}) {_insert_select(table, names)}", [batch_id]
    ).fetchall()[0][0]
    con.execute(
        """insert into linkage.record_links (batch_id, row_number, person_id, step, weight, candidates,
               algorithm_version)
           select ?, row_number, person_id, link_step, link_weight, candidates, algorithm_version
           from incoming where not withheld""",
        [batch_id],
    )
    return inserted


def _insert_select(table: str, names: list[str]) -> str:
    """The rows of `incoming` not withheld, as `names` of `main.<table>`, with no date that gives back
    a date of birth or of death (`ldm.minimise`): dates in the month of birth, the row's own or its
    person's (as `main.persons` holds it when the batch loads), move back to its first day; dates of
    death and registration ends are kept as months."""
    births = minimise.birth_pairs(table, "i", ("p.year_of_birth", "p.month_of_birth"))
    moved = minimise.minimised(table, "i", births, names)
    select = ", ".join(
        "?::bigint as batch_id" if name == "batch_id" else f"{moved.get(name, f'i.{name}')} as {name}"
        for name in names
    )
    return f"""select {select} from incoming i left join main.persons p on p.person_id = i.person_id
               where not i.withheld"""


def child_tables(feed: str) -> tuple[str, ...]:
    """The tables holding a feed's repeated fields, keyed by its records' (batch_id, row_number)."""
    return tuple(field.table for field in REPEATED_FIELDS.get(feed, {}).values())


def _unpivot_repeated(con, feed: str, repeated: dict[str, int], batch_id: int) -> None:
    """One row per value of each repeated field, at the position it was sent in (one scan per field).

    Every position the seam file carries is written: a spell with 20 diagnoses keeps all 20.
    """
    present = set(columns_of(con, "incoming"))
    for name, positions in repeated.items():
        field = REPEATED_FIELDS[feed][name]
        columns = [repeated_column(name, position) for position in range(positions)]
        missing = [column for column in columns if column not in present]
        if missing:
            raise LdmError(f"the seam file has no column(s) {', '.join(missing)} its manifest promises")
        con.execute(
            f"""insert into main.{field.table} (batch_id, row_number, position, {field.column})
                select ?, row_number, position, value
                from (select row_number, unnest([{", ".join(columns)}]) as value,
                             unnest(range({positions})) as position
                      from incoming where not withheld)
                where value is not null""",
            [batch_id],
        )


def _learn_local_ids(con, batch_id: int) -> None:
    if "local_id_token" not in columns_of(con, "incoming"):
        return
    con.execute(
        """insert into linkage.person_local_ids (person_id, local_id_token, first_batch_id)
           select distinct person_id, local_id_token, ? from incoming
           where link_step in ('nhs_number_dob', 'nhs_number') and local_id_token is not null
             and (person_id, local_id_token) not in (select (person_id, local_id_token)
                                                     from linkage.person_local_ids)""",
        [batch_id],
    )


def _add_new_persons(con) -> int:
    """Registrations that match no one found new persons (one per valid NHS number, else per row)."""
    founder = f"coalesce({VALID_NHS_TOKEN}, 'row:' || row_number)"
    unmatched = "incoming.person_id is null and incoming.link_step = 'unlinked'"
    con.execute(
        f"""create or replace temp table new_ids as
            select founder, nextval('linkage.person_id_seq') as person_id
            from (select {founder} as founder from incoming where {unmatched} group by 1)"""
    )
    reused = con.execute(
        "select min(person_id) from new_ids where person_id in (select person_id from linkage.person_keys)"
    ).fetchall()[0][0]
    if reused is not None:
        raise LdmError(
            f"linkage.person_id_seq issued person id {reused}, which a person already has (was the sequence "
            "reset?); nothing was loaded. See: ldm audit verify"
        )
    con.execute(
        f"""update incoming set person_id = n.person_id, link_step = 'new_person'
            from new_ids n where {unmatched} and {founder} = n.founder"""
    )
    return con.execute("select count(*) from new_ids").fetchall()[0][0]


KEY_COLUMNS = (
    "date_of_birth_token",
    "sex",
    "postcode_token",
    "postcode_district_token",
    "surname_token",
    "surname_phonetic_token",
    "surname_initial_token",
    "forename_token",
    "forename_phonetic_token",
    "forename_initial_token",
)


# (registration_start, row_number) as one HUGEINT, ordered as the pair is: arg_max compares it
# several times faster than a struct. A missing date sorts after every date, as in a struct;
# row numbers are positive and below 2^63.
LATEST_FIRST = (
    f"(coalesce(date_diff('day', date '1970-01-01', registration_start), {2**62})::hugeint * {2**64}"
    " + row_number)"
)


def _refresh_person_keys(con, batch_id: int) -> None:
    """Spine tokens from each person's latest registration row (new persons are inserted)."""
    latest = ", ".join(KEY_COLUMNS)
    con.execute(
        f"""create or replace temp table latest as
            select person_id, arg_max({VALID_NHS_TOKEN}, o) as nhs_number_token,
                   {", ".join(f"arg_max({c}, o) as {c}" for c in KEY_COLUMNS)}
            from (select *, {LATEST_FIRST} as o from incoming where person_id is not null) group by person_id"""
    )
    con.execute(
        f"""update linkage.person_keys k set nhs_number_token = coalesce(l.nhs_number_token, k.nhs_number_token),
                {", ".join(f"{c} = coalesce(l.{c}, k.{c})" for c in KEY_COLUMNS)}, last_batch_id = ?
            from latest l where l.person_id = k.person_id""",
        [batch_id],
    )
    con.execute(
        f"""insert into linkage.person_keys (person_id, nhs_number_token, {latest}, first_batch_id, last_batch_id)
            select person_id, nhs_number_token, {latest}, ?, ? from latest
            where person_id not in (select person_id from linkage.person_keys)""",
        [batch_id, batch_id],
    )


CHANGED_PERSONS = """select person_id from incoming union select person_id from superseded_persons"""


def _refresh_persons(con, batch_id: int) -> None:
    """One analyst row per person, from the latest registration the store holds for them.

    Refreshed: the persons of the batch's rows, and those whose earlier registration a revision replaced.
    """
    con.execute(f"delete from main.persons where person_id in ({CHANGED_PERSONS})")
    con.execute(
        f"""insert into main.persons (person_id, year_of_birth, month_of_birth, sex, practice_code, lsoa21_code,
                lsoa11_code, msoa11_code, ward_code, imd_decile, imd_quintile, date_of_death, registered,
                first_batch_id, last_batch_id, ethnic_category)
            select person_id,
                   arg_max(year_of_birth, o), arg_max(month_of_birth, o), arg_max(sex, o), arg_max(practice_code, o),
                   arg_max(lsoa21_code, o), arg_max(lsoa11_code, o), arg_max(msoa11_code, o), arg_max(ward_code, o),
                   arg_max(imd_decile, o), arg_max(imd_quintile, o), max(date_of_death),
                   arg_max(registration_end is null, o) and max(date_of_death) is null,
                   min(batch_id), ?, arg_max(ethnic_category, o)
            from (select *, (registration_start, batch_id, row_number) as o from main.registrations
                  where person_id in ({CHANGED_PERSONS}))
            group by person_id""",
        [batch_id],
    )


def _registration_identities(con) -> str:
    """The batch's registrations not withheld, as identities with their person (ldm.load.evidence)."""
    present = set(columns_of(con, "incoming"))
    columns = [
        f"{VALID_NHS_TOKEN} as {name}"
        if name == evidence.NHS
        else name
        if name in present
        else f"null as {name}"
        for name in evidence.IDENTITY
    ]
    return f"(select person_id, link_step, {', '.join(columns)} from incoming where not withheld)"


def _learn_evidence(con, batch_id: int, feed: str, new: str, load: BatchLoad) -> None:
    """Keep the new identities of `new` (rows of `evidence.new_evidence_sql`) as the person's evidence."""
    load.evidence_added = con.execute(evidence.insert_sql(new, feed), [batch_id, now()]).fetchall()[0][0]
    load.evidence_conflicts = con.execute(f"select count(*) from {new} where conflict").fetchall()[0][0]


def _remove_persons(con, persons_sql: str) -> tuple[int, int]:
    """Delete every analyst row of the given persons; return (records, persons) removed."""
    con.execute(f"create or replace temp table leaving as {persons_sql}")
    records = 0
    for feed, table in FEED_TABLES.items():
        for child in child_tables(feed):
            con.execute(
                f"""delete from main.{child} where (batch_id, row_number) in
                    (select (batch_id, row_number) from main.{table}
                     where person_id in (select person_id from leaving))"""
            )
        records += con.execute(
            f"delete from main.{table} where person_id in (select person_id from leaving)"
        ).fetchone()[0]
    con.execute("delete from linkage.record_links where person_id in (select person_id from leaving)")
    con.execute(evidence.remove_sql("leaving"))
    persons = con.execute(
        "delete from main.persons where person_id in (select person_id from leaving)"
    ).fetchone()[0]
    return records, persons


def _apply_opt_out_list(con, batch_id: int, parquet: Path, load: BatchLoad) -> None:
    """The list is a full snapshot: new tokens are added and their people removed; lapsed ones dropped."""
    con.execute(
        f"""create or replace temp table listed as
            select distinct nhs_number_token from read_parquet({literal(parquet)})
            where nhs_number_valid and nhs_number_token is not null"""
    )
    con.execute(
        "delete from linkage.opt_outs where nhs_number_token not in (select nhs_number_token from listed)"
    )
    con.execute(
        """insert into linkage.opt_outs (nhs_number_token, first_batch_id)
           select nhs_number_token, ? from listed
           where nhs_number_token not in (select nhs_number_token from linkage.opt_outs)""",
        [batch_id],
    )
    # Its entries, each NHS number once (one failing Modulus 11 matches nobody: nhs_numbers_invalid).
    seam = f"read_parquet({literal(parquet)})"
    load.rows_duplicate, load.rows_loaded = con.execute(
        "select count(*) filter (where duplicate), count(*) filter (where not duplicate) from ("
        + records.in_file_sql(seam, columns_of(con, seam), ())
        + ")"
    ).fetchall()[0]
    load.withheld_by_opt_out, load.persons_removed = _remove_persons(con, OPTED_OUT_PERSONS)


def _check_file(parquet: Path, manifest: Manifest) -> None:
    """The file is the one the manifest describes, byte for byte."""
    if file_sha256(parquet) != manifest.output_sha256:
        raise LdmError(
            f"{parquet}: its SHA-256 differs from its manifest's; the file was changed after it was made"
        )


def _staged_columns(con, parquet: Path, feed: str, repeated: dict[str, int]) -> list[str]:
    """The extract's columns the store reads: its table's, and those the loader learns from.

    Registrations keep every column (they refresh the spine's tokens); activity feeds keep their
    table's columns, local ids and every position of their repeated fields, not the tokens that
    only linkage needs.
    """
    present = columns_of(con, f"read_parquet({literal(parquet)})")
    if feed == "gp_registrations":
        return [*present, "record_digest"]
    wanted = {*columns_of(con, f"main.{FEED_TABLES[feed]}"), "row_number", "local_id_token"}
    wanted |= {repeated_column(name, i) for name, positions in repeated.items() for i in range(positions)}
    dropped = [name for name in present if name not in wanted and not name.endswith("_token")]
    if dropped:  # a seam file from another version or spec: its values would be lost without a word
        raise LdmError(
            f"{parquet}: column(s) {', '.join(dropped)} have no place in the store's {FEED_TABLES[feed]} table; "
            "nothing was loaded (was the extract pseudonymised by another version of ldm? pseudonymise it again)"
        )
    return [name for name in present if name in wanted] + ["record_digest"]


def _opt_outs(con) -> tuple[pa.Table, pa.Table]:
    """Opted-out NHS number tokens and the persons they belong to, for linkage to mark withheld rows."""
    tokens = con.sql("select nhs_number_token from linkage.opt_outs").to_arrow_table()
    return tokens, con.sql(OPTED_OUT_PERSONS).to_arrow_table()


def _recognise_records(con, manifest: Manifest, parquet: Path, load: BatchLoad) -> pa.Table:
    """Find the batch's duplicates and the records the store already holds; remove the earlier
    versions of revised ones.

    Returns the row numbers not to load: duplicates (a later row of the file is the same record) and
    re-sent rows (same record, same content as the store's).
    """
    table = FEED_TABLES[manifest.feed]
    seam = f"read_parquet({literal(parquet)})"
    con.execute(
        "create or replace temp table in_file as "
        + records.in_file_sql(seam, columns_of(con, seam), manifest.record_key)
    )
    # A provider's record key identifies its own records only: two providers of one feed may number
    # theirs alike, and one's record must never revise (delete) the other's.
    provider = literal(manifest.provider or DEFAULT_PROVIDER)
    own = f"""(select * from main.{table} where batch_id in (select batch_id from governance.batches
               where coalesce(provider, {literal(DEFAULT_PROVIDER)}) = {provider}))"""
    con.execute(
        "create or replace temp table matched as " + records.matches_sql("in_file", own, manifest.record_key)
    )
    con.execute(
        """create or replace temp table superseded as
           select distinct e.batch_id, e.row_number from (select unnest(earlier) as e from matched where not same)"""
    )
    con.execute(
        f"""create or replace temp table superseded_persons as
            select distinct person_id from main.{table}
            where (batch_id, row_number) in (select (batch_id, row_number) from superseded) and person_id is not null"""
    )
    load.rows_resent, load.rows_revised = con.execute(
        "select count(*) filter (where same), count(*) filter (where not same) from matched"
    ).fetchall()[0]
    load.rows_duplicate = con.execute("select count(*) from in_file where duplicate").fetchall()[0][0]
    load.revised_batches = [
        row[0] for row in con.execute("select distinct batch_id from superseded").fetchall()
    ]
    if load.rows_revised:
        children = child_tables(manifest.feed)
        for name in (*[f"main.{t}" for t in (*children, table)], "linkage.record_links"):
            con.execute(
                f"""delete from {name}
                    where (batch_id, row_number) in (select (batch_id, row_number) from superseded)"""
            )
    skipped = con.sql(
        "select row_number from in_file where duplicate union all select row_number from matched where same"
    ).to_arrow_table()
    con.execute("drop table in_file")
    return skipped


def _load_records(
    con, batch_id: int, manifest: Manifest, parquet: Path, load: BatchLoad, linkage: LinkageConfig | None
) -> None:
    feed = manifest.feed
    skip = _recognise_records(con, manifest, parquet, load)  # duplicates and re-sent rows
    columns, (tokens, persons) = _staged_columns(con, parquet, feed, manifest.repeated), _opt_outs(con)
    with tempfile.TemporaryDirectory(prefix="ldm-link-") as folder:
        # The spine streams from the store while linkage reads it: no other query until it is done.
        # A registration batch learns in the store, once its new persons have ids (_learn_evidence).
        staged = link_extract(
            spine_of(con),
            parquet,
            Path(folder) / "staged.parquet",
            columns,
            tokens,
            persons,
            linkage,
            skip,
            learn=feed != "gp_registrations",
        )
        load.steps = staged.steps
        if staged.rows != manifest.rows_accepted - load.rows_duplicate - load.rows_resent:
            raise LdmError(
                f"{parquet}: {staged.rows:,} rows could be staged but its manifest has {manifest.rows_accepted:,} "
                f"of which {load.rows_duplicate:,} are duplicates and {load.rows_resent:,} already in the store"
            )
        materialise = feed == "gp_registrations"
        _stage(con, staged.path, materialise)
        _write_records(con, batch_id, manifest, load, staged.rows)
        if staged.evidence is not None:
            con.register("batch_evidence", staged.evidence)
            _learn_evidence(con, batch_id, feed, "batch_evidence", load)
            con.unregister("batch_evidence")
        con.execute(f"drop {'table' if materialise else 'view'} incoming")  # it reads a file about to go


def _write_records(con, batch_id: int, manifest: Manifest, load: BatchLoad, staged: int) -> None:
    feed = manifest.feed
    if feed == "gp_registrations":
        load.persons_added = _add_new_persons(con)
        con.execute("create or replace temp table replaced_keys as " + evidence.replaced_keys_sql("incoming"))
        _refresh_person_keys(con, batch_id)
    load.rows_loaded = _insert_rows(con, FEED_TABLES[feed], batch_id)
    load.withheld_by_opt_out = staged - load.rows_loaded
    if feed == "gp_registrations":
        _refresh_persons(con, batch_id)
        con.execute(
            "create or replace temp table new_evidence as "
            + evidence.new_evidence_sql(
                f"{evidence.candidates_sql(_registration_identities(con))} union all select * from replaced_keys",
                f"({evidence.spine_sql()})",
            )
        )
        _learn_evidence(con, batch_id, feed, "new_evidence", load)
        con.execute("drop table replaced_keys")
        con.execute("drop table new_evidence")
    _unpivot_repeated(con, feed, manifest.repeated, batch_id)
    _learn_local_ids(con, batch_id)
    started = now()
    for count in load.steps:
        con.execute(
            """insert into governance.linkage_log (log_id, batch_id, step, records_in, linked, ambiguous, unlinked,
                   link_rate, key_id, algorithm_version, operator, started_at, finished_at)
               values (nextval('governance.linkage_log_id_seq'), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            [
                batch_id,
                count.step,
                count.records_in,
                count.linked,
                count.ambiguous,
                count.unlinked,
                count.linked / count.records_in if count.records_in else None,
                manifest.key_id,
                ALGORITHM_VERSION,
                getpass.getuser(),
                started,
                now(),
            ],
        )


def _withdraw(con, batch_id: int) -> None:
    """Remove an earlier load of a batch before it is replaced (its governance rows stay, marked)."""
    for table in ANALYST_TABLES:
        con.execute(f"delete from main.{table} where batch_id = ?", [batch_id])
    con.execute("delete from linkage.record_links where batch_id = ?", [batch_id])
    con.execute("update governance.batches set status = 'superseded' where batch_id = ?", [batch_id])


def load_batch(
    con,
    store: Path,
    manifest: Manifest,
    parquet: Path,
    audit_key: bytes,
    replaces: int | None = None,
    linkage: LinkageConfig | None = None,
) -> BatchLoad:
    """Load one pseudonymised extract in one transaction, sealed in the audit chain with what it wrote."""
    con.begin()
    try:
        if replaces is not None:
            _withdraw(con, replaces)
        batch_id = _insert_batch(con, manifest)
        _check_file(parquet, manifest)
        load = BatchLoad(batch_id, manifest.feed, manifest.input_file, manifest.rows_accepted, 0)
        if manifest.feed == "opt_out":
            _apply_opt_out_list(con, batch_id, parquet, load)
        else:
            _load_records(con, batch_id, manifest, parquet, load, linkage)
        if load.withheld_by_opt_out or load.persons_removed:
            con.execute(
                """insert into governance.opt_out_counts (run_id, batch_id, records_removed, persons_removed,
                       applied_at, operator)
                   values (nextval('governance.opt_out_run_id_seq'), ?, ?, ?, ?, ?)""",
                [batch_id, load.withheld_by_opt_out, load.persons_removed, now(), getpass.getuser()],
            )
        con.execute(
            """update governance.batches set status = 'loaded', rows_loaded = ?, rows_resent = ?, rows_revised = ?,
                   rows_duplicate = ?, rows_withheld = ?, loaded_at = ? where batch_id = ?""",
            [
                load.rows_loaded,
                load.rows_resent,
                load.rows_revised,
                load.rows_duplicate,
                # The opt-out list's own rows are never withheld (what it removed is in opt_out_counts).
                0 if manifest.feed == "opt_out" else load.withheld_by_opt_out,
                now(),
                batch_id,
            ],
        )
        # An opt-out list removes rows from every batch; otherwise only these batches' partitions changed.
        state = (
            audit.full_state(con, audit_key, digests.LOAD_TABLES)
            if manifest.feed == "opt_out"
            else audit.batch_state(
                con, audit_key, [batch_id, *load.revised_batches, *([replaces] if replaces else [])]
            )
        )
        head = audit.append(
            con,
            audit_key,
            getpass.getuser(),
            "load",
            f"batch {batch_id}",
            {
                "feed": load.feed,
                "provider": manifest.provider or None,
                "spec_name": manifest.spec_name or None,
                "input_file": load.input_file,
                "input_sha256": manifest.input_sha256,
                "key_id": manifest.key_id,
                "rows_accepted": load.rows_accepted,
                "rows_loaded": load.rows_loaded,
                "rows_resent": load.rows_resent,
                "rows_revised": load.rows_revised,
                "rows_duplicate": load.rows_duplicate,
                "withheld_by_opt_out": load.withheld_by_opt_out,
                "persons_added": load.persons_added,
                "persons_removed": load.persons_removed,
                "evidence_added": load.evidence_added,
                "evidence_conflicts": load.evidence_conflicts,
                "replaces": replaces,
                "links": {c.step: c.linked for c in load.steps},
            },
            state,
        )
        con.commit()
    except BaseException:
        con.rollback()
        raise
    audit.write_anchor(store, head)
    return load


def store_key_ids(con) -> list[str]:
    """Key ids the store's batches were made under (one, or none for an empty store)."""
    return [
        row[0]
        for row in con.execute("select key_id from governance.key_ids order by first_seen_at").fetchall()
    ]


def check_key(con, store: Path, key: MasterKey, manifests: list[tuple[Manifest, Path]] = ()) -> None:
    """Refuse, before anything is written, a key or a manifest other than the store's own key."""
    others = [key_id for key_id in store_key_ids(con) if key_id != key.key_id]
    if others:
        raise LdmError(
            f"store {store} was built with key id {others[0]}, but the key given has key id {key.key_id}; "
            "use the store's own key file (a store never mixes keys; key rotation is not done by a run)"
        )
    for manifest, parquet in manifests:
        if manifest.key_id != key.key_id:
            raise LdmError(
                f"{parquet.name}: pseudonymised under key id {manifest.key_id}, but the store's key is "
                f"{key.key_id}; pseudonymise the extract again with the store's key"
            )


def check_store_key(store: Path, key: MasterKey) -> None:
    """`check_key` on a store file, opened read-only for the check (a store not yet made has no key)."""
    if not store.exists():
        return
    con = connect(store, read_only=True)
    try:
        check_key(con, store, key)
    finally:
        con.close()


def check_audit(con, store: Path, key: MasterKey, shown: Path | None = None) -> None:
    """Refuse to write to a store that fails its audit check, so that tampering is never sealed over.

    `shown` names the store in the message when `store` is a working copy of it.
    """
    problems = audit.verify(con, key.purpose_key(AUDIT), audit.read_anchor(store)).problems
    if problems:
        name = shown or store
        raise LdmError(
            f"store {name} fails its audit check ({len(problems)} problem(s), first: {problems[0]}); "
            f"nothing was loaded. See: ldm audit verify --store {name}"
        )


def load_folder(
    folder: Path,
    store: Path,
    key: MasterKey,
    replace: bool = False,
    progress: Callable[[str], None] | None = None,
    linkage: LinkageConfig | None = None,
    advance: Callable[[int, int], None] | None = None,
    only: list[Path] | None = None,
    verify_first: bool = True,
    shown: Path | None = None,
) -> LoadSummary:
    """Load every pseudonymised extract in `folder` (OUT of `ldm pseudonymise`) not yet in the store.

    `only` limits the load to the listed manifests (a run loads the extracts it was given, not
    whatever an earlier run left in the folder). `progress` gets a line as each batch starts;
    `advance(rows, total)` is called as each ends, with the rows of all batches to load as the total.
    `verify_first` checks the store's audit before the first write, on the connection that then
    loads, so nothing can change in between; `shown` names the store in messages when `store` is a
    working copy of it.
    """
    manifests = _manifests(folder, only)
    store = Path(store)
    with store_lock(store, progress):
        con = connect(store)
        con.execute(f"set memory_limit = {literal(STORE_MEMORY)}")
        try:
            return _load_all(
                con, store, key, manifests, replace, progress, linkage, advance, verify_first, shown
            )
        finally:
            con.close()


def _load_all(
    con, store, key, manifests, replace, progress, linkage, advance, verify_first, shown
) -> LoadSummary:
    revision = current_revision_of(con)
    if revision != head_revision():
        raise LdmError(
            f"store {store} is at revision {revision or 'none'}; run: ldm db upgrade --store {store}"
        )
    check_key(con, store, key, manifests)
    if verify_first:
        check_audit(con, store, key, shown)
    summary = LoadSummary()
    to_load, first_of = [], {}
    for manifest, parquet in manifests:
        same_bytes = (manifest.feed, manifest.input_sha256)
        if same_bytes in first_of:
            summary.duplicates.append((manifest.input_file, first_of[same_bytes]))
            continue
        first_of[same_bytes] = manifest.input_file
        earlier = con.execute(
            "select batch_id from governance.batches where feed = ? and input_sha256 = ? and status = 'loaded'",
            [manifest.feed, manifest.input_sha256],
        ).fetchall()
        if earlier and not replace:
            summary.already_loaded.append((manifest.input_file, earlier[0][0]))
        else:
            to_load.append((manifest, parquet, earlier[0][0] if earlier else None))
    lists = [manifest.input_file for manifest, _, _ in to_load if manifest.feed == "opt_out"]
    if len(lists) > 1:  # each list is a full snapshot: the second would let the first's people back in
        raise LdmError(
            f"{len(lists)} opt-out lists to load at once ({', '.join(lists)}); each is a full snapshot that "
            "replaces the one before, so send one list (nothing was loaded)"
        )
    total_rows = sum(manifest.rows_accepted for manifest, _, _ in to_load)
    audit_key = key.purpose_key(AUDIT)
    for manifest, parquet, replaces in to_load:
        if progress:
            progress(f"{manifest.feed}: {manifest.input_file}")
        summary.loaded.append(load_batch(con, store, manifest, parquet, audit_key, replaces, linkage))
        if advance:
            advance(manifest.rows_accepted, total_rows)
    summary.audit_head = audit.head(con)
    return summary


def current_revision_of(con) -> str | None:
    """The store's Alembic revision, read on the open connection (a second connection would be refused)."""
    try:
        row = con.execute("select version_num from governance.alembic_version").fetchone()
    except duckdb.Error:
        return None
    return row[0] if row else None
