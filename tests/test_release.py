"""`ldm release`, on copies of a real store built by `ldm demo` and the real files a release writes.

The checks read the released Parquet and DuckDB files back as a project would, and recompute what
they check (pseudonyms, group sizes, opted-out persons) from the store independently of the code
under test.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import re
from pathlib import Path

import duckdb
import pytest
import yaml
from conftest import query, store_copy

from ldm.cli import main
from ldm.errors import LdmError
from ldm.governance import audit, digests
from ldm.governance.seal import seal
from ldm.identifiers.tokens import token
from ldm.pseudonymise.keys import AUDIT, load_key, release_purpose
from ldm.release import kanon
from ldm.release.projects import register
from ldm.release.release import check, release

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_PROJECT = REPO / "examples" / "release" / "project.yaml"
EXAMPLE_SPEC = REPO / "examples" / "release" / "ltc_admissions.yaml"
HEX_ID = re.compile(r"\b[0-9a-f]{32,}\b")
RECORD_KEYS = {"batch_id", "row_number", "record_digest", "first_batch_id", "last_batch_id"}

# Persons, their spells and the spells' diagnoses; generalised until the smallest group reaches 10.
SPEC = {
    "cohort": {"from": "persons", "where": "registered"},
    "generalise": [
        {"year_of_birth": {"band": 5}},
        {"year_of_birth": {"band": 10, "below": 1945, "above": 2015}},
    ],
    "tables": {
        "persons": {"columns": ["year_of_birth", "sex"]},
        "apc_spells": {
            "columns": ["record_id", "admission_method", "admission_date", "discharge_date"],
            "coarsen": {"discharge_date": "year"},
        },
        "spell_diagnoses": {"columns": ["record_id", "position", "icd10_code"]},
        "gp_events": {"columns": ["record_id", "snomed_code", "event_date"]},
    },
}


def write_yaml(path: Path, content: dict) -> Path:
    path.write_text(yaml.safe_dump(content, sort_keys=False))
    return path


def project_file(folder: Path, name: str, expires: str = "2099-12-31", approved: str = "2026-01-01") -> Path:
    return write_yaml(
        folder / f"{name}.project.yaml",
        {
            "project": name,
            "purpose": f"Testing releases ({name})",
            "approver": "Information Governance Steering Group",
            "legal_basis": "UK GDPR Article 6(1)(e) and 9(2)(h)",
            "approved_on": approved,
            "expires_on": expires,
        },
    )


def spec_file(folder: Path, project: str, **changes) -> Path:
    return write_yaml(
        folder / f"{project}-{len(list(folder.iterdir()))}.spec.yaml", {"project": project, **SPEC, **changes}
    )


@pytest.fixture(scope="module")
def key_file(sample_marts_store) -> Path:
    return sample_marts_store.parent.parent / "demo.key"


@pytest.fixture(scope="module")
def key(key_file):
    return load_key(key_file)


@pytest.fixture(scope="module")
def store(sample_marts_store, tmp_path_factory, key) -> Path:
    """A copy of the demo store with two projects registered (A and B) and one expired project."""
    folder = tmp_path_factory.mktemp("release_store")
    copy = store_copy(sample_marts_store, folder)
    for name, expires in (
        ("project-a", "2099-12-31"),
        ("project-b", "2099-12-31"),
        ("old-study", "2020-01-01"),
    ):
        register(copy, project_file(folder, name, expires, approved="2019-01-01"), key)
    return copy


@pytest.fixture(scope="module")
def specs(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("specs")


@pytest.fixture(scope="module")
def releases(store, specs, key, tmp_path_factory) -> dict[str, Path]:
    """Three releases of the same store and spec: to A, to B, then to A again."""
    out = tmp_path_factory.mktemp("releases")
    made = {}
    for label, project in (("a1", "project-a"), ("b", "project-b"), ("a2", "project-a")):
        made[label] = release(store, spec_file(specs, project), out / label, key).folder
    return made


def table(folder: Path, name: str, columns: str = "*", then: str = "") -> list[tuple]:
    """Rows of a released Parquet file, read as a project would."""
    con = duckdb.connect()
    try:
        return con.execute(
            f"select {columns} from read_parquet('{folder / (name + '.parquet')}') {then}"
        ).fetchall()
    finally:
        con.close()


def ids(folder: Path, name: str, column: str) -> set[str]:
    return {value for (value,) in table(folder, name, column)}


def verify(store: Path, key) -> audit.Verification:
    con = duckdb.connect(str(store), read_only=True)
    try:
        return audit.verify(con, key.purpose_key(AUDIT), audit.read_anchor(store))
    finally:
        con.close()


def releases_in(store: Path) -> list[tuple]:
    return query(store, "select release_id, project, status, k_smallest from governance.releases order by 1")


# Two projects' releases share nothing they could join on; the same project's repeat the same ids.


def test_two_projects_share_no_person_id_and_no_record_id(releases) -> None:
    a, b = releases["a1"], releases["b"]
    for name, column in (
        ("persons", "person_id"),
        ("apc_spells", "person_id"),
        ("apc_spells", "record_id"),
        ("spell_diagnoses", "record_id"),
        ("gp_events", "record_id"),
    ):
        in_a, in_b = ids(a, name, column), ids(b, name, column)
        assert len(in_a) == len(in_b) > 100, (name, column)  # the same persons and records ...
        assert not in_a & in_b, (name, column)  # ... under ids that share nothing


def test_a_third_release_to_the_first_project_repeats_its_ids(releases) -> None:
    first, third = releases["a1"], releases["a2"]
    for name in ("persons", "apc_spells", "spell_diagnoses", "gp_events"):
        assert table(first, name) == table(third, name), name  # same rows, same ids, same order


def test_person_ids_are_the_project_keyed_pseudonyms_of_the_store_ids_and_no_store_value(
    releases, store, key
) -> None:
    """The documented recipe reproduces them; neither a store id nor a linkage token is among them."""
    persons = [pid for (pid,) in query(store, "select person_id from persons where registered order by 1")]
    for label, project in (("a1", "project-a"), ("b", "project-b")):
        project_key = key.purpose_key(release_purpose(project))
        expected = {token(str(pid), "person_id", project_key) for pid in persons}
        assert ids(releases[label], "persons", "person_id") == expected
    released = ids(releases["a1"], "persons", "person_id") | ids(releases["a1"], "apc_spells", "record_id")
    tokens = {t for (t,) in query(store, "select nhs_number_token from linkage.person_keys")}
    store_ids = {str(i) for (i,) in query(store, "select person_id from persons")}
    store_ids |= {str(i) for (i,) in query(store, "select record_id from apc_spells")}
    assert not released & tokens and not released & store_ids


def test_record_keys_never_leave_and_spell_children_join_their_spell(releases) -> None:
    folder = releases["a1"]
    con = duckdb.connect(str(folder / "release.duckdb"), read_only=True)
    columns = {row[0] for row in con.execute("select column_name from duckdb_columns()").fetchall()}
    orphans = con.execute(
        "select count(*) from spell_diagnoses d anti join apc_spells s using (record_id, person_id)"
    ).fetchall()[0][0]
    con.close()
    assert not columns & RECORD_KEYS
    assert orphans == 0
    assert table(folder, "gp_events", "count(*) filter (where day(event_date) <> 1)") == [(0,)]  # months only
    assert table(folder, "apc_spells", "count(*) filter (where month(discharge_date) <> 1)") == [(0,)]


def test_the_manifest_checksums_every_file_and_the_duckdb_file_matches_the_parquet(releases) -> None:
    folder = releases["b"]
    manifest = json.loads((folder / "manifest.json").read_text())
    listed = {entry["file"] for entry in manifest["files"]}
    assert listed | {"manifest.json"} == {path.name for path in folder.iterdir()}
    for entry in manifest["files"]:
        assert hashlib.sha256((folder / entry["file"]).read_bytes()).hexdigest() == entry["sha256"]
    con = duckdb.connect(str(folder / "release.duckdb"), read_only=True)
    for entry in (e for e in manifest["files"] if e["format"] == "parquet"):
        assert con.execute(f"select * from {entry['table']} order by all").fetchall() == table(
            folder, entry["table"], then="order by all"
        )
        assert con.execute(f"select count(*) from {entry['table']}").fetchall() == [(entry["rows"],)]
    con.close()
    assert manifest["project"]["project"] == "project-b" and manifest["release"]["release_number"] == 1
    assert not HEX_ID.findall(
        json.dumps({k: v for k, v in manifest.items() if k not in ("files", "release")})
    )


# The k check: on what is written, refused below the threshold, naming attributes, not members.


def test_generalisation_stops_at_the_first_step_that_reaches_the_threshold(releases) -> None:
    manifest = json.loads((releases["a1"] / "manifest.json").read_text())
    ladder = manifest["k_anonymity"]["generalised"]
    assert [step["steps_applied"] for step in ladder] == [0, 1, 2]
    assert ladder[0]["k"] < 10 <= ladder[-1]["k"] == manifest["k_anonymity"]["k"]
    bands = {band for (band,) in table(releases["a1"], "persons", "distinct year_of_birth")}
    assert {"before 1945", "1945-1954", "2015 or later"} <= bands
    assert all(re.fullmatch(r"before 1945|\d{4}-\d{4}|2015 or later", band) for band in bands if band)


def test_smallest_group_is_recomputed_from_the_written_file(releases) -> None:
    manifest = json.loads((releases["a1"] / "manifest.json").read_text())
    con = duckdb.connect()
    path = releases["a1"] / "persons.parquet"
    k = con.execute(
        f"select min(n) from (select count(distinct person_id) as n from read_parquet('{path}') "
        "group by year_of_birth, sex)"
    ).fetchall()[0][0]
    assert k == manifest["k_anonymity"]["k"] >= 10


def test_k_below_the_threshold_is_refused_naming_the_attributes_not_the_members(
    store, specs, key, tmp_path
) -> None:
    spec = spec_file(
        specs,
        "project-a",
        generalise=[],
        tables={"persons": {"columns": ["year_of_birth", "sex", "msoa11_code", "ethnic_category"]}},
    )
    before = releases_in(store)
    with pytest.raises(LdmError) as refused:
        release(store, spec, tmp_path / "out", key)
    message = str(refused.value)
    found = re.search(
        r"k = (\d+) is below the threshold of 10: the smallest group, in persons, is \1 persons? with "
        r"year_of_birth=(\d+), sex=(\w+), msoa11_code=(\w+), ethnic_category=(\w+);",
        message,
    )
    assert found, message
    size, year, sex, msoa, ethnic = found.groups()
    # The group is real, of that size, and the message names none of its members.
    members = query(
        store,
        "select person_id from persons where registered and year_of_birth = ? and sex = ? and msoa11_code = ? "
        "and ethnic_category = ?",
        int(year), sex, msoa, ethnic,
    )  # fmt: skip
    assert len(members) == int(size) < 10
    assert not HEX_ID.findall(message)
    assert not (tmp_path / "out").exists() and not (tmp_path / ".out.partial").exists()
    (release_id, project, status, k), *_ = releases_in(store)[len(before) :]
    assert (project, status, k) == ("project-a", "refused", int(size))
    recorded = query(
        store, "select smallest_group, reason from governance.releases where release_id = ?", release_id
    )
    group, reason = recorded[0]
    assert json.loads(group)["attributes"] == {
        "year_of_birth": year, "sex": sex, "msoa11_code": msoa, "ethnic_category": ethnic
    }  # fmt: skip
    assert reason in message
    assert not verify(store, key).problems


@pytest.mark.parametrize("threshold, written", [(10, False), (9, True)])
def test_the_threshold_is_the_line(store, specs, key, tmp_path, threshold: int, written: bool) -> None:
    """On the demo store this spec's smallest group is 9 persons: refused at 10, written at 9."""
    spec = spec_file(
        specs,
        "project-a",
        k_threshold=threshold,
        generalise=[{"year_of_birth": {"band": 10, "below": 1940, "above": 2015}}],
        tables={"persons": {"columns": ["year_of_birth", "sex"]}},
    )
    plan = check(store, spec)
    assert plan.k == 9
    if written:
        assert release(store, spec, tmp_path / "out", key).plan.k == 9
    else:
        with pytest.raises(LdmError, match="k = 9 is below the threshold of 10 after all 1 generalisation"):
            release(store, spec, tmp_path / "out", key)
    assert (tmp_path / "out").exists() == written


