"""The pseudonymised zone on a real store: loading, linkage quality, opt-outs, atomicity, audit."""

from __future__ import annotations

import datetime
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from test_pseudonymise_extracts import raw_identifiers
from test_store import PRIMARY_KEYS

from ldm.cli import main
from ldm.errors import LdmError
from ldm.feeds.spec import builtin_specs
from ldm.files import file_sha256
from ldm.governance import audit, digests
from ldm.governance.seal import seal
from ldm.identifiers.tokens import token
from ldm.load.loader import FEED_TABLES, load_folder
from ldm.load.unique_keys import check_unique_keys
from ldm.pseudonymise.batch import pseudonymise_folder
from ldm.pseudonymise.keys import AUDIT, LINKAGE, init_key
from ldm.store import connect, downgrade, upgrade
from models.base import unindexed_keys
from models.feeds import FEEDS

REPO = Path(__file__).resolve().parent.parent
TODAY = datetime.date(2025, 4, 1)
TRUTH = REPO / "sample_data" / "ground_truth"
BATCHES = len(FEEDS)  # the sample has one extract per feed: one batch, and one audit entry, each
UNINDEXED_BEFORE, UNINDEXED = "0010_persons_stated_ethnic_category", "0011_unindexed_record_keys"


def fresh_store(path: Path) -> Path:
    upgrade(path)
    return path


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    root = tmp_path_factory.mktemp("load")
    shutil.copytree(REPO / "sample_data" / "extracts", root / "extracts")
    key = init_key(root / "ldm.key")
    pseudonymise_folder(root / "extracts", root / "out", key, builtin_specs(), TODAY)
    store = fresh_store(root / "store.duckdb")
    summary = load_folder(root / "out", store, key)
    return root, key, store, summary


