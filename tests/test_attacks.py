"""The store attacked as an intruder and as a tired operator would: every attack fails safe.

Each test starts from a copy of the store `ldm demo` built from the committed sample (the shared
session fixture) and checks the promise an IG lead signs off on: no SQL from a file name, no
second key, no record loaded twice, every tampering named by `ldm audit verify`, one writer at
a time, and system errors in one line.
"""

from __future__ import annotations

import json
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
from conftest import query

from ldm.cli import main
from ldm.config import load_settings
from ldm.demo import SAMPLE_TODAY
from ldm.errors import LdmError
from ldm.feeds.spec import builtin_specs
from ldm.files import file_sha256
from ldm.governance import audit
from ldm.load.loader import FEED_TABLES, load_folder
from ldm.pipeline import RunReport, enough_space, run_pipeline
from ldm.pseudonymise.batch import pseudonymise_folder
from ldm.pseudonymise.keys import init_key, load_key
from ldm.store.lock import store_lock

INJECTED = (
    "national_data_opt_out');create table injected as select 42 x;copy linkage.person_keys to 'k.csv';--.csv"
)


@dataclass
class City:
    folder: Path
    key_file: Path

    @property
    def store(self) -> Path:
        return self.folder / "store.duckdb"

    @property
    def extracts(self) -> Path:
        return self.folder / "extracts"

    @property
    def seam(self) -> Path:
        return self.folder / "pseudonymised"

    @property
    def key(self):
        return load_key(self.key_file)

    def run(self, key_file: Path | None = None):
        settings = load_settings(
            None,
            store=self.store,
            key_file=key_file or self.key_file,
            today=SAMPLE_TODAY,
            pseudonymised=self.seam,
        )
        return run_pipeline(self.extracts, settings)

    def verify(self, *extra: str) -> int:
        return main(["audit", "verify", "--store", str(self.store), "--key-file", str(self.key_file), *extra])


def copy_of_demo(sample_marts_store: Path, folder: Path) -> City:
    """A private copy of the demo's folder in `folder`: extracts, seam files, store and its anchor."""
    demo = sample_marts_store.parent
    shutil.copytree(demo, folder / "city", ignore=shutil.ignore_patterns(".ldm-dbt"))
    return City(folder / "city", demo.parent / "demo.key")


@pytest.fixture
def city(sample_marts_store: Path, tmp_path: Path) -> City:
    return copy_of_demo(sample_marts_store, tmp_path)


def row_counts(store: Path, schemas: tuple[str, ...] = ("main", "linkage")) -> dict[str, int]:
    con = duckdb.connect(str(store), read_only=True)
    try:
        tables = con.execute(
            "select schema_name, table_name from duckdb_tables() where database_name = current_database() "
            f"and schema_name in ({', '.join('?' * len(schemas))})",
            list(schemas),
        ).fetchall()
        return {
            f"{s}.{t}": con.execute(f'select count(*) from {s}."{t}"').fetchall()[0][0] for s, t in tables
        }
    finally:
        con.close()


def resend(source: Path, target: Path) -> None:
    """The same rows in a new file: one blank line more, so a new SHA-256."""
    target.write_bytes(source.read_bytes() + b"\n")


# 1. SQL injection through file names ------------------------------------------------------------

O_BRIEN = "op_appointments O'Brien; drop table persons.csv"
LONG_NAME = "community_contacts" + "x" * (255 - len("community_contacts") - 4) + ".txt"
WITHDRAWN = "gp_events_withdrawn.txt"


@dataclass
class Ran:
    """One `ldm run` on a copy of the demo's folder, given awkward extracts (files named to inject SQL,
    a 255-character name, each re-sending rows already loaded) and a seam file left by an earlier
    failed run whose extract was then withdrawn; with what the store held before."""

    city: City
    report: RunReport
    cwd: Path
    rows_before: dict[str, int]
    utilisation_before: list[tuple]

    @property
    def loaded(self) -> dict:
        return {load.input_file: load for load in self.report.loaded.loaded}


