"""Pseudonymise one extract: read, validate, quarantine, tokenise, and write the seam file.

This is the last step of the identifiable zone. What it writes — a Parquet file of tokens, coarse
quasi-identifiers and the clinical payload, plus a manifest — is all that crosses into the
pseudonymised zone. Identifiers are normalised and tokenised once per distinct value and joined
back in DuckDB; no identifier column is copied to the output.
"""

from __future__ import annotations

import datetime
import getpass
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import duckdb
import pyarrow as pa

from ldm import __version__, column_types
from ldm.dialects import current as dialect
from ldm.errors import LdmError
from ldm.feeds.codes import clean_column
from ldm.feeds.read import RowsError, StructuralError, check_no_nul, load_raw
from ldm.feeds.spec import Column, FeedSpec
from ldm.feeds.working import ACCEPTED, FAILURES, RAW, TEXTS, lookup
from ldm.files import FileScan, file_sha256, safe_stem, scan_file, write_atomically
from ldm.identifiers import normalise
from ldm.pseudonymise.geography import AREA_COLUMNS, postcode_areas
from ldm.pseudonymise.keys import LINKAGE, MasterKey
from ldm.sql import quoted
from ldm.validate.run import ValidationOutcome, sql_date, validate

QUARANTINE_DIR = "quarantine"
EXTRACT_MEMORY = "4GB"  # per extract; two run at a time, so the step stays under 8 GB


@dataclass
class Manifest:
    """What an IG lead needs to trace a pseudonymised file back to the extract it came from."""

    feed: str
    spec_version: int
    input_file: str
    input_sha256: str
    input_bytes: int
    rows_in: int
    rows_accepted: int
    rows_quarantined: int
    key_id: str
    software_version: str
    operator: str
    started_at: str
    finished_at: str = ""
    seconds: float = 0.0
    output_file: str = ""
    output_sha256: str = ""
    quarantine_file: str = ""
    nhs_numbers: dict[str, int] = field(default_factory=dict)
    rules: list[dict] = field(default_factory=list)
    record_key: list[str] = field(default_factory=list)  # the spec's record key (empty: the whole record)
    provider: str = ""  # the spec's provider (several providers may send one feed)
    spec_name: str = ""  # the spec file's name without .yaml: which spec the extract was read with
    # Repeated fields: name -> number of positions written as <name>_<position> (position 0 first).
    repeated: dict[str, int] = field(default_factory=dict)

    def write(self, path: Path) -> None:
        write_atomically(path, (json.dumps(asdict(self), indent=2) + "\n").encode())

    @classmethod
    def read(cls, path: Path) -> Manifest:
        """The manifest written by `write`; a file that is not one is an LdmError naming it."""
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            names = {f.name for f in fields(cls)}
            return cls(**{name: value for name, value in document.items() if name in names})
        except (OSError, ValueError, TypeError) as error:
            raise LdmError(f"{path}: not a readable manifest ({error})") from None


def previous_manifest(
    out_dir: Path, feed: str, extract: Path, key_id: str, scan: FileScan | None = None
) -> tuple[Path | None, FileScan | None]:
    """The manifest of an earlier pseudonymisation of the same bytes under the same key, if any.

    A file pseudonymised under another key is not a re-send: its tokens would not link with this
    key's. Also returns the extract's scan (checksum and first NUL byte) when it had to be computed:
    only when an earlier extract had the same size, or when the caller brings one. Otherwise the
    file cannot be a re-send, and pseudonymisation scans it while it reads it.
    """
    earlier = [
        manifest | {"path": path}
        for path in sorted((out_dir / feed).glob("*.manifest.json"))
        if (manifest := json.loads(path.read_text())).get("key_id") == key_id
    ]
    size = extract.stat().st_size
    if scan is None and not any(manifest.get("input_bytes") == size for manifest in earlier):
        return None, None
    scan = scan or scan_file(extract)
    match = next((m["path"] for m in earlier if m.get("input_sha256") == scan.sha256), None)
    return match, scan