def query(store: Path, sql: str, params=None) -> list[tuple]:
    con = connect(store, read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def test_every_accepted_row_is_loaded_or_withheld_by_opt_out(loaded):
    _, _, store, summary = loaded
    assert [b.feed for b in summary.loaded][:2] == ["opt_out", "gp_registrations"]
    for batch in summary.loaded:
        if batch.feed == "opt_out":
            continue
        assert batch.rows_accepted == (
            batch.rows_loaded + batch.withheld_by_opt_out + batch.rows_resent + batch.rows_duplicate
        )
        stored = query(
            store, f"select count(*) from main.{FEED_TABLES[batch.feed]} where batch_id = ?", [batch.batch_id]
        )
        assert stored[0][0] == batch.rows_loaded
    logged = query(store, "select sum(records_removed) from governance.opt_out_counts")[0][0]
    assert logged == sum(b.withheld_by_opt_out for b in summary.loaded if b.feed != "opt_out")


def test_links_in_the_store_are_right(loaded):
    """Each linked record's person is the person the ground truth says, via their registrations."""
    _, _, store, _ = loaded
    con = connect(store, read_only=True)
    con.execute(f"create temp table truth as select * from '{TRUTH}/records.parquet'")
    person_truth = con.execute(
        """create temp table person_truth as
           select r.person_id, any_value(t.person_key) as person_key, count(distinct t.person_key) as keys
           from main.registrations r join truth t on t.feed = 'gp_registrations' and t.record_id = r.record_id
           group by r.person_id"""
    )
    assert person_truth is not None
    assert con.execute("select max(keys) from person_truth").fetchall()[0][0] == 1
    for feed, table in FEED_TABLES.items():
        if feed == "gp_registrations":
            continue
        linked, right, total = con.execute(
            f"""select count(a.person_id), count(*) filter (where p.person_key = t.person_key), count(*)
                from main.{table} a join truth t on t.feed = '{feed}' and t.record_id = a.record_id
                left join person_truth p on p.person_id = a.person_id"""
        ).fetchall()[0]
        assert right / linked >= 0.999, feed
        assert linked / total >= 0.9, feed  # out-of-area patients are rightly left unlinked
    con.close()


def test_the_linkage_log_counts_what_reached_the_store(loaded):
    """Counted after opt-outs: a batch's first step takes exactly the rows it loaded, and each
    step's links are the rows of the table that step linked, so linked <= loaded everywhere."""
    _, _, store, summary = loaded
    for batch in summary.loaded:
        if batch.feed in ("opt_out", "gp_registrations"):
            continue
        log = query(
            store,
            "select step, records_in, linked, ambiguous from governance.linkage_log where batch_id = ? order by log_id",
            [batch.batch_id],
        )
        assert log[0][1] == batch.rows_loaded, batch.feed
        stored = dict(
            query(
                store,
                f"select link_step, count(*) from main.{FEED_TABLES[batch.feed]} where batch_id = ? group by 1",
                [batch.batch_id],
            )
        )
        for step, records_in, linked, ambiguous in log:
            assert linked == stored.get(step, 0), (batch.feed, step)
            assert ambiguous == stored.get(f"ambiguous:{step}", 0), (batch.feed, step)
            assert records_in <= batch.rows_loaded


def test_gp_events_link_through_an_nhs_number_another_feed_taught(loaded):
    """A person whose registration has no valid NHS number: a hospital or community record linked to
    them by date of birth, sex and postcode brings one, kept as their evidence, and their GP events
    (nothing but an NHS number) link to them through it, in a later batch."""
    _, _, store, summary = loaded
    batches = {b.feed: b.batch_id for b in summary.loaded}
    assert batches["gp_events"] > max(batches[f] for f in FEED_TABLES if f != "gp_events")
    taught = query(
        store,
        """select e.person_id, e.nhs_number_token, e.first_batch_id from linkage.person_evidence e
           join linkage.person_keys k using (person_id)
           where k.nhs_number_token is null and e.nhs_number_token is not null""",
    )
    assert taught
    people = ", ".join(str(person) for person, _, _ in taught)
    con = connect(store, read_only=True)
    con.execute(f"create temp table truth as select * from '{TRUTH}/records.parquet'")
    linked = con.execute(
        f"""select count(*), count(g.person_id), count(*) filter (where g.person_id in ({people}))
            from main.gp_events g join truth t on t.feed = 'gp_events' and t.record_id = g.record_id
            where t.person_key in (select t2.person_key from truth t2 join main.registrations r
                                   on t2.feed = 'gp_registrations' and t2.record_id = r.record_id
                                   where r.person_id in ({people}))"""
    ).fetchall()[0]
    con.close()
    events, events_linked, to_them = linked
    assert events > 0 and events_linked == events == to_them


def test_a_records_batch_seals_only_what_it_can_change(loaded):
    """An activity batch's audit state re-summarises no spine or person table (only registration
    batches rewrite them), takes only its own partition of the tables cut by first_batch_id (which
    only gain rows), and every partition it records is what a full summary of the store says."""
    _, key, store, summary = loaded
    gp_events = next(b.batch_id for b in summary.loaded if b.feed == "gp_events")
    con = connect(store, read_only=True)
    audit_key = key.purpose_key(AUDIT)
    state = audit.batch_state(con, audit_key, [gp_events], ())
    everything = audit.full_state(con, audit_key, digests.LOAD_TABLES)["tables"]
    registration = audit.batch_state(con, audit_key, [gp_events], ("main.persons", "linkage.person_keys"))
    con.close()
    assert "linkage.person_keys" not in state["tables"] and "main.persons" not in state["tables"]
    assert {"linkage.person_keys", "main.persons"} <= set(registration["replace"])
    assert set(state["tables"]["linkage.person_evidence"]) == {str(gp_events)}
    assert set(state["tables"]["main.gp_events"]) == {str(gp_events)}
    for table, parts in state["tables"].items():
        for part, value in parts.items():
            assert everything[table].get(part, [0, "0"]) == value, (table, part)


def test_no_identifier_or_key_in_the_store(loaded):
    root, key, store, _ = loaded
    identifiers = raw_identifiers(root / "extracts", dates_of_birth=False)
    secret = (root / "ldm.key").read_text().strip()
    con = connect(store, read_only=True)
    columns = con.execute(
        """select table_schema, table_name, column_name from information_schema.columns
           where data_type = 'VARCHAR' and table_catalog = current_database()"""
    ).fetchall()
    for schema, table, column in columns:
        values = {v for (v,) in con.execute(f'select distinct "{column}" from {schema}.{table}').fetchall()}
        assert not values & identifiers, (table, column)
        assert secret not in values and key.purpose_key(LINKAGE).hex() not in values
    con.close()
    assert secret.encode() not in store.read_bytes()


def test_a_batch_already_loaded_is_refused_and_replace_reloads_it(loaded, tmp_path):
    root, key, store, _ = loaded
    copy = tmp_path / "store.duckdb"
    shutil.copy(store, copy)
    shutil.copy(str(store) + ".audit-head", str(copy) + ".audit-head")
    again = load_folder(root / "out", copy, key)
    assert not again.loaded and len(again.already_loaded) == BATCHES
    persons_before = query(copy, "select count(*), sum(person_id) from main.persons")
    counts_before = query(copy, "select count(*) from main.gp_events")
    replaced = load_folder(root / "out", copy, key, replace=True)
    assert len(replaced.loaded) == BATCHES
    assert query(copy, "select count(*), sum(person_id) from main.persons") == persons_before  # stable ids
    assert query(copy, "select count(*) from main.gp_events") == counts_before
    assert query(copy, "select count(*) from governance.batches where status = 'superseded'")[0][0] == BATCHES
    assert main(["audit", "verify", "--store", str(copy), "--key-file", str(root / "ldm.key")]) == 0


def snapshot(store: Path) -> list:
    tables = ["main.persons", *(f"main.{t}" for t in FEED_TABLES.values()), "governance.batches",
              "governance.audit_log", "linkage.person_keys"]  # fmt: skip
    return [query(store, f"select count(*) from {table}")[0][0] for table in tables]


@pytest.mark.parametrize("manifest_updated", [False, True])
def test_a_failing_batch_leaves_the_store_as_it_was(loaded, tmp_path, manifest_updated):
    """A file changed after pseudonymisation, or one whose rows cannot all be staged, fails mid-batch."""
    root, key, store, _ = loaded
    copy = tmp_path / "store.duckdb"
    shutil.copy(store, copy)
    shutil.copy(str(store) + ".audit-head", str(copy) + ".audit-head")
    before = snapshot(copy)
    broken = tmp_path / "broken"
    shutil.copytree(root / "out" / "op_appointments", broken / "op_appointments")
    manifest = next((broken / "op_appointments").glob("*.manifest.json"))
    parquet = broken / "op_appointments" / manifest.name.replace(".manifest.json", ".parquet")
    con = duckdb.connect()
    con.execute(
        f"""copy (select * replace (case when row_number > 3000 then null else row_number end as row_number)
                  from '{parquet}') to '{parquet}.tmp' (format parquet)"""
    )
    os.replace(f"{parquet}.tmp", parquet)
    document = json.loads(manifest.read_text())
    document["input_sha256"] = "0" + document["input_sha256"][1:]  # a new batch as far as the store can tell
    if manifest_updated:
        document["output_sha256"] = file_sha256(parquet)
    manifest.write_text(json.dumps(document))
    with pytest.raises(LdmError, match="rows could be staged" if manifest_updated else "SHA-256 differs"):
        load_folder(broken, copy, key)
    assert snapshot(copy) == before
    assert main(["audit", "verify", "--store", str(copy), "--key-file", str(root / "ldm.key")]) == 0


@pytest.mark.parametrize("spread", [1, 10**9], ids=["bitmap", "grouped"])
def test_a_batch_that_holds_a_key_twice_is_refused_and_nothing_of_it_is_loaded(loaded, tmp_path, spread):
    """The large record tables do not index their key (models/base.py); the loader checks each batch's
    keys before it commits. A seam file whose second row carries the first row's number (its manifest
    made to match, so it passes every other check) is refused, naming the table, the batch and the
    key. Row numbers spread a billion apart are too wide a range for the check's bitmap: it groups by
    key instead, and finds the same duplicate."""
    root, key, _, _ = loaded
    broken = tmp_path / "broken"
    shutil.copytree(root / "out" / "apc_spells", broken / "apc_spells")
    manifest = next((broken / "apc_spells").glob("*.manifest.json"))
    parquet = broken / "apc_spells" / manifest.name.replace(".manifest.json", ".parquet")
    duckdb.execute(
        f"""copy (select * replace ((case when row_number = 2 then 1 else row_number end) * {spread} as row_number)
                  from '{parquet}') to '{parquet}.tmp' (format parquet)"""
    )
    os.replace(f"{parquet}.tmp", parquet)
    document = json.loads(manifest.read_text())
    document["output_sha256"] = file_sha256(parquet)
    manifest.write_text(json.dumps(document))
    store = fresh_store(tmp_path / "store.duckdb")  # its records would be re-sent ones in the loaded store
    with pytest.raises(
        LdmError,
        match=rf"^main\.apc_spells: batch 1 holds the key \(batch_id, row_number\) = \(1, {spread}\) 2 times; "
        "nothing of the batch was loaded",
    ):
        load_folder(broken, store, key)
    written = [
        f"(select count(*) from {table})"
        for table in ("governance.batches", "main.apc_spells", "linkage.record_links", "main.spell_diagnoses")
    ]
    assert query(store, f"select {', '.join(written)}") == [(0, 0, 0, 0)]


def test_a_key_held_twice_in_a_child_table_is_named_with_its_position(loaded, tmp_path):
    """Every table whose key is not indexed is checked, not only the feed's own: the batches of a real
    load pass, and a spell's diagnosis written twice at one position is named."""
    _, _, store, summary = loaded
    copy = tmp_path / "store.duckdb"
    shutil.copy(store, copy)
    con = connect(copy)
    try:
        for batch in summary.loaded:
            check_unique_keys(con, batch.batch_id)
        batch, row, position = con.execute(
            "select batch_id, row_number, position from main.spell_diagnoses order by all limit 1 offset 5"
        ).fetchall()[0]
        con.execute(
            "insert into main.spell_diagnoses select * from main.spell_diagnoses "
            "where batch_id = ? and row_number = ? and position = ?",
            [batch, row, position],
        )
        with pytest.raises(
            LdmError,
            match=rf"^main\.spell_diagnoses: batch {batch} holds the key \(batch_id, row_number, position\) = "
            rf"\({batch}, {row}, {position}\) 2 times",
        ):
            check_unique_keys(con, batch)
    finally:
        con.close()


def test_the_upgrade_that_drops_the_record_keys_is_sealed_and_keeps_every_row(loaded, tmp_path, capsys):
    """A loaded store with a keyed audit chain, at the revision before: `ldm db upgrade` rebuilds the
    large tables without their keys, records the upgrade in the chain, and `ldm audit verify` finds
    every row and the new catalog as the chain recorded them."""
    root, key, store, _ = loaded
    copy = tmp_path / "store.duckdb"
    shutil.copy(store, copy)
    shutil.copy(str(store) + ".audit-head", str(copy) + ".audit-head")
    assert downgrade(copy, UNINDEXED_BEFORE) == UNINDEXED_BEFORE
    seal(copy, key, "test", f"a store at {UNINDEXED_BEFORE}", {}, digests.EVERY_TABLE)  # as that ldm left it
    counts = "select " + ", ".join(f"(select count(*) from {table})" for table in unindexed_keys())
    rows = query(copy, counts)
    assert set(unindexed_keys()) <= {name for (name,) in query(copy, PRIMARY_KEYS)}
    key_file = str(root / "ldm.key")
    assert main(["db", "upgrade", "--store", str(copy), "--key-file", key_file]) == 0
    assert f"from {UNINDEXED_BEFORE} to {UNINDEXED}" in capsys.readouterr().out
    assert main(["audit", "verify", "--store", str(copy), "--key-file", key_file]) == 0
    [(action, detail)] = query(
        copy, "select action, detail from governance.audit_log order by seq desc limit 1"
    )
    recorded = json.loads(detail)
    assert (action, recorded["from"], recorded["to"]) == ("upgrade", UNINDEXED_BEFORE, UNINDEXED)
    assert "table main.gp_events" in recorded["state"]["tables"]["catalog"]  # its new definition, sealed
    assert query(copy, counts) == rows
    assert not set(unindexed_keys()) & {name for (name,) in query(copy, PRIMARY_KEYS)}


def test_a_killed_load_leaves_whole_batches_only(medium_sample, tmp_path):
    # A copy of the shared 20,000-person sample's extracts: pseudonymising writes quarantine beside them.
    extracts = shutil.copytree(medium_sample / "extracts", tmp_path / "extracts")
    key = init_key(tmp_path / "k.key")
    pseudonymise_folder(extracts, tmp_path / "out", key, builtin_specs(), TODAY)
    store = fresh_store(tmp_path / "store.duckdb")
    process = subprocess.Popen(
        [sys.executable, "-m", "ldm.cli", "load", "--pseudonymised", str(tmp_path / "out"), "--store", str(store),
         "--key-file", str(tmp_path / "k.key")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    time.sleep(4)
    process.send_signal(signal.SIGKILL)
    process.wait()
    con = connect(store)
    for batch_id, feed, rows_loaded, status in con.execute(
        "select batch_id, feed, rows_loaded, status from governance.batches"
    ).fetchall():
        assert status == "loaded"
        if feed in FEED_TABLES:
            table = FEED_TABLES[feed]
            stored = con.execute(
                f"select count(*) from main.{table} where batch_id = ?", [batch_id]
            ).fetchall()
            assert stored[0][0] == rows_loaded
    con.close()
    assert main(["audit", "verify", "--store", str(store), "--key-file", str(tmp_path / "k.key")]) == 0
    finished = load_folder(tmp_path / "out", store, key)  # the rest loads on the next run
    assert len(finished.loaded) + len(finished.already_loaded) == BATCHES


def test_a_second_writer_is_told_the_store_is_busy(loaded, tmp_path):
    root, _, store, _ = loaded
    copy = tmp_path / "store.duckdb"
    shutil.copy(store, copy)
    holder = duckdb.connect(str(copy))
    try:
        result = subprocess.run(
            [sys.executable, "-m", "ldm.cli", "load", "--pseudonymised", str(tmp_path), "--store", str(copy),
             "--key-file", str(root / "ldm.key")],
            capture_output=True, text=True,
        )  # fmt: skip
    finally:
        holder.close()
    assert result.returncode == 2
    assert "store is busy" in result.stderr and "Traceback" not in result.stderr


def test_a_person_who_opts_out_later_is_removed(loaded, tmp_path):
    root, key, store, _ = loaded
    copy = tmp_path / "store.duckdb"
    shutil.copy(store, copy)
    shutil.copy(str(store) + ".audit-head", str(copy) + ".audit-head")
    leaving = [n for (n,) in duckdb.sql(
        f"select nhs_number from '{TRUTH}/persons.parquet' where not opted_out and not out_of_area "
        "and died_on is null order by person_key limit 5"
    ).fetchall()]  # fmt: skip
    tokens = [token(n, "nhs_number", key.purpose_key(LINKAGE)) for n in leaving]
    people = [p for (p,) in query(
        copy, f"select person_id from linkage.person_keys where nhs_number_token in ({', '.join('?' * 5)})", tokens
    )]  # fmt: skip
    assert len(people) == 5
    marks = ", ".join("?" * 5)
    assert query(copy, f"select count(*) from main.gp_events where person_id in ({marks})", people)[0][0] > 0
    incoming = tmp_path / "extracts"
    incoming.mkdir()
    listed = (root / "extracts" / "national_data_opt_out.csv").read_text().splitlines()
    (incoming / "national_data_opt_out_2.csv").write_text("\n".join(listed + leaving) + "\n")
    pseudonymise_folder(incoming, root / "out_later", key, builtin_specs(), TODAY)
    summary = load_folder(root / "out_later", copy, key)
    assert summary.loaded[0].persons_removed == 5
    for table in ("persons", *FEED_TABLES.values()):
        assert (
            query(copy, f"select count(*) from main.{table} where person_id in ({marks})", people)[0][0] == 0
        )
    removed = query(
        copy, "select persons_removed, records_removed from governance.opt_out_counts order by run_id desc"
    )
    assert removed[0][0] == 5 and removed[0][1] > 0
    assert query(
        copy, f"select count(*) from linkage.person_evidence where person_id in ({marks})", people
    ) == [(0,)]


@pytest.mark.parametrize(
    ("tamper", "named"),
    [
        (
            "update governance.audit_log set detail = replace(detail, 'gp_events', 'gp_evil') where seq = 3",
            "entry 3",
        ),
        ("delete from governance.audit_log where seq = 4", "entry 5"),
        (
            f"""insert into governance.audit_log
                   (seq, logged_at, operator, action, subject, detail, previous_hash, entry_hash)
            select {BATCHES + 1}, logged_at, operator, action, subject, detail, entry_hash, entry_hash
            from governance.audit_log where seq = {BATCHES}""",
            f"entry {BATCHES + 1}",
        ),
        ("""update governance.audit_log set seq = seq + 1 where seq >= 5""", "entry 6"),
        (f"delete from governance.audit_log where seq = {BATCHES}", "anchor"),
    ],
)
def test_audit_verify_names_the_tampered_entry(loaded, tmp_path, capsys, tamper, named):
    root, _, store, _ = loaded
    copy = tmp_path / "store.duckdb"
    shutil.copy(store, copy)
    shutil.copy(str(store) + ".audit-head", str(copy) + ".audit-head")
    assert main(["audit", "verify", "--store", str(copy), "--key-file", str(root / "ldm.key")]) == 0
    con = duckdb.connect(str(copy))
    con.execute(tamper)
    con.close()
    capsys.readouterr()
    assert main(["audit", "verify", "--store", str(copy), "--key-file", str(root / "ldm.key")]) == 1
    assert named in capsys.readouterr().err


def test_audit_report_tells_an_ig_lead_what_happened(loaded, tmp_path):
    root, _, store, _ = loaded
    out = str(tmp_path / "report.md")
    assert (
        main(["audit", "report", "--store", str(store), "--out", out, "--key-file", str(root / "ldm.key")])
        == 0
    )
    text = (tmp_path / "report.md").read_text()
    for heading in (
        "What came in",
        "Quarantined and why",
        "Links by step",
        "Opt-outs applied",
        "IMD quintile",
    ):
        assert heading in text
    assert f"Audit chain: intact, {BATCHES} entries" in text


def nhs_number_with_check_digit(stem: int) -> str | None:
    total = sum(int(d) * w for d, w in zip(str(stem), range(10, 1, -1), strict=True))
    check = (11 - total % 11) % 11
    return None if check == 10 else f"{stem}{check}"


def test_next_month_updates_persons_and_adds_activity(loaded, tmp_path):
    """A second month's snapshot: a deregistration, a death, a newcomer and new events."""
    root, key, store, _ = loaded
    copy = tmp_path / "store.duckdb"
    shutil.copy(store, copy)
    shutil.copy(str(store) + ".audit-head", str(copy) + ".audit-head")
    con = duckdb.connect()
    registrations = REPO / "sample_data" / "extracts" / "gp_registrations.csv"
    opt_outs = REPO / "sample_data" / "extracts" / "national_data_opt_out.csv"
    people = con.execute(
        f"""select "NHS Number" from read_csv('{registrations}', all_varchar = true)
            where "Deregistration Date" is null and "Date of Death" is null and length("NHS Number") = 10
              and "NHS Number" not in (select NHS_NUMBER from read_csv('{opt_outs}', all_varchar = true))
            group by 1 having count(*) = 1 order by 1 limit 2"""
    ).fetchall()  # fmt: skip
    leaver, deceased = people[0][0], people[1][0]
    newcomer = next(n for stem in range(999_888_000, 999_889_000) if (n := nhs_number_with_check_digit(stem)))
    month = tmp_path / "month2"
    month.mkdir()
    con.execute(
        f"""copy (
              select * replace (
                case when "NHS Number" = '{leaver}' then '15/04/2025' else "Deregistration Date" end
                    as "Deregistration Date",
                case when "NHS Number" = '{deceased}' then '20/04/2025' else "Date of Death" end as "Date of Death")
              from read_csv('{registrations}', all_varchar = true)
              union all
              select '999999', '{newcomer}', 'NEW', 'PERSON', '01/02/1990', 'F', 'LS6 3LB', 'B86086', '10/04/2025',
                     null, null, 'A'
            ) to '{month}/gp_registrations_202504.csv' (header)"""
    )  # fmt: skip
    (month / "gp_events_202504.txt").write_text(
        "EventId|PatientNHSNumber|PracticeCode|EventDate|ConceptId|Value|Unit\n"
        f"900001|{newcomer}|B86086|2025-04-12|271649006|128|mm[Hg]\n"
        f"900002|{newcomer}|B86086|2025-04-12|44054006||\n"
        f"900003|{leaver}|B86086|2025-04-02|27113001|70.5|kg\n"
    )
    before = dict(query(copy, "select person_id, registered from main.persons"))
    result = pseudonymise_folder(month, root / "out_month2", key, builtin_specs(), datetime.date(2025, 5, 1))
    assert not result.failed, result.failed
    shutil.copytree(root / "out", tmp_path / "all", dirs_exist_ok=True)
    shutil.copytree(root / "out_month2", tmp_path / "all", dirs_exist_ok=True)
    summary = load_folder(tmp_path / "all", copy, key)
    assert len(summary.already_loaded) == BATCHES and [b.feed for b in summary.loaded] == [
        "gp_registrations",
        "gp_events",
    ]
    after = dict(query(copy, "select person_id, registered from main.persons"))
    assert set(before) < set(after) and len(after) == len(before) + 1  # ids kept, one newcomer
    ids = {
        n: query(copy, "select person_id from linkage.person_keys where nhs_number_token = ?",
                 [token(n, "nhs_number", key.purpose_key(LINKAGE))])[0][0]
        for n in (leaver, deceased, newcomer)
    }  # fmt: skip
    assert before[ids[leaver]] and not after[ids[leaver]]
    assert not after[ids[deceased]]
    died = query(copy, "select date_of_death from main.persons where person_id = ?", [ids[deceased]])
    assert died[0][0] == datetime.date(2025, 4, 1)  # died on 20 April: the store keeps the month
    assert after[ids[newcomer]] and ids[newcomer] not in before
    events = query(
        copy, "select person_id, count(*) from main.gp_events where record_id >= 900001 group by 1"
    )
    assert dict(events) == {ids[newcomer]: 2, ids[leaver]: 1}
    assert main(["audit", "verify", "--store", str(copy), "--key-file", str(root / "ldm.key")]) == 0