@pytest.fixture(scope="module")
def ran(sample_marts_store: Path, tmp_path_factory) -> Ran:
    folder = tmp_path_factory.mktemp("ran")
    city = copy_of_demo(sample_marts_store, folder)
    resend(city.extracts / "national_data_opt_out.csv", city.extracts / INJECTED)
    resend(city.extracts / "op_appointments.csv", city.extracts / O_BRIEN)
    resend(city.extracts / "community_contacts.txt", city.extracts / LONG_NAME)
    withdrawn = folder / "withdrawn"
    withdrawn.mkdir()
    (withdrawn / WITHDRAWN).write_text(
        "EventId|PatientNHSNumber|PracticeCode|EventDate|ConceptId|Value|Unit\n"
        "990001|9990000018|B86086|2025-03-01|271649006|128|mm[Hg]\n"
    )
    pseudonymise_folder(withdrawn, city.seam, city.key, builtin_specs(), SAMPLE_TODAY)
    rows_before = row_counts(city.store)
    utilisation_before = query(city.store, "select sum(numerator) from marts.mart_utilisation")
    cwd = folder / "cwd"
    cwd.mkdir()
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(cwd)
        report = city.run()
    return Ran(city, report, cwd, rows_before, utilisation_before)


def test_a_file_name_carrying_sql_injects_nothing_and_loads_nothing_twice(ran):
    city, names = ran.city, ran.loaded
    assert INJECTED in names and O_BRIEN in names
    assert not query(city.store, "select * from duckdb_tables() where table_name = 'injected'")
    assert not list(ran.cwd.parent.rglob("k.csv"))
    assert row_counts(city.store) == ran.rows_before  # the opt-out list and every record as they were
    resent = names[O_BRIEN]
    assert resent.rows_loaded == 0  # every row already loaded, or withheld again by the opt-out
    assert resent.rows_duplicate + resent.rows_resent + resent.withheld_by_opt_out == resent.rows_accepted
    assert query(city.store, "select sum(numerator) from marts.mart_utilisation") == ran.utilisation_before
    seam_names = [path.name for path in city.seam.rglob("*") if path.is_file()]
    assert all(len(name.encode()) <= 255 and "'" not in name and ";" not in name for name in seam_names)
    assert city.verify() == 0


@pytest.mark.parametrize("name", ["national_data_opt_out*.csv", "national_data_opt_out\n.csv"])
def test_a_file_name_that_could_read_other_files_is_refused_and_the_store_is_unchanged(city, name):
    resend(city.extracts / "national_data_opt_out.csv", city.extracts / name)
    before = file_sha256(city.store)
    with pytest.raises(LdmError, match="rename") as refused:
        city.run()
    assert "\n" not in str(refused.value) and "store unchanged" in str(refused.value)
    assert file_sha256(city.store) == before


def test_a_255_character_file_name_is_loaded(ran):
    assert len(LONG_NAME) == 255
    load = ran.loaded[LONG_NAME]
    assert load.rows_loaded == 0
    assert load.rows_duplicate + load.rows_resent + load.withheld_by_opt_out == load.rows_accepted


# 2. One key per store -----------------------------------------------------------------------------


def test_a_run_under_another_key_is_refused_before_anything_is_written(city, tmp_path):
    other = init_key(tmp_path / "other.key")
    seam_before = sorted(city.seam.rglob("*"))
    extracts_before = sorted(city.extracts.rglob("*"))
    store_before = file_sha256(city.store)
    with pytest.raises(LdmError) as refused:
        city.run(key_file=tmp_path / "other.key")
    message = str(refused.value)
    assert f"built with key id {city.key.key_id}" in message and other.key_id in message
    assert file_sha256(city.store) == store_before
    assert sorted(city.seam.rglob("*")) == seam_before and sorted(city.extracts.rglob("*")) == extracts_before