# Projects: only a registered, current project gets anything; nothing is written before its record.


@pytest.mark.parametrize(
    "project, refusal",
    [
        ("no-such-project", "project no-such-project is not registered"),
        ("old-study", "project old-study expired on 2020-01-01"),
    ],
)
def test_an_unknown_or_expired_project_is_refused_and_nothing_recorded(
    store, specs, key, tmp_path, project: str, refusal: str
) -> None:
    before, head = releases_in(store), query(store, "select max(seq) from governance.audit_log")
    with pytest.raises(LdmError, match=refusal):
        release(store, spec_file(specs, project), tmp_path / "out", key)
    assert releases_in(store) == before
    assert query(store, "select max(seq) from governance.audit_log") == head
    assert not (tmp_path / "out").exists()


def test_a_project_not_yet_approved_is_refused(store, specs, key, tmp_path) -> None:
    with pytest.raises(LdmError, match="is approved from 2019-01-01 only"):
        release(
            store, spec_file(specs, "project-a"), tmp_path / "out", key, today=datetime.date(2018, 12, 31)
        )


def test_the_release_is_recorded_and_audited_before_anything_is_written(store, specs, key, tmp_path) -> None:
    out = tmp_path / "out"
    seen = []

    def at_each_step(message: str) -> None:
        if not seen:  # the first thing said: the release is recorded, nothing is built yet
            status = query(store, "select status from governance.releases order by release_id desc limit 1")
            last = query(store, "select action from governance.audit_log order by seq desc limit 1")
            files = [p.name for p in tmp_path.iterdir()]
            seen.append((status, last, files))

    release(store, spec_file(specs, "project-b"), out, key, progress=at_each_step)
    assert seen == [([("recorded",)], [("release",)], [])]
    assert releases_in(store)[-1][2] == "written"
    actions = query(store, "select action from governance.audit_log order by seq desc limit 2")
    assert actions == [("release_written",), ("release",)]


