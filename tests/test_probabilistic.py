"""The probabilistic step on real DuckDB and real Splink: what it links, what it refuses, the model
it saves and reuses, the audit of that model, the report's charts, and FEBRL4.

The hand-made spine is small (400 persons) so that each test takes seconds; records linked by NHS
number anchor its training, as at city scale.
"""

from __future__ import annotations

import csv
import datetime
import gzip
import json
import shutil
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from ldm.cli import main
from ldm.feeds.spec import builtin_specs
from ldm.identifiers.normalise import nysiis_code
from ldm.linkage import LinkageConfig, ProbabilisticConfig, link, link_tables, saved
from ldm.linkage.fellegi_sunter import (
    explain,
    level_values,
    level_weights,
    model_id,
    prior_weight,
    reusable,
    settings_dict,
)
from ldm.linkage.pairs import in_dialect
from ldm.linkage.tables import linkage_key, tokens
from ldm.load.loader import load_folder
from ldm.pseudonymise.batch import pseudonymise_folder
from ldm.pseudonymise.keys import MasterKey, init_key
from ldm.store import connect, upgrade

REPO = Path(__file__).resolve().parent.parent
FEBRL = Path(__file__).resolve().parent / "data" / "febrl4"
KEY = MasterKey(bytes(range(32)))
FORENAMES = [
    "ANNE",
    "BRUNO",
    "CARLA",
    "DANIEL",
    "EVA",
    "FRANK",
    "GRACE",
    "HENRY",
    "IRIS",
    "JACK",
    "KAREN",
    "LIAM",
    "MARIA",
    "NOAH",
    "OLIVIA",
    "PETER",
    "QUINN",
    "ROSA",
    "SAMUEL",
    "TESSA",
    "ULRIC",
    "VERA",
    "WALTER",
    "XENIA",
    "YUSUF",
    "ZOE",
    "ADAM",
    "BELLA",
    "CONNOR",
    "DIANA",
    "ELLIOT",
    "FIONA",
    "GEORGE",
    "HANNAH",
    "IVAN",
    "JULIA",
    "KEVIN",
    "LAURA",
    "MARTIN",
    "NORA",
]
SURNAMES = [
    "ALDER",
    "BIRCH",
    "CEDAR",
    "DOGWOOD",
    "ELM",
    "FIR",
    "GORSE",
    "HAZEL",
    "IVY",
    "JUNIPER",
    "KALE",
    "LARCH",
    "MAPLE",
    "NETTLE",
    "OAK",
    "PINE",
    "QUINCE",
    "ROWAN",
    "SPRUCE",
    "TEAK",
    "UPAS",
    "VETCH",
    "WILLOW",
    "YEW",
    "ASPEN",
    "BRACKEN",
    "CLOVER",
    "DAISY",
    "FERN",
    "HEATHER",
    "LINDEN",
    "MYRTLE",
    "POPLAR",
    "REED",
    "SORREL",
    "THISTLE",
    "VIOLET",
    "WHEAT",
    "BRIAR",
    "CROCUS",
]
LETTERS = "ABDEFGHJLNPQRSTUWXYZ"
PERSONS = 400


def nhs_number(stem: int) -> str:
    """A valid NHS number in the 999 test range (Modulus 11); stems whose check digit is 10 skipped."""
    while True:
        digits = f"999{stem:06d}"
        check = (11 - sum(int(d) * w for d, w in zip(digits, range(10, 1, -1), strict=True)) % 11) % 11
        if check != 10:
            return digits + str(check)
        stem += 100_000


def person(i: int) -> dict:
    return {
        "id": i,
        "nhs_number": nhs_number(i),
        "forename": FORENAMES[i % len(FORENAMES)],
        "surname": SURNAMES[(i * 7) % len(SURNAMES)],
        "date_of_birth": datetime.date(1930, 1, 1) + datetime.timedelta(days=i * 97 % 25_000),
        "sex": "FM"[i % 2],
        "postcode": f"LS{i % 25 + 1} {i % 9 + 1}{LETTERS[i % 20]}{LETTERS[i // 20 % 20]}",
    }


def table(rows: list[dict]) -> pa.Table:
    names = ("id", "nhs_number", "forename", "surname", "date_of_birth", "sex", "postcode")
    return pa.table({n: [None if r.get(n) is None else str(r[n]) for r in rows] for n in names})