def test_manifests_made_under_another_key_are_refused_by_the_loader(city, tmp_path):
    other = init_key(tmp_path / "other.key")
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    resend(city.extracts / "gp_registrations.csv", incoming / "gp_registrations_2.csv")
    pseudonymise_folder(incoming, tmp_path / "seam", other, builtin_specs(), SAMPLE_TODAY)
    store_before = file_sha256(city.store)
    with pytest.raises(LdmError, match=f"pseudonymised under key id {other.key_id}"):
        load_folder(tmp_path / "seam", city.store, city.key)
    with pytest.raises(LdmError, match=f"built with key id {city.key.key_id}"):
        load_folder(tmp_path / "seam", city.store, other)
    assert file_sha256(city.store) == store_before


# 3. Each record loaded once -----------------------------------------------------------------------


def test_records_sent_again_in_new_or_overlapping_files_are_loaded_once(city, tmp_path):
    source = (city.extracts / "op_appointments.csv").read_text().splitlines()
    header, rows = source[0], source[1:]
    new = [
        ",".join(["99000" + str(i), *row.split(",")[1:]]) for i, row in enumerate(rows[:5])
    ]  # new record ids
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    (incoming / "op_appointments_a.csv").write_text("\n".join([header, *rows[:600], *new]) + "\n")
    (incoming / "op_appointments_b.csv").write_text("\n".join([header, *new, *rows[600:700]]) + "\n")
    (incoming / "op_appointments_c.csv").write_text("\n".join([header, *rows[700:]]) + "\n\n")
    shutil.copy(incoming / "op_appointments_c.csv", incoming / "op_appointments_c_again.csv")
    before = query(city.store, "select count(*) from main.op_appointments")[0][0]
    result = pseudonymise_folder(incoming, tmp_path / "seam", city.key, builtin_specs(), SAMPLE_TODAY)
    assert [path.name for path, _ in result.duplicates] == ["op_appointments_c_again.csv"]
    summary = load_folder(tmp_path / "seam", city.store, city.key)
    by_file = {load.input_file: load for load in summary.loaded}
    assert set(by_file) == {"op_appointments_a.csv", "op_appointments_b.csv", "op_appointments_c.csv"}
    for name, load in by_file.items():  # nothing loaded twice; what is not re-sent is withheld by opt-out
        assert (
            load.rows_duplicate + load.rows_resent + load.withheld_by_opt_out + load.rows_loaded
            == load.rows_accepted
        )
        assert load.rows_loaded == 0 or name == "op_appointments_a.csv"
    new_loaded = by_file["op_appointments_a.csv"]
    b = by_file["op_appointments_b.csv"]  # a planted duplicate among its rows is a duplicate, not re-sent
    assert 0 < new_loaded.rows_loaded <= 5 and b.rows_resent + b.rows_duplicate >= 100
    assert (
        query(city.store, "select count(*) from main.op_appointments")[0][0]
        == before + new_loaded.rows_loaded
    )
    recorded = query(
        city.store,
        "select input_file, rows_resent from governance.batches where feed = 'op_appointments' order by batch_id",
    )
    assert dict(recorded[-3:]) == {name: load.rows_resent for name, load in by_file.items()}
    assert city.verify() == 0


def test_a_revised_record_replaces_the_earlier_version(city, tmp_path):
    lines = (city.extracts / "apc_spells.csv").read_text().splitlines()
    header = lines[0].split(",")
    discharge = header.index("DISCHARGE_DATE_HOSPITAL_PROVIDER_SPELL")
    spell = header.index("SPELL_ID")
    stored = {
        r for (r,) in query(city.store, "select record_id from main.apc_spells where person_id is not null")
    }
    row = next(line.split(",") for line in lines[1:] if int(line.split(",")[spell]) in stored)
    row[discharge] = "2025-03-30"
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    (incoming / "apc_spells_resubmitted.csv").write_text(",".join(header) + "\n" + ",".join(row) + "\n")
    pseudonymise_folder(incoming, tmp_path / "seam", city.key, builtin_specs(), SAMPLE_TODAY)
    before = query(city.store, "select count(*) from main.apc_spells")[0][0]
    (load,) = load_folder(tmp_path / "seam", city.store, city.key).loaded
    assert (load.rows_revised, load.rows_resent, load.rows_loaded) == (1, 0, 1)
    assert query(city.store, "select count(*) from main.apc_spells")[0][0] == before
    versions = query(
        city.store, "select discharge_date::varchar from main.apc_spells where record_id = ?", row[spell]
    )
    assert versions == [("2025-03-30",)]
    diagnoses = query(
        city.store,
        """select count(*) from main.spell_diagnoses d join main.apc_spells s using (batch_id, row_number)
           where s.record_id = ?""",
        row[spell],
    )[0][0]
    assert diagnoses >= 1
    orphans = query(
        city.store,
        """select count(*) from main.spell_diagnoses d
           where not exists (select 1 from main.apc_spells s
                             where s.batch_id = d.batch_id and s.row_number = d.row_number)""",
    )
    assert orphans == [(0,)]
    assert city.verify() == 0