def test_a_failure_while_writing_leaves_no_files_and_is_recorded(
    store, specs, key, tmp_path, monkeypatch
) -> None:
    import ldm.release.release as making

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device", str(tmp_path / ".out.partial"))

    monkeypatch.setattr(making, "_duckdb_file", broken)
    with pytest.raises(OSError, match="No space left"):
        release(store, spec_file(specs, "project-a"), tmp_path / "out", key)
    assert list(tmp_path.iterdir()) == []
    status, reason = query(
        store, "select status, reason from governance.releases order by release_id desc limit 1"
    )[0]
    assert status == "failed" and "No space left" in reason
    assert not verify(store, key).problems


def test_audit_verify_is_intact_and_the_report_lists_every_release(
    releases, store, key_file, capsys, monkeypatch
) -> None:
    monkeypatch.setenv("LDM_KEY_FILE", str(key_file))
    assert main(["audit", "verify", "--store", str(store)]) == 0
    assert "audit intact" in capsys.readouterr().out
    assert main(["audit", "report", "--store", str(store)]) == 0
    report = capsys.readouterr().out
    section = report.split("## Releases to analysis projects", 1)[1]
    for release_id, project, status, _ in releases_in(store):
        assert re.search(rf"^\| {release_id} \| {project} \| \d+ \| {status} \|", section, re.MULTILINE)
    assert "## Analysis projects" in report and "old-study" in report