def near(i: int) -> int:
    """The first person from i on whose birthday is before the 28th (a day later is the same month)."""
    while person(i)["date_of_birth"].day >= 28:
        i += 1
    return i


def misspelt(surname: str) -> str:
    """The surname with its third letter dropped (as a typist might)."""
    return surname[:2] + surname[3:]


def sounds_different(i: int) -> bool:
    surname = person(i)["surname"]
    return nysiis_code(surname) != nysiis_code(misspelt(surname))


def variant_person(i: int) -> int:
    """The first person from i whose misspelt surname no longer sounds the same (else the trace
    step on birth date and names would link them)."""
    while not sounds_different(i):
        i += 1
    return i


DAY, YEAR, VARIANT = near(11), near(40), variant_person(77)
TWIN_A, TWIN_B = 900, 901


def spine() -> pa.Table:
    rows = [person(i) for i in range(PERSONS)]
    # Two persons alike but for their forename: a record without one cannot choose between them.
    twin = person(500) | {"nhs_number": None}
    rows += [twin | {"id": TWIN_A, "forename": "AMY"}, twin | {"id": TWIN_B, "forename": "ANN"}]
    return table(rows)


def records() -> pa.Table:
    """Every person once with their NHS number (some with a fault: the anchors EM learns from), then
    records without one whose only fault is a near-miss birth date or a name variant."""
    rows = []
    for i in range(PERSONS):
        r = person(i) | {"id": f"anchor-{i}"}
        if i % 10 == 3 and r["date_of_birth"].day < 28:
            r["date_of_birth"] += datetime.timedelta(days=1)
        if i % 15 == 4:
            r["postcode"] = person(i + 1)["postcode"]
        if i % 20 == 5:
            r["surname"] = r["surname"][0] + r["surname"][2:]
        rows.append(r)
    day = person(DAY) | {"id": "day", "nhs_number": None}
    day["date_of_birth"] += datetime.timedelta(days=1)
    year = person(YEAR) | {"id": "year", "nhs_number": None}
    year["date_of_birth"] = year["date_of_birth"].replace(year=year["date_of_birth"].year - 1)
    variant = person(VARIANT) | {"id": "variant", "nhs_number": None, "postcode": "LS99 9ZZ"}
    variant["surname"] = misspelt(variant["surname"])  # a dropped letter, and moved
    twins = person(500) | {"id": "twins", "nhs_number": None, "forename": None}
    twins["date_of_birth"] += datetime.timedelta(days=1)
    nobody = {"id": "nobody", "forename": "ZEBEDEE", "surname": "QUARTZ", "sex": "M", "postcode": "LS98 1AA"}
    nobody["date_of_birth"] = datetime.date(2001, 2, 3)
    return table([*rows, day, year, variant, twins, nobody])


@pytest.fixture(scope="module")
def linked() -> dict:
    result = link_tables(spine(), records(), KEY)
    return {row["id"]: (row["person_id"], row["step"], row["weight"]) for row in result.to_pylist()}


def test_a_near_miss_birth_date_links(linked):
    assert linked["day"][:2] == (str(DAY), "probabilistic")  # a day out
    assert linked["year"][:2] == (str(YEAR), "probabilistic")  # a year out
    assert linked["day"][2] >= ProbabilisticConfig().threshold


def test_a_name_variant_links(linked):
    assert linked["variant"][:2] == (str(VARIANT), "probabilistic")


def test_two_equally_good_persons_give_ambiguous(linked):
    assert linked["twins"][:2] == (None, "ambiguous:probabilistic")


def test_nobody_on_the_spine_stays_unlinked_and_anchors_link_by_nhs_number(linked):
    assert linked["nobody"][:2] == (None, "unlinked")
    steps = {linked[f"anchor-{i}"][1] for i in range(PERSONS)}
    assert steps <= {"nhs_number_dob", "nhs_number"}


def run_link(spine_table: pa.Table, models: tuple = ()) -> tuple:
    """The engine on token tables, with saved models: (its model, {record id: (person, step)})."""
    key = linkage_key(KEY)
    rec = records()
    con = duckdb.connect()
    con.register("s", tokens(spine_table, key).append_column("person_id", spine_table["id"]))
    con.register("r", tokens(rec, key).append_column("record_key", rec["id"]))
    run = link(con, "s", "r", config=LinkageConfig(models=models))
    rows = con.execute(f"select record_key, person_id, step, algorithm_version from {run.table}").fetchall()
    con.close()
    return run.model, {r[0]: r[1:] for r in rows}