def test_a_run_loads_only_the_extracts_it_was_given(ran):
    """A seam file left by a failed run, whose extract was then withdrawn, is not loaded by the next run."""
    assert WITHDRAWN not in ran.loaded and set(ran.loaded) == {INJECTED, O_BRIEN, LONG_NAME}
    assert query(ran.city.store, "select count(*) from main.gp_events where record_id = 990001") == [(0,)]


# 4. An audit that covers the store ----------------------------------------------------------------

TAMPERING = [
    ("update governance.batches set rows_in = rows_in + 1, rows_accepted = rows_accepted + 1 where batch_id = 5",
     "governance.batches (batch 5): row(s) edited"),
    ("delete from governance.linkage_log where batch_id = 3 and step = 'nhs_number'",
     "governance.linkage_log (batch 3): 1 row(s) deleted"),
    ("delete from governance.opt_out_counts where batch_id = 4", "governance.opt_out_counts (batch 4): 1 row(s)"),
    ("delete from governance.quarantine_counts where batch_id = 2", "governance.quarantine_counts (batch 2)"),
    ("update governance.key_ids set key_id = 'f00df00df00df00d'", "governance.key_ids: row(s) edited"),
    ("update main.persons set sex = case sex when 'F' then 'M' else 'F' end "
     "where person_id = (select min(person_id) from main.persons)", "main.persons"),
    ("delete from main.gp_events where row_number = 10", "main.gp_events (batch 8): 1 row(s) deleted"),
    ("update main.gp_events set person_id = case person_id when (select min(person_id) from main.gp_events) "
     "then (select max(person_id) from main.gp_events) else (select min(person_id) from main.gp_events) end "
     "where row_number in ((select min(row_number) from main.gp_events where person_id = "
     "(select min(person_id) from main.gp_events)), (select min(row_number) from main.gp_events "
     "where person_id = (select max(person_id) from main.gp_events)))",
     "main.gp_events (batch 8): row(s) edited"),
    ("insert into main.op_appointments by name "
     "select * replace (row_number + 1000000 as row_number) from main.op_appointments limit 1",
     "main.op_appointments (batch 4): 1 row(s) added"),
    ("update linkage.record_links set person_id = person_id + 1 "
     "where (batch_id, row_number) = (select (min(batch_id), min(row_number)) from linkage.record_links)",
     "linkage.record_links"),
    ("update linkage.opt_outs set nhs_number_token = 'x' || nhs_number_token "
     "where nhs_number_token = (select min(nhs_number_token) from linkage.opt_outs)", "linkage.opt_outs"),
    ("update marts.mart_prevalence set numerator = numerator + 5 "
     "where numerator = (select max(numerator) from marts.mart_prevalence)", "marts.mart_prevalence: row(s) edited"),
    ("drop table marts.mart_inequalities", "marts.mart_inequalities"),
    ("create macro hash(x) as 42", "defines function(s) main.hash"),
    ("create macro sqrt(x) as system.main.sqrt(x) * 10", "defines function(s) main.sqrt"),
    ("select setval('linkage.person_id_seq', 1)", "catalog: sequence linkage.person_id_seq changed"),
    ("create view main.persons_v as select * from main.persons", "catalog: view main.persons_v added"),
    ("create or replace view staging.stg_store__persons as select * from main.persons where sex = 'F'",
     "catalog: view staging.stg_store__persons changed"),
    ("comment on table marts.mart_prevalence is 'x'", "catalog: table marts.mart_prevalence changed"),
    ("create unique index evil on main.persons(sex, person_id)", "catalog: index main.evil added"),
    ("create schema evil", "catalog: schema evil added"),
    ("delete from governance.audit_log where seq = (select max(seq) from governance.audit_log)",
     "cut from the end of the chain"),
    ("delete from governance.audit_log where seq = (select max(seq) from governance.audit_log); "
     "delete from governance.audit_head", "governance.audit_head is empty"),
    ("update governance.audit_log set detail = replace(detail, 'gp_events', 'gp_evil') where seq = 3",
     "entry 3: content does not match its seal"),
    ("delete from governance.audit_log; delete from governance.audit_head",
     "holds data that no keyed audit entry records"),
    ("update governance.audit_head set seq = seq - 1", "governance.audit_head was edited"),
]  # fmt: skip