# Opted-out persons.


def test_opted_out_persons_are_withheld_by_the_store_and_never_released(releases, store, key) -> None:
    opted_out = query(
        store,
        "select k.person_id from linkage.person_keys k join linkage.opt_outs o using (nhs_number_token)",
    )
    assert len(opted_out) > 10  # the demo sample has opt-outs to withhold
    held = query(store, "select count(*) from persons where person_id in (select k.person_id from "
                        "linkage.person_keys k join linkage.opt_outs o using (nhs_number_token))")  # fmt: skip
    assert held == [(0,)]
    project_key = key.purpose_key(release_purpose("project-a"))
    theirs = {token(str(pid), "person_id", project_key) for (pid,) in opted_out}
    for name in ("persons", "apc_spells", "spell_diagnoses", "gp_events"):
        assert not ids(releases["a1"], name, "person_id") & theirs


def test_a_person_who_opts_out_is_left_out_even_where_the_store_still_holds_their_rows(
    sample_marts_store, key, tmp_path
) -> None:
    """An opt-out recorded but not yet applied to the tables (sealed, so the audit holds): the cohort
    itself leaves the person out."""
    store = store_copy(sample_marts_store, tmp_path)
    (person, token_), *_ = query(
        store,
        "select k.person_id, k.nhs_number_token from linkage.person_keys k join persons p using (person_id) "
        "where p.registered and k.person_id in (select person_id from apc_spells) and k.nhs_number_token is not null "
        "order by 1",
    )
    con = duckdb.connect(str(store))
    con.execute("insert into linkage.opt_outs (nhs_number_token) values (?)", [token_])
    con.close()
    seal(store, key, "test", "opt-out recorded, not yet applied", {}, digests.EVERY_TABLE)
    register(store, project_file(tmp_path, "project-a"), key)
    result = release(store, spec_file(tmp_path, "project-a"), tmp_path / "out", key)
    theirs = token(str(person), "person_id", key.purpose_key(release_purpose("project-a")))
    for name in ("persons", "apc_spells", "gp_events"):
        assert theirs not in ids(result.folder, name, "person_id")
    assert result.plan.opted_out_left_out == 1
    assert not verify(store, key).problems