def test_a_model_is_saved_read_back_and_reused_until_the_spine_changes(tmp_path):
    model, first = run_link(spine())
    assert model is not None and model.trained
    assert first["day"][2] == f"ldm-linkage-1+fs:{model.model_id}"  # the link names its model
    store = tmp_path / "store.duckdb"
    upgrade(store)
    con = connect(store)
    con.execute(saved.insert_sql(), saved.row(model, 7, datetime.datetime(2025, 4, 1), "ldm-linkage-1"))
    back = [saved.from_row(row) for row in con.execute(saved.saved_sql()).fetchall()]
    stored = con.execute("select batch_id, parameters from governance.linkage_models").fetchone()
    con.close()
    assert stored[0] == 7 and {p["comparison"] for p in json.loads(stored[1])} >= {"date_of_birth", "surname"}
    assert [m.model_id for m in back] == [model.model_id] and not back[0].trained
    reused, again = run_link(spine(), tuple(back))
    assert reused is back[0]  # not trained again
    assert {k: v[:2] for k, v in again.items()} == {k: v[:2] for k, v in first.items()}
    # A spine 20% smaller is a material change: a new model is trained.
    smaller = spine().slice(80)
    assert not reusable(back[0], smaller.num_rows, back[0].compared, ProbabilisticConfig())
    retrained, _ = run_link(smaller, tuple(back))
    assert retrained.trained and retrained.model_id != model.model_id


def test_a_stored_weight_is_explained_by_one_level_per_comparison(linked):
    model, _ = run_link(spine())
    weight = linked["day"][2]
    [levels] = explain(model.settings, weight)
    assert dict((name, label) for name, label, _, _ in levels)["date_of_birth"] == "same year and month"
    assert prior_weight(model.settings) + sum(w for _, _, w, _ in levels) == pytest.approx(weight)
    assert all(len(c) >= 3 for c in level_weights(model.settings))


# The pipeline: the committed sample pseudonymised and loaded into a real store.


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    root = tmp_path_factory.mktemp("probabilistic_load")
    shutil.copytree(REPO / "sample_data" / "extracts", root / "extracts")
    key = init_key(root / "ldm.key")
    pseudonymise_folder(root / "extracts", root / "out", key, builtin_specs(), datetime.date(2025, 4, 1))
    store = root / "store.duckdb"
    upgrade(store)
    load_folder(root / "out", store, key)
    return root, store


def copy_of(store: Path, folder: Path) -> Path:
    copy = folder / "store.duckdb"
    shutil.copy(store, copy)
    shutil.copy(str(store) + ".audit-head", str(copy) + ".audit-head")
    return copy


def test_the_load_saves_each_model_in_its_batch_and_links_name_it(loaded):
    _, store = loaded
    con = connect(store, read_only=True)
    models = con.execute("select model_id, batch_id, compared from governance.linkage_models").fetchall()
    named = con.execute(
        """select distinct split_part(algorithm_version, 'fs:', 2) from linkage.record_links
           where step like '%probabilistic'"""
    ).fetchall()
    logged = con.execute(
        """select distinct split_part(algorithm_version, 'fs:', 2) from governance.linkage_log
           where step = 'probabilistic' and algorithm_version like '%+fs:%'"""
    ).fetchall()
    batches = {b for (b,) in con.execute("select batch_id from governance.batches").fetchall()}
    con.close()
    assert models and all(batch in batches for _, batch, _ in models)
    assert {m for (m,) in named} <= {m for m, _, _ in models}
    assert logged and {m for (m,) in logged} <= {m for m, _, _ in models}  # the log names them too
    assert len({c for _, _, c in models}) == len(models)  # one model per kind of record: trained once


def test_a_changed_model_is_caught_by_audit_verify(loaded, tmp_path, capsys):
    root, store = loaded
    copy = copy_of(store, tmp_path)
    verify = ["audit", "verify", "--store", str(copy), "--key-file", str(root / "ldm.key")]
    assert main(verify) == 0
    con = duckdb.connect(str(copy))
    con.execute("update governance.linkage_models set threshold = threshold - 3")
    con.close()
    capsys.readouterr()
    assert main(verify) == 1
    assert "governance.linkage_models" in capsys.readouterr().err