@pytest.mark.parametrize(("tamper", "named"), TAMPERING, ids=[named.split(":")[0] for _, named in TAMPERING])
def test_audit_verify_names_every_tampering(city, capsys, tamper, named):
    """Each starts from a fresh copy of the demo's folder, which verifies (test_the_printed_head_verifies)."""
    con = duckdb.connect(str(city.store))
    con.execute(tamper).fetchall()  # a setval runs only when its result is fetched
    con.close()
    capsys.readouterr()
    assert city.verify() == 1
    assert named in capsys.readouterr().err


def same_duckdb_hash(text: str) -> str:
    """Another printable string of the same length whose DuckDB 2.0 string hash equals `text`'s.

    DuckDB's string hash mixes 8-byte blocks with xor and an odd multiplier, which can be run
    backwards: keep the first 8 bytes, pick 8 printable bytes, solve the next 8 (retry until printable).
    """
    mask, k = 2**64 - 1, 0xD6E8FEB86659FD93
    original = text.encode()
    start = (0xE17A1465 ^ (len(original) * 0xC6A4A7935BD1E995)) & mask

    def run(state: int, blocks: bytes) -> int:
        for i in range(0, len(blocks), 8):
            state = ((state ^ int.from_bytes(blocks[i : i + 8], "little")) * k) & mask
        return state

    before, target = run(start, original[:8]), run(start, original[:24])
    printable, rng = bytes(range(0x21, 0x7F)), random.Random(1)
    while True:
        chosen = bytes(rng.choice(printable) for _ in range(8))
        solved = (((target * pow(k, -1, 2**64)) & mask) ^ run(before, chosen)).to_bytes(8, "little")
        if all(byte in printable for byte in solved):
            return (original[:8] + chosen + solved + original[24:]).decode()


def test_a_text_value_crafted_to_keep_duckdb_s_hash_is_named(city, capsys):
    """The opt-out token of one person replaced by text with the same DuckDB hash: their records would
    no longer be withheld. DuckDB's own hash cannot tell; the keyed text digest can."""
    (token,) = query(city.store, "select min(nhs_number_token) from linkage.opt_outs")[0]
    forged = same_duckdb_hash(token)
    assert forged != token and query(
        city.store, "select hash(?::varchar) = hash(?::varchar)", token, forged
    ) == [(True,)]
    con = duckdb.connect(str(city.store))
    con.execute(
        "update linkage.opt_outs set nhs_number_token = ? where nhs_number_token = ?", [forged, token]
    )
    con.close()
    assert city.verify() == 1
    assert "linkage.opt_outs" in capsys.readouterr().err