# Specs that would release the wrong thing stop before anything is recorded.


@pytest.mark.parametrize(
    "changes, fault",
    [
        ({"tables": {"apc_spells": {"columns": ["batch_id"]}}}, "batch_id identify records"),
        ({"tables": {"apc_spells": {"columns": ["record_digest"]}}}, "record_digest identify records"),
        ({"tables": {"linkage.person_keys": {"columns": ["sex"]}}}, "never linkage or governance"),
        ({"tables": {"spell_diagnoses": {"columns": ["icd10_code"]}}}, "release apc_spells with record_id"),
        ({"tables": {"persons": {"columns": ["shoe_size"]}}}, "has no column"),
        ({"tables": {"persons": {"columns": ["sex"], "coarsen": {"sex": "month"}}}}, "not a date"),
        ({"tables": {"persons": {"columns": ["date_of_death"], "coarsen": {"date_of_death": "fortnight"}}}},
         "coarsen to 'fortnight'"),
        ({"k_threshold": 1}, "k_threshold must be a whole number of at least 2"),
        ({"cohort": {"where": "registered; drop table persons"}}, "one SQL condition"),
        ({"cohort": {"where": "no_such_column"}}, "cohort: the condition"),
        ({"generalise": [{"sex": {"band": 5}}]}, "bands need whole numbers"),
        ({"generalise": [{"postcode": "drop"}]}, "no table releases it"),
        ({"quasi_identifiers": ["admission_time"]}, "no table releases admission_time"),
    ],
)  # fmt: skip
def test_a_spec_that_would_release_the_wrong_thing_is_refused(
    store, specs, changes: dict, fault: str
) -> None:
    before = releases_in(store)
    with pytest.raises(LdmError, match=re.escape(fault)):
        check(store, spec_file(specs, "project-a", **changes))
    assert releases_in(store) == before


def test_the_example_spec_passes_on_the_demo_store(store, key, tmp_path) -> None:
    register(store, EXAMPLE_PROJECT, key)
    plan = check(store, EXAMPLE_SPEC)
    assert plan.passes and plan.k >= 10 and plan.persons > 1000
    assert plan.checks[0].group.size < 10  # it needed its generalisation steps


# Registering projects.