class _Lookups:
    """Per-column lookup tables from a distinct raw value to its tokens and derived values."""

    def __init__(self, con: duckdb.DuckDBPyConnection, key: bytes, scanned: dict[str, pa.Array]):
        self.con, self.key, self.scanned = con, key, dict(scanned)
        self.joins: list[str] = []
        self.columns: list[str] = []

    def distinct(self, source: str) -> pa.Array:
        """The column's distinct raw values: those validation found, or a scan of the extract.

        Values only in quarantined rows get lookup entries too; no accepted row joins to them.
        """
        if source not in self.scanned:
            self.scanned[source] = (
                self.con.sql(f"select distinct {quoted(source)} as key from {RAW}")
                .to_arrow_table()["key"]
                .combine_chunks()
            )
        return self.scanned[source]

    def distinct_pairs(self, *sources: str) -> pa.Table:
        names = ", ".join(quoted(s) for s in sources)
        return self.con.sql(f"select distinct {names} from {ACCEPTED}").to_arrow_table()

    def parsed(self, column: Column) -> pa.Table:
        """Distinct raw texts of a date column with their value parsed by the spec's format."""
        self.con.register(TEXTS, pa.table({column.source: self.distinct(column.source)}))
        parsed = f"cast({sql_date(column)} as date)" if column.type == "date" else sql_date(column)
        try:
            return self.con.sql(
                f"select {quoted(column.source)} as raw, {parsed} as value from {TEXTS}"
            ).to_arrow_table()
        finally:
            self.con.unregister(TEXTS)

    def add(self, name: str, sources: tuple[str, ...], table: pa.Table, outputs: dict[str, str]) -> None:
        """Register `table` (raw source columns plus outputs) and join it on the raw values."""
        table_name = lookup(name)
        self.con.register(table_name, table)
        keys = " and ".join(
            f"{table_name}.{quoted('raw_' + s)} is not distinct from a.{quoted(s)}" for s in sources
        )
        self.joins.append(f"left join {table_name} on {keys}")
        self.columns += [
            f"{table_name}.{quoted(column)} as {quoted(alias)}" for column, alias in outputs.items()
        ]


def _column_lookups(lookups: _Lookups, spec: FeedSpec) -> None:
    """A lookup for every kept column whose output is derived from its raw text: identifiers, codes, dates.

    Identifiers' outputs come from their type's token recipe (ldm.column_types), the one
    `link_tables` uses too.
    """
    key = lookups.key
    for column in spec.kept:
        source = column.source
        if column.type == "nhs_number":
            raw = lookups.distinct(source)
            outputs = column_types.nhs_number_tokens(raw, key, column.name)
            table = pa.table({f"raw_{source}": raw, **outputs})
            lookups.add(column.name, (source,), table, {name: name for name in outputs})
        elif column.type == "local_id":
            issuer = spec.column(column.issuer)
            pairs = lookups.distinct_pairs(source, issuer.source)
            outputs = column_types.local_id_tokens(pairs[source], pairs[issuer.source], key, column.name)
            table = pa.table(
                {f"raw_{source}": pairs[source], f"raw_{issuer.source}": pairs[issuer.source], **outputs}
            )
            lookups.add(column.name, (source, issuer.source), table, {name: name for name in outputs})
        elif column.name == "date_of_birth":
            # Parsed with the provider's own format first, so any date style in a spec tokenises alike.
            parsed = lookups.parsed(column)
            outputs = column_types.date_of_birth_tokens(normalise.date_of_birth(parsed["value"]), key)
            table = pa.table({f"raw_{source}": parsed["raw"], **outputs, "born": parsed["value"]})
            lookups.add(column.name, (source,), table, {name: name for name in outputs})
        elif column.type in ("date", "datetime"):
            # Parsed once per distinct text (tens of thousands), not once per row (tens of millions).
            parsed = lookups.parsed(column).rename_columns([f"raw_{source}", "value"])
            lookups.add(column.name, (source,), parsed, {})  # selected in the spec's order by _payload_sql
        elif column.type == "postcode":
            raw = lookups.distinct(source)
            outputs = column_types.postcode_tokens(raw, key)
            table = pa.table({f"raw_{source}": raw, "postcode": normalise.postcode(raw), **outputs})
            table = table.join(postcode_areas(), "postcode", join_type="left outer").drop(["postcode"])
            lookups.add(column.name, (source,), table, {name: name for name in (*outputs, *AREA_COLUMNS)})
        elif column.type == "name":
            raw = lookups.distinct(source)
            outputs = column_types.name_tokens(raw, key, column.name)
            lookups.add(
                column.name, (source,), pa.table({f"raw_{source}": raw, **outputs}), {n: n for n in outputs}
            )
        elif column.type == "sex":
            raw = lookups.distinct(source)
            lookups.add(
                column.name,
                (source,),
                pa.table({f"raw_{source}": raw, "sex": column_types.sex_values(raw)["sex"]}),
                {"sex": column.name},
            )
        elif column.type == "code":
            raw = lookups.distinct(source)
            table = pa.table({f"raw_{source}": raw, "code": clean_column(raw, column)})
            lookups.add(column.name, (source,), table, {"code": column.name})