def rewrite_chain(store: Path, seal) -> None:
    """Recompute every entry's hash as an intruder would, with `seal(previous, content)`."""
    con = duckdb.connect(str(store))
    rows = con.execute(
        "select seq, logged_at, operator, action, subject, detail from governance.audit_log order by seq"
    ).fetchall()
    previous = audit.GENESIS
    for seq, at, operator, action, subject, detail in rows:
        digest = seal(previous, seq, at, operator, action, subject, detail)
        con.execute(
            "update governance.audit_log set previous_hash = ?, entry_hash = ?, scheme = ? where seq = ?",
            [None if seq == 1 else previous, digest, digest.scheme, seq],
        )
        previous = digest
    con.close()


class Sealed(str):
    scheme: str | None = None


def unkeyed(previous, seq, at, operator, action, subject, detail) -> Sealed:
    """The public algorithm of the unkeyed chain."""
    return Sealed(audit.entry_hash(None, previous, seq, at, operator, action, subject, detail, scheme=None))


def under_another_key(previous, seq, at, operator, action, subject, detail) -> Sealed:
    sealed = Sealed(audit.entry_hash(b"\x01" * 32, previous, seq, at, operator, action, subject, detail))
    sealed.scheme = audit.SCHEME
    return sealed


@pytest.mark.parametrize("seal", [unkeyed, under_another_key])
@pytest.mark.parametrize("anchor", ["kept", "deleted"])
def test_a_chain_recomputed_without_the_key_is_named(city, capsys, seal, anchor):
    con = duckdb.connect(str(city.store))
    con.execute("delete from governance.audit_log where seq = (select max(seq) from governance.audit_log)")
    con.close()
    rewrite_chain(city.store, seal)
    if anchor == "deleted":
        audit.anchor_path(city.store).unlink()
    capsys.readouterr()
    assert city.verify() == 1
    assert "audit check failed" in capsys.readouterr().err


def test_a_chain_rewritten_in_the_old_unkeyed_format_is_never_sealed_over(city, tmp_path):
    """The intruder's way around the key: make the store look older than keyed audit and let the next
    run seal it. Verify names it, and a run, a load and an upgrade all refuse to start."""
    con = duckdb.connect(str(city.store))
    con.execute("delete from main.gp_events where person_id = (select min(person_id) from main.gp_events)")
    con.execute("drop table governance.audit_head")
    con.close()
    rewrite_chain(city.store, unkeyed)
    con = duckdb.connect(str(city.store))
    head = audit.head(con)
    con.close()
    audit.anchor_path(city.store).write_text(head.entry_hash + "\n")
    assert city.verify() == 1
    before = file_sha256(city.store)
    with pytest.raises(LdmError, match="no keyed audit entry records"):
        city.run()
    with pytest.raises(LdmError, match="fails its audit check"):
        load_folder(city.seam, city.store, city.key)
    assert main(["db", "upgrade", "--store", str(city.store), "--key-file", str(city.key_file)]) == 2
    assert file_sha256(city.store) == before


def test_a_record_sent_twice_in_one_file_is_loaded_once(city, tmp_path):
    header, *rows = (city.extracts / "op_appointments.csv").read_text().splitlines()
    fresh = [",".join([str(990100 + i), *row.split(",")[1:]]) for i, row in enumerate(rows[:3])]
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    (incoming / "op_appointments_twice.csv").write_text(
        "\n".join([header, *fresh, fresh[0], fresh[1]]) + "\n"
    )
    pseudonymise_folder(incoming, tmp_path / "seam", city.key, builtin_specs(), SAMPLE_TODAY)
    (load,) = load_folder(tmp_path / "seam", city.store, city.key).loaded
    assert (load.rows_accepted, load.rows_duplicate, load.rows_resent) == (5, 2, 0)
    stored = query(
        city.store, "select count(*) from main.op_appointments where record_id between 990100 and 990102"
    )
    assert stored[0][0] + load.withheld_by_opt_out == 3