def test_the_report_shows_the_models_and_charts_without_a_token(loaded, tmp_path):
    _, store = loaded
    out = tmp_path / "report.md"
    assert main(["audit", "report", "--store", str(store), "--out", str(out)]) == 0
    text = out.read_text()
    assert "## Probabilistic linkage models" in text and "same year and month" in text
    charts = sorted(tmp_path.glob("linkage-model-*.png"))
    assert charts and all(f"]({c.name})" in text for c in charts)
    con = connect(store, read_only=True)
    held = {
        value
        for row in con.execute(
            "select * exclude (person_id, first_batch_id, last_batch_id) from linkage.person_keys"
        ).fetchall()
        for value in row
        if isinstance(value, str) and len(value) > 20
    }
    con.close()
    written = text + "".join(c.read_bytes().decode("latin-1") for c in charts)
    assert held and not any(token in written for token in held)


# FEBRL4: 5,000 records and a duplicate of each, with typing errors, through link_tables on tokens.


def febrl(name: str) -> pa.Table:
    with gzip.open(FEBRL / name, "rt", encoding="utf-8") as f:
        rows = [[v.strip() or None for v in row] for row in csv.reader(f)]
    head = [h.strip() for h in rows[0]]
    column = {name: [row[i] for row in rows[1:]] for i, name in enumerate(head)}
    return pa.table(
        {
            "id": column["rec_id"],
            "forename": column["given_name"],
            "surname": column["surname"],
            "date_of_birth": column["date_of_birth"],
            "postcode": column["postcode"],
            "local_id": column["soc_sec_id"],  # a person identifier the model does not compare
        }
    )


def test_febrl4_recall_and_precision():
    originals, duplicates = febrl("dataset4a.csv.gz"), febrl("dataset4b.csv.gz")
    result = link_tables(originals, duplicates, KEY)
    same = [
        person is not None and person.split("-")[1] == record.split("-")[1]
        for record, person in zip(result["id"].to_pylist(), result["person_id"].to_pylist(), strict=True)
    ]
    linked = sum(p is not None for p in result["person_id"].to_pylist())
    assert sum(same) / duplicates.num_rows >= 0.99  # recall
    assert sum(same) / linked >= 0.999  # precision
    assert "probabilistic" in set(result["step"].to_pylist())


def test_a_model_is_spelt_for_spark_without_changing_it():
    """Models are written, saved and identified in DuckDB's SQL; on Spark only their conditions'
    spelling changes (Spark reads a double-quoted name as a string, so a level would never match)."""
    levels = level_values(settings_dict(0.5))
    settings = settings_dict(
        0.001, [[(0.9 - 0.1 * i, 0.1 + 0.01 * i) for i in range(len(v))] for v in levels]
    )
    kept = json.dumps(settings, sort_keys=True)
    assert in_dialect(settings, "duckdb") is settings
    spark = in_dialect(settings, "spark")
    assert json.dumps(settings, sort_keys=True) == kept and model_id(settings) == model_id(json.loads(kept))
    conditions = [
        (level["sql_condition"], theirs["sql_condition"])
        for ours, them in zip(settings["comparisons"], spark["comparisons"], strict=True)
        for level, theirs in zip(ours["comparison_levels"], them["comparison_levels"], strict=True)
    ]
    rules = [
        (rule["blocking_rule"], theirs["blocking_rule"])
        for rule, theirs in zip(
            settings["blocking_rules_to_generate_predictions"],
            spark["blocking_rules_to_generate_predictions"],
            strict=True,
        )
    ]
    for duck, spelt in conditions + rules:
        if duck == "ELSE":
            assert spelt == "ELSE"
            continue
        assert '"' in duck and '"' not in spelt and "`" in spelt, spelt
        assert duck.replace('"', "`") == spelt, (duck, spelt)
    assert {rule["sql_dialect"] for rule in spark["blocking_rules_to_generate_predictions"]} == {"spark"}
    probabilities = [
        [(level.get("m_probability"), level.get("u_probability")) for level in c["comparison_levels"]]
        for c in settings["comparisons"]
    ]
    assert probabilities == [
        [(level.get("m_probability"), level.get("u_probability")) for level in c["comparison_levels"]]
        for c in spark["comparisons"]
    ]