def _payload_sql(column: Column) -> str | None:
    """The output expression of a payload column; identifiers, sex and codes come from lookups."""
    if column.is_identifier:
        return None
    if column.type in ("date", "datetime"):
        return f"{lookup(column.name)}.value as {column.name}"
    payload = column_types.TYPES[column.type].payload
    return f"{payload(f'a.{quoted(column.source)}')} as {column.name}" if payload else None


def _age_sql(spec: FeedSpec) -> list[str]:
    """Age at the event from the month of birth, as if born on its first day.

    From the exact date of birth, ages at a person's exact event dates would narrow the day of
    birth down (an age that steps up between two events names the birthday), and with the year and
    month of birth beside it give the date of birth back. In a person's birth month the age is
    counted as after the birthday: off by one year on those days at most.
    """
    if not (spec.event_date and spec.column("date_of_birth")):
        return []
    event = f"{lookup(spec.event_date)}.value"
    born = f"date_trunc('month', {lookup('date_of_birth')}.born)"
    return [f"cast({dialect().whole_years(born, event)} as smallint) as age_at_event"]


def _write_quarantine(con, spec: FeedSpec, path: Path) -> Path:
    folder = path.parent / QUARANTINE_DIR
    folder.mkdir(exist_ok=True)
    target = folder / f"{safe_stem(path.name)}.rejected.csv"
    read = set(spec.sources)  # each column the spec reads once, in the file's order; constants are not sent
    sql = dialect()
    header = [row[0] for row in con.execute(sql.describe(RAW)).fetchall()]
    originals = ", ".join(f"r.{quoted(name)}" for name in header if name in read)
    temporary = target.with_name(target.name + ".partial")
    con.execute(
        sql.write_csv(
            f"""select f.row_number, f.reasons, {originals}
            from (select row_number, {sql.string_agg_sorted("rule", "; ")} as reasons
                  from {FAILURES} group by row_number) f
            join {RAW} r on {sql.row_id("r")} + 1 = f.row_number
            order by f.row_number""",
            temporary,
        )
    )
    os.replace(temporary, target)
    return target


def _read_and_scan(
    con: duckdb.DuckDBPyConnection, path: Path, spec: FeedSpec, scan: FileScan | None
) -> FileScan:
    """Load the extract into `raw` while a thread hashes it and looks for a NUL byte in the same read.

    hashlib releases the GIL, so the scan costs no extra time beside DuckDB's read. The structural
    check reads only the first MiB; a NUL byte further on is raised here, after the read, and also
    when DuckDB failed on the rows (a NUL byte is the likelier explanation of that).
    """
    with ThreadPoolExecutor(max_workers=1) as scanning:
        pending = scanning.submit(scan_file, path) if scan is None else None
        try:
            load_raw(con, path, spec)
            failure = None
        except RowsError as error:
            failure = error
        try:
            scan = pending.result() if pending else scan
        except OSError as error:
            raise failure or StructuralError(f"{path}: cannot be read ({error.strerror})") from None
    check_no_nul(path, spec, scan.nul_offset)
    if failure:
        raise failure
    return scan