def test_a_reset_person_id_sequence_never_gives_a_newcomer_someone_else_s_id(city, tmp_path):
    header, first = (city.extracts / "gp_registrations.csv").read_text().splitlines()[:2]
    fields = first.split(",")
    fields[:5] = ["990001", "9998880009", "NEW", "PERSON", "01/02/1990"]  # a newcomer (a valid NHS number)
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    (incoming / "gp_registrations_new.csv").write_text(header + "\n" + ",".join(fields) + "\n")
    pseudonymise_folder(incoming, tmp_path / "seam", city.key, builtin_specs(), SAMPLE_TODAY)
    con = duckdb.connect(str(city.store))
    con.execute("select setval('linkage.person_id_seq', 1)").fetchall()
    con.close()
    before = file_sha256(city.store)
    with pytest.raises(LdmError, match=r"catalog: sequence linkage\.person_id_seq changed"):
        load_folder(tmp_path / "seam", city.store, city.key)
    with pytest.raises(LdmError, match="was the sequence reset"):
        load_folder(tmp_path / "seam", city.store, city.key, verify_first=False)
    assert file_sha256(city.store) == before


def test_the_head_an_ig_lead_kept_catches_a_store_put_back_to_an_older_copy(city, tmp_path, capsys):
    """An intruder who kept an older copy of the store and its anchor puts them back over a month's
    work: the older store is consistent with itself, and only the head the IG lead kept can tell."""
    older = tmp_path / "older.duckdb"
    shutil.copy(city.store, older)
    shutil.copy(audit.anchor_path(city.store), audit.anchor_path(older))
    header, first = (city.extracts / "community_contacts.txt").read_text().splitlines()[:2]
    fields = first.split("|")
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    (incoming / "community_contacts_2.txt").write_text(
        "\n".join([header, "|".join(["990777", *fields[1:]])]) + "\n"
    )
    pseudonymise_folder(incoming, tmp_path / "seam", city.key, builtin_specs(), SAMPLE_TODAY)
    # The month's work; its head as `ldm load` and `ldm run` print it, for the IG lead to keep.
    kept = load_folder(tmp_path / "seam", city.store, city.key).audit_head
    shutil.copy(older, city.store)
    shutil.copy(audit.anchor_path(older), audit.anchor_path(city.store))
    assert city.verify() == 0
    capsys.readouterr()
    assert city.verify("--expect-head", str(kept)) == 1
    assert "the head you kept" in capsys.readouterr().err


def test_the_printed_head_verifies(city, capsys):
    con = duckdb.connect(str(city.store), read_only=True)
    head = audit.head(con)
    con.close()
    assert city.verify("--expect-head", str(head)) == 0
    assert str(head) in capsys.readouterr().out


def test_verify_needs_the_key_and_says_so(city, capsys, monkeypatch):
    monkeypatch.delenv("LDM_KEY_FILE", raising=False)
    assert main(["audit", "verify", "--store", str(city.store)]) == 2
    assert "no key file given" in capsys.readouterr().err


# 5. One writer at a time --------------------------------------------------------------------------

HOLD = """
import sys, time
from pathlib import Path
from ldm.store.lock import store_lock
with store_lock(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(120)
"""


def test_a_second_run_is_told_who_holds_the_store_and_a_stale_lock_is_taken_over(city, capsys):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(city.store)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        store_before = file_sha256(city.store)
        code = main(["run", "--extracts", str(city.extracts), "--store", str(city.store),
                     "--key-file", str(city.key_file)])  # fmt: skip
        err = capsys.readouterr().err
        assert code == 2 and f"pid {holder.pid}" in err and "is locked by" in err and "Traceback" not in err
        assert len(err.strip().splitlines()) == 1
        assert file_sha256(city.store) == store_before
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    notices = []
    with store_lock(city.store, notices.append):
        pass
    assert len(notices) == 1 and f"pid {holder.pid}" in notices[0] and "no longer running" in notices[0]
    assert not Path(str(city.store) + ".lock").exists()


CHILD = """
import subprocess, time
from ldm.marts.build import _die_with_parent
child = subprocess.Popen(["sleep", "120"], preexec_fn=_die_with_parent)
print(child.pid, flush=True)
time.sleep(120)
"""