def test_a_registered_project_changes_only_deliberately(store, key, tmp_path, capsys, key_file) -> None:
    path = project_file(tmp_path, "project-a", approved="2019-01-01")
    assert register(store, path, key)[1] == "unchanged"
    renewed = project_file(tmp_path, "project-a", expires="2100-06-30", approved="2019-01-01")
    with pytest.raises(LdmError, match="registered already with another expires_on; pass --amend"):
        register(store, renewed, key)
    argv = ["release", "project", "add", "--store", str(store), "--project-file", str(renewed)]
    assert main([*argv, "--amend", "--key-file", str(key_file)]) == 0
    assert "project project-a: amended (expires 2100-06-30)" in capsys.readouterr().out
    (detail,) = query(store, "select detail from governance.audit_log order by seq desc limit 1")[0]
    assert json.loads(detail)["changed"] == {"expires_on": ["2099-12-31", "2100-06-30"]}
    assert not verify(store, key).problems


@pytest.mark.parametrize(
    "content, fault",
    [
        ({"project": "a b"}, "unknown key purpose"),
        ({"approver": ""}, "approver is missing or empty"),
        ({"expires_on": "next year"}, "is not a date"),
        ({"nickname": "x"}, "unknown key(s) nickname"),
    ],
)
def test_a_malformed_project_file_is_refused(store, key, tmp_path, content: dict, fault: str) -> None:
    path = project_file(tmp_path, "project-c")
    write_yaml(path, yaml.safe_load(path.read_text()) | content)
    with pytest.raises(LdmError, match=re.escape(fault)):
        register(store, path, key)


def test_the_cli_refuses_in_one_line_with_exit_status_2(store, specs, key_file, tmp_path, capsys) -> None:
    spec = spec_file(specs, "project-a", generalise=[])
    argv = ["release", "write", "--store", str(store), "--spec", str(spec), "--out", str(tmp_path / "out")]
    assert main([*argv, "--key-file", str(key_file)]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("ldm release: error: release ") and "refused: k = " in error
    assert main(["release", "check", "--store", str(store), "--spec", str(spec)]) == 1


# The rule itself, on small tables.


@pytest.mark.parametrize(
    "rows, expected",
    [
        # (person, year_of_birth, sex): every person alone in their group
        ([(1, 1950, "F"), (2, 1951, "F"), (3, 1950, "M")], (1, ("1950", "F"))),
        # groups of 3 and 2: the smallest named, attributes only
        (
            [(1, 1950, "F"), (2, 1950, "F"), (3, 1950, "F"), (4, 1960, "M"), (5, 1960, "M")],
            (2, ("1960", "M")),
        ),
        # one person's several records count once
        (
            [(1, 1950, "F"), (1, 1950, "F"), (1, 1950, "F"), (2, 1960, "M"), (3, 1960, "M")],
            (1, ("1950", "F")),
        ),
        # a missing value is a group of its own
        ([(1, 1950, None), (2, 1950, "F"), (3, 1950, "F")], (1, ("1950", None))),
        # ties: the first in value order
        ([(1, 1960, "M"), (2, 1950, "F")], (1, ("1950", "F"))),
    ],
)
def test_smallest_group(rows: list[tuple], expected: tuple) -> None:
    con = duckdb.connect()
    con.execute("create table t (person integer, year_of_birth integer, sex varchar)")
    con.executemany("insert into t values (?, ?, ?)", rows)
    group = kanon.smallest_group(con, "t", ["year_of_birth", "sex"], "person", "t")
    assert (group.size, tuple(value for _, value in group.attributes)) == expected


@pytest.mark.parametrize(
    "sizes, threshold, passes",
    [([12, 10], 10, True), ([12, 9], 10, False), ([], 10, True), ([3], 3, True), ([1], 2, False)],
)
def test_passes(sizes: list[int], threshold: int, passes: bool) -> None:
    groups = [kanon.Group(size, f"t{i}", (("sex", "F"),)) for i, size in enumerate(sizes)]
    smallest = kanon.smallest([*groups, None])
    assert kanon.passes(smallest, threshold) is passes
    if not passes:
        message = kanon.refusal(smallest, threshold, 0)
        assert f"k = {min(sizes)} is below the threshold of {threshold}" in message and "sex=F" in message