def pseudonymise_extract(
    path: Path,
    spec: FeedSpec,
    key: MasterKey,
    out_dir: Path,
    suite: dict,
    today: datetime.date,
    max_quarantined_share: float = 0.05,
    scan: FileScan | None = None,
) -> tuple[Manifest, ValidationOutcome]:
    """Validate and pseudonymise one extract; raise LdmError (writing no output) on any failure.

    `scan` is the extract's checksum and first NUL byte when the caller already read them.
    """
    started = time.perf_counter()
    con = duckdb.connect(config={"memory_limit": EXTRACT_MEMORY})
    con.execute("set enable_progress_bar = false")  # it would draw into a run's log (ldm.store.connect)
    scan = _read_and_scan(con, path, spec, scan)
    sha256 = scan.sha256
    manifest = Manifest(
        feed=spec.feed,
        spec_version=spec.spec_version,
        input_file=path.name,
        input_sha256=sha256,
        input_bytes=path.stat().st_size,
        rows_in=0,
        rows_accepted=0,
        rows_quarantined=0,
        key_id=key.key_id,
        record_key=list(spec.record_key),
        provider=spec.provider,
        spec_name=spec.name,
        repeated=dict(spec.repeated),
        software_version=__version__,
        operator=getpass.getuser(),
        started_at=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    )
    outcome = validate(con, spec, suite, today)
    manifest.rows_in, manifest.rows_quarantined = outcome.rows_in, outcome.rows_quarantined
    manifest.rows_accepted = outcome.rows_accepted
    manifest.rules = [
        {"rule": r.rule, "column": r.column, "severity": r.severity, "rows": r.rows} for r in outcome.rules
    ]
    if outcome.rows_quarantined:
        manifest.quarantine_file = str(_write_quarantine(con, spec, path))
    share = outcome.rows_quarantined / outcome.rows_in
    if share > max_quarantined_share:
        raise LdmError(
            f"{path}: {share:.1%} of rows failed a blocking rule, above the limit of "
            f"{max_quarantined_share:.1%}; nothing was pseudonymised. "
            f"Reasons by row: {manifest.quarantine_file}"
        )
    row_number = f"{dialect().row_id()} + 1"
    con.execute(
        f"""create or replace temp view {ACCEPTED} as
           select {row_number} as row_number, * from {RAW}
           where {row_number} not in (select row_number from {FAILURES})"""
    )
    lookups = _Lookups(con, key.purpose_key(LINKAGE), outcome.distinct)
    _column_lookups(lookups, spec)
    select = ["a.row_number"]
    for column in spec.kept:
        payload = _payload_sql(column)
        if payload:
            select.append(payload)
    select += lookups.columns + _age_sql(spec)
    folder = out_dir / spec.feed
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{safe_stem(path.name)}.{sha256[:12]}"
    output = folder / f"{stem}.parquet"
    temporary = output.with_name(output.name + ".partial")
    con.execute(
        dialect().write_parquet(
            f"select {', '.join(select)} from {ACCEPTED} a {' '.join(lookups.joins)}", temporary, "zstd"
        )
    )
    os.replace(temporary, output)
    if spec.column("nhs_number"):
        present, valid = con.execute(
            "select count(nhs_number_token), count(*) filter (where nhs_number_valid) "
            f"from {dialect().parquet(output)}"
        ).fetchone()
        manifest.nhs_numbers = {
            "rows": manifest.rows_accepted,
            "present": present,
            "valid": valid,
            "invalid": present - valid,
            "missing": manifest.rows_accepted - present,
        }
    manifest.output_file = output.name
    manifest.output_sha256 = file_sha256(output)
    manifest.finished_at = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    manifest.seconds = round(time.perf_counter() - started, 3)
    manifest.write(folder / f"{stem}.manifest.json")
    return manifest, outcome