def test_killing_ldm_ends_the_dbt_child_it_started():
    """dbt runs as a child of ldm with the same guard: `kill -9` of ldm must not leave it writing."""
    parent = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{child}/stat").read_text().split(") ")[1][0]
        except FileNotFoundError:
            state = "gone"
        if state in ("gone", "Z", "X"):
            break
        time.sleep(0.1)
    assert state in ("gone", "Z", "X")


# 6. System errors in one line ---------------------------------------------------------------------


def test_a_full_disk_is_one_line_naming_the_file(city, capsys):
    code = main(
        [
            "audit",
            "report",
            "--store",
            str(city.store),
            "--out",
            "/dev/full",
            "--key-file",
            str(city.key_file),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "/dev/full" in err and "No space left on device" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize(
    ("free", "store", "extracts", "enough"),
    [(10 << 30, 1 << 30, 1 << 30, True), (1 << 30, 1 << 30, 0, False), (200 << 20, 0, 60 << 20, True),
     (100 << 20, 0, 60 << 20, False)],
)  # fmt: skip
def test_a_run_needs_room_for_a_copy_of_the_store_and_its_extracts(free, store, extracts, enough):
    assert enough_space(free, store, extracts) is enough


def test_the_key_never_reaches_the_audit_entries_or_the_store(city):
    secret = city.key_file.read_text().strip()
    keys = (secret, city.key.purpose_key("audit").hex(), city.key.purpose_key("linkage").hex())
    for (detail,) in query(city.store, "select detail from governance.audit_log"):
        assert json.loads(detail) and not any(key in detail for key in keys)
    content = city.store.read_bytes() + audit.anchor_path(city.store).read_bytes()
    assert not any(key.encode() in content for key in keys)


def test_a_store_from_before_keyed_audit_is_taken_over_only_by_the_deliberate_seal(city, capsys):
    """Its unkeyed chain is checked (against the head kept from its last run) and the store sealed as it is."""
    con = duckdb.connect(str(city.store))
    con.execute("drop table governance.audit_head")
    con.execute("alter table governance.audit_log drop column scheme")
    con.execute("update governance.alembic_version set version_num = '0002_persons_ethnic_category'")
    for table in ("death_causes", "deaths"):  # added by 0007
        con.execute(f"drop table main.{table}")
    con.close()
    for table in (t for t in FEED_TABLES.values() if t != "deaths"):
        con = duckdb.connect(str(city.store))
        con.execute(f"alter table main.{table} drop column record_digest")
        con.close()
    con = duckdb.connect(str(city.store))
    for column in ("rows_resent", "rows_revised", "rows_duplicate", "rows_withheld", "provider", "spec_name"):
        con.execute(f"alter table governance.batches drop column {column}")  # added by 0003 and 0004
    for table in ("projects", "releases"):  # added by 0005
        con.execute(f"drop table governance.{table}")
    con.execute("drop sequence governance.release_id_seq")
    con.execute("drop table linkage.person_evidence")  # added by 0008
    con.execute("drop sequence linkage.evidence_id_seq")
    con.execute("drop table governance.linkage_models")  # added by 0009
    con.execute("alter table governance.audit_log add column scheme varchar")
    con.close()
    rewrite_chain(city.store, unkeyed)
    con = duckdb.connect(str(city.store))
    con.execute("alter table governance.audit_log drop column scheme")
    kept = audit.head(con)
    con.close()
    audit.anchor_path(city.store).write_text(kept.entry_hash + "\n")
    assert city.verify() == 1  # data that no keyed entry records
    seal = ["audit", "seal", "--store", str(city.store), "--key-file", str(city.key_file)]
    assert main([*seal, "--expect-head", f"{kept.seq}:{'0' * 64}"]) == 2
    assert "not taken over" in capsys.readouterr().err
    assert main([*seal, "--expect-head", str(kept)]) == 0
    assert city.verify() == 0
    assert main(seal) == 2 and "keyed already" in capsys.readouterr().err
