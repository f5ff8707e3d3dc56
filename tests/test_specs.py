"""Feed specs: every option a provider needs, and every mistake `ldm specs check` names (real DuckDB reads)."""

from __future__ import annotations

import datetime
import shutil
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
import yaml

from ldm.cli import main
from ldm.errors import LdmError
from ldm.feeds.codes import clean_code
from ldm.feeds.read import StructuralError, check_structure, load_raw
from ldm.feeds.spec import (
    SPEC_DIR,
    builtin_specs,
    check_specs,
    expand_sources,
    load_specs,
    parse_spec,
    patterns_overlap,
    read_spec,
)
from ldm.files import file_sha256
from ldm.load.loader import load_folder
from ldm.pseudonymise.batch import match_extracts, pseudonymise_folder
from ldm.pseudonymise.extract import Manifest
from ldm.pseudonymise.keys import init_key
from ldm.store import upgrade

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples" / "specs"


def gp_spec(**changes) -> dict:
    """A gp_events spec document; `changes` replace or (as `columns`) extend its parts."""
    document = {
        "feed": "gp_events",
        "provider": "tiny",
        "spec_version": 1,
        "file_pattern": "tiny_events*.txt",
        "format": {"delimiter": "|", "encoding": "utf-8"},
        "event_date": "event_date",
        "columns": {
            "record_id": {"source": "Id", "type": "integer", "required": True},
            "nhs_number": {"source": "NHS", "type": "nhs_number"},
            "event_date": {"source": "When", "type": "date", "format": "%Y-%m-%d", "required": True},
            "snomed_code": {"source": "Code", "type": "code", "code_system": "snomed_ct"},
            "unit": {"source": "Unit", "type": "text"},
        },
    }
    columns = changes.pop("columns", {})
    document.update(changes)
    document["columns"] = {**document["columns"], **columns}
    return {key: value for key, value in document.items() if value is not None}


def problems_of(document: dict) -> list[str]:
    return parse_spec(Path("tiny.yaml"), document)[1]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("DIAG_{01..03}", ["DIAG_01", "DIAG_02", "DIAG_03"]),
        ("OPERTN_{1..3}", ["OPERTN_1", "OPERTN_2", "OPERTN_3"]),
        (["PRIMARY", "SECOND_{1..2}"], ["PRIMARY", "SECOND_1", "SECOND_2"]),
        ("D{09..11}X", ["D09X", "D10X", "D11X"]),
        ("PLAIN", ["PLAIN"]),
    ],
)
def test_repeated_sources_expand_in_order(source, expected):
    assert expand_sources(source) == expected


@pytest.mark.parametrize(
    ("first", "second", "overlap"),
    [
        ("apc_spells*.csv", "apc_spells_hes*.csv", True),
        ("apc*.csv", "*_hes.csv", True),  # neither pattern matches the other's text
        ("apc_spells*.csv", "hes_apc*.csv", False),
        ("gp_events*.txt", "gp_events*.csv", False),
        ("a[0-9].csv", "a?.csv", True),
        ("a[0-9].csv", "ab.csv", False),
        ("a[!0-9].csv", "ab.csv", True),
        ("*", "anything.csv", True),
        ("x*y*z", "*q*", True),
        ("Apc*.csv", "apc*.csv", False),  # names are case-sensitive, as on Linux
    ],
)
def test_file_patterns_overlap_when_one_name_can_match_both(first, second, overlap):
    assert patterns_overlap(first, second) is overlap
    assert patterns_overlap(second, first) is overlap


@pytest.mark.parametrize(
    ("codes", "system", "options", "expected"),
    [
        (["I10X", "R101", "e11.9", " j45 "], "icd10", {}, ["I10", "R101", "E119", "J45"]),
        (["K37X-", "I10X-"], "icd10", {"strip_characters": "-"}, ["K37", "I10"]),
        (["M8190", "R69X6", "I10"], "icd10", {"max_length": 4}, ["M819", "R69", "I10"]),
        (["A099D", "K37X-"], "icd10", {"strip_characters": "-D", "max_length": 4}, ["A099", "K37"]),
        (["X40.3", "x403", "-"], "opcs4", {"strip_characters": "-"}, ["X403", "X403", None]),
        (["", "  "], "opcs4", {}, [None, None]),
    ],
)
def test_code_options_clean_codes_as_a_provider_sends_them(codes, system, options, expected):
    assert clean_code(pa.array(codes), system, **options).to_pylist() == expected


def test_a_sound_spec_has_no_problems_and_keeps_its_provider():
    spec, problems = parse_spec(Path("tiny.yaml"), gp_spec())
    assert problems == [] and spec.provider == "tiny" and spec.name == "tiny"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"fromat": {}}, "unknown key 'fromat' (did you mean 'format'?)"),
        ({"format": {"delimter": "|"}}, "format: unknown key 'delimter' (did you mean 'delimiter'?)"),
        ({"format": {"delimiter": "||"}}, "delimiter must be one character"),
        ({"format": {"header": False}}, "header must be true"),
        ({"format": {"encoding": "ebcdic"}}, "format: "),
        ({"feed": "apc_hes"}, "feed 'apc_hes' is not one ldm loads"),
        (
            {"columns": {"unit": {"source": "Unit", "type": "txt"}}},
            "unknown type 'txt' (did you mean 'text'?)",
        ),
        ({"columns": {"unit": {"source": "Unit", "type": "text", "sorce": "U"}}}, "unknown key 'sorce'"),
        (
            {"columns": {"snomed_code": {"source": "C", "type": "code", "code_system": "snomed"}}},
            "needs a code_system",
        ),
        ({"columns": {"event_date": {"source": "When", "type": "date"}}}, "is a date and needs a 'format'"),
        ({"columns": {"unit": {"type": "text"}}}, "needs either a 'source'"),
        ({"columns": {"unit": {"source": "U", "constant": "kg", "type": "text"}}}, "needs either a 'source'"),
        (
            {"columns": {"nhs_number": {"constant": "1", "type": "nhs_number"}}},
            "an identifier cannot be a constant",
        ),
        ({"columns": {"unit": {"source": ["A", "B"], "type": "text"}}}, "says `repeated: true`"),
        (
            {"columns": {"unit": {"source": "U{1..2}", "repeated": True, "type": "text"}}},
            "stores no repeated field",
        ),
        (
            {"columns": {"colour": {"source": "Colour", "type": "text"}}},
            "column 'colour' has no place in the store",
        ),
        (
            {"columns": {"unit": {"source": "Unit", "type": "text", "max_length": 3}}},
            "apply to code columns only",
        ),
        ({"event_date": "event_day"}, "event_date 'event_day' is not a column (did you mean 'event_date'?)"),
        ({"record_key": ["nhs_number"]}, "an identifier, which never crosses the seam"),
        ({"record_key": ["record"]}, "record_key names 'record', which is not a column"),
        ({"record_key": ["record_id", "event_date"]}, "record_key names 'event_date', a date"),
        ({"record_key": ["unit"]}, "record_key needs a required column read from the file"),
        (
            {
                "record_key": ["practice_code"],
                "columns": {"practice_code": {"constant": "B1", "type": "text"}},
            },
            "record_key needs a required column read from the file",
        ),
        ({"event_date": "unit"}, "event_date 'unit' is not a date or datetime column"),
        ({"event_date": ["x"]}, "event_date must be a text"),
        ({"spec_version": 1.9}, "spec_version must be a whole number"),
        (
            {"columns": {"unit": {"source": "Unit", "type": "text", "required": "false"}}},
            "required must be true or false",
        ),
        ({"columns": {"unit": {"source": 5, "type": "text"}}}, "source must be a column name"),
        (
            {"columns": {"unit": {"source": "U", "type": "text", "code_system": ["x"]}}},
            "code_system must be a text",
        ),
        ({"columns": {"event_date": {"source": "When", "type": "date", "format": "%d/%m"}}}, "with a year"),
        (
            {"columns": {"nhs_no": {"source": "NHS2", "type": "nhs_number"}}},
            "a nhs_number column is named nhs_number",
        ),
        ({"columns": {"nhs_number": None}}, "an nhs_number column is needed"),
        (
            {
                "feed": "apc_spells",
                "columns": {"diagnosis": {"source": "D{1..2}", "repeated": True, "type": "text"}},
            },
            "a repeated field holds codes",
        ),
        (
            {
                "feed": "op_appointments",
                "columns": {
                    "local_id": {"source": "H", "type": "local_id", "issuer": "iss"},
                    "iss": {"constant": "Trust B", "type": "text", "keep": False},
                },
            },
            "an issuing organisation is an ODS code",
        ),
        (
            {"columns": {"value": {"source": "Unit", "type": "decimal", "null_values": ["-"]}}},
            "read 'Unit' with different null_values",
        ),
        (
            {"columns": {"event_date": {"source": "When", "type": "date", "format": "%Y", "keep": False}}},
            "event_date 'event_date' is declared keep: false",
        ),
    ],
)
def test_each_spec_mistake_is_named(changes, message):
    problems = problems_of(gp_spec(**changes))
    assert any(message in problem for problem in problems), problems


def test_a_local_id_needs_an_issuer_and_a_constant_issuer_will_do():
    no_issuer = {"local_id": {"source": "Hosp", "type": "local_id"}}
    assert any(
        "needs an 'issuer'" in p for p in problems_of(gp_spec(feed="op_appointments", columns=no_issuer))
    )
    spec, problems = parse_spec(
        Path("op.yaml"),
        {
            "feed": "op_appointments",
            "spec_version": 1,
            "file_pattern": "op*.csv",
            "columns": {
                "record_id": {"source": "Id", "type": "integer"},
                "nhs_number": {"source": "NHS", "type": "nhs_number"},
                "local_id": {"source": "Hosp", "type": "local_id", "issuer": "provider_code"},
                "provider_code": {"constant": "RR8", "type": "text"},
            },
        },
    )
    assert problems == [] and spec.column("provider_code").constant == "RR8"
    assert spec.sources == ["Id", "NHS", "Hosp"]  # a constant is not looked for in the file


def test_a_column_declared_not_kept_is_read_but_has_no_place_to_find():
    spec, problems = parse_spec(
        Path("tiny.yaml"), gp_spec(columns={"site": {"source": "Site", "type": "text", "keep": False}})
    )
    assert problems == [] and "Site" in spec.sources and "site" not in {c.name for c in spec.kept}


def write_folder(folder: Path, documents: dict[str, dict]) -> Path:
    folder.mkdir(exist_ok=True)
    for name, document in documents.items():
        (folder / name).write_text(yaml.safe_dump(document))
    return folder


def test_a_folder_names_overlapping_patterns_and_two_specs_for_one_provider(tmp_path):
    folder = write_folder(
        tmp_path / "specs",
        {
            "a.yaml": gp_spec(file_pattern="tiny*.txt"),
            "b.yaml": gp_spec(file_pattern="tiny_events_b*.txt", provider="other"),
            "c.yaml": gp_spec(file_pattern="other*.txt"),
        },
    )
    specs, problems = check_specs(folder)
    assert set(specs) == {"a", "b", "c"}
    assert any("a.yaml and b.yaml: file patterns" in p for p in problems)
    assert any("c.yaml: a.yaml is also the gp_events spec of provider 'tiny'" in p for p in problems)
    with pytest.raises(LdmError, match=r"feed specs in .*: .* \(and 1 more\); see: ldm specs check"):
        load_specs(folder)


def test_two_providers_of_one_feed_share_a_folder_with_the_builtin_specs(tmp_path):
    folder = tmp_path / "specs"
    shutil.copytree(SPEC_DIR, folder)
    shutil.copy(EXAMPLES / "apc_spells_hes.yaml", folder)
    specs = load_specs(folder)
    providers = {(s.feed, s.provider) for s in specs.values() if s.feed == "apc_spells"}
    assert providers == {("apc_spells", "standard"), ("apc_spells", "hes_style")}
    assert dict(specs["apc_spells_hes"].repeated) == {"diagnosis": 20, "procedure": 24}


def test_a_file_two_specs_match_is_refused_naming_both(tmp_path):
    specs = {
        "a": parse_spec(tmp_path / "a.yaml", gp_spec(file_pattern="tiny*.txt"))[0],
        "b": parse_spec(tmp_path / "b.yaml", gp_spec(file_pattern="*events.txt", provider="b"))[0],
    }
    extracts = tmp_path / "extracts"
    extracts.mkdir()
    (extracts / "tiny_events.txt").write_text("Id|NHS|When|Code|Unit\n")
    matched, unrecognised, refused = match_extracts(extracts, specs)
    assert not matched and not unrecognised
    assert "matches the file patterns of 2 specs, a (gp_events, provider tiny) and b" in refused[0][1]


TINY_ROWS = "Id|NHS|When|Code|Unit|Site\n1|9999191932|2023-04-06|27113001|-|A\n2|9999191932|9999-99-99|27113001|kg|B\n"


def tiny_file(tmp_path: Path, text: str = TINY_ROWS) -> Path:
    path = tmp_path / "tiny_events.txt"
    path.write_text(text)
    return path


def test_placeholders_become_empty_per_column_and_per_file(tmp_path):
    document = gp_spec(
        format={"delimiter": "|", "null_values": ["9999-99-99"]},
        columns={"unit": {"source": "Unit", "type": "text", "null_values": ["-"]}},
    )
    spec = parse_spec(tmp_path / "tiny.yaml", document)[0]
    con = duckdb.connect()
    load_raw(con, tiny_file(tmp_path), spec)
    assert con.sql('select "Unit", "When" from raw order by rowid').fetchall() == [
        (None, "2023-04-06"),
        ("kg", None),
    ]


def test_a_constant_is_a_column_of_every_row(tmp_path):
    spec = parse_spec(
        tmp_path / "tiny.yaml", gp_spec(columns={"practice_code": {"constant": "B86086", "type": "text"}})
    )[0]
    con = duckdb.connect()
    load_raw(con, tiny_file(tmp_path), spec)
    source = spec.column("practice_code").source
    assert con.sql(f'select distinct "{source}" from raw').fetchall() == [("B86086",)]


def test_a_misspelt_source_is_named_with_the_closest_header_name(tmp_path):
    spec = parse_spec(tmp_path / "tiny.yaml", gp_spec(columns={"unit": {"source": "Units", "type": "text"}}))[
        0
    ]
    with pytest.raises(StructuralError, match=r"missing column\(s\) Units \(did you mean 'Unit'\?\)"):
        check_structure(tiny_file(tmp_path), spec)


def test_specs_check_lists_problems_and_checks_a_sample(tmp_path, capsys):
    folder = write_folder(
        tmp_path / "specs",
        {"tiny.yaml": gp_spec(columns={"unit": {"source": "Units", "type": "text"}})},
    )
    sample = tiny_file(tmp_path)
    assert main(["specs", "check", str(folder), "--sample", str(sample)]) == 1
    err = capsys.readouterr().err
    assert "Units (did you mean 'Unit'?)" in err and "1 problem(s)" in err
    write_folder(folder, {"tiny.yaml": gp_spec()})
    assert main(["specs", "check", str(folder), "--sample", str(sample)]) == 0
    out = capsys.readouterr().out
    assert "not read (no spec column maps them): Site" in out and "1 specs, no problems" in out


def test_specs_init_copies_the_builtin_specs_and_refuses_a_full_folder(tmp_path):
    assert main(["specs", "init", str(tmp_path / "mine")]) == 0
    assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == sorted(
        p.name for p in SPEC_DIR.glob("*.yaml")
    )
    assert main(["specs", "init", str(tmp_path / "mine")]) == 2


def test_the_quarantine_file_names_each_source_column_once(tmp_path):
    """One source column feeding two spec columns (HES's PROCODE3) is one column of the quarantine file."""
    document = gp_spec(
        columns={
            "practice_code": {"source": "Site", "type": "text"},
            "unit": {"source": "Site", "type": "text"},
        }
    )
    folder = write_folder(tmp_path / "specs", {"tiny.yaml": document})
    extracts = tmp_path / "extracts"
    extracts.mkdir()
    tiny_file(extracts)
    key = init_key(tmp_path / "k.key")
    result = pseudonymise_folder(
        extracts, tmp_path / "out", key, load_specs(folder), datetime.date(2025, 4, 1), 0.9, None
    )
    manifest = result.done[0][0]
    header = Path(manifest.quarantine_file).read_text().splitlines()[0]
    assert header == "row_number,reasons,Id,NHS,When,Code,Site"  # the file's order, Site once
    assert (manifest.provider, manifest.spec_name) == ("tiny", "tiny")


def test_every_builtin_and_example_spec_is_sound():
    assert builtin_specs()
    specs, problems = check_specs(EXAMPLES)
    assert problems == [] and specs


def test_the_loader_refuses_a_seam_column_the_store_would_not_keep(tmp_path):
    """A seam file from another version (say, with the old primary_diagnosis column) loses nothing quietly."""
    extracts = tmp_path / "extracts"
    extracts.mkdir()
    shutil.copy(REPO / "sample_data" / "extracts" / "apc_spells.csv", extracts)
    key = init_key(tmp_path / "k.key")
    out = tmp_path / "out"
    result = pseudonymise_folder(extracts, out, key, builtin_specs(), datetime.date(2025, 4, 1))
    manifest_path = next((out / "apc_spells").glob("*.manifest.json"))
    manifest = Manifest.read(manifest_path)
    parquet = out / "apc_spells" / manifest.output_file
    duckdb.execute(
        f"copy (select *, diagnosis_0 as primary_diagnosis from read_parquet('{parquet}')) "
        f"to '{parquet}.new' (format parquet)"
    )
    Path(f"{parquet}.new").replace(parquet)
    manifest.output_sha256 = file_sha256(parquet)
    manifest.write(manifest_path)
    store = tmp_path / "store.duckdb"
    upgrade(store)
    with pytest.raises(
        LdmError, match=r"column\(s\) primary_diagnosis have no place in the store's apc_spells"
    ):
        load_folder(out, store, key)
    assert result.done


def built_in_specs_and(tmp_path: Path, feed: str, provider: str, file_pattern: str) -> Path:
    """A folder of the built-in specs plus a second provider's copy of one of them."""
    folder = tmp_path / "specs"
    shutil.copytree(SPEC_DIR, folder)
    document = yaml.safe_load((SPEC_DIR / f"{feed}.yaml").read_text())
    document |= {"provider": provider, "file_pattern": file_pattern}
    (folder / f"{feed}_{provider}.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    return folder


def test_two_providers_numbering_their_records_alike_never_revise_each_other(tmp_path):
    """A provider's record key identifies its own records: trust B's contact 7 is not trust A's."""
    folder = built_in_specs_and(tmp_path, "community_contacts", "trust_b", "trust_b_contacts*.txt")
    extracts = tmp_path / "extracts"
    extracts.mkdir()
    lines = (REPO / "sample_data" / "extracts" / "community_contacts.txt").read_text().splitlines()[:41]
    (extracts / "community_contacts.txt").write_text("\n".join(lines) + "\n")
    other = [lines[0]] + [line.replace('"F2F"', '"Tel"') for line in lines[1:]]  # same ids, other contacts
    (extracts / "trust_b_contacts_2025.txt").write_text("\n".join(other) + "\n")
    key = init_key(tmp_path / "k.key")
    result = pseudonymise_folder(
        extracts, tmp_path / "out", key, load_specs(folder), datetime.date(2025, 4, 1)
    )
    assert len(result.done) == 2
    store = tmp_path / "store.duckdb"
    upgrade(store)
    summary = load_folder(tmp_path / "out", store, key)
    by_provider = {load.input_file: load for load in summary.loaded}
    trust_b = by_provider["trust_b_contacts_2025.txt"]
    assert (trust_b.rows_revised, trust_b.rows_resent) == (0, 0)
    con = duckdb.connect(str(store), read_only=True)
    try:
        loaded = con.execute(
            "select b.provider, count(*) from main.community_contacts c join governance.batches b using (batch_id) "
            "group by 1 order by 1"
        ).fetchall()
    finally:
        con.close()
    assert loaded == [
        ("standard", by_provider["community_contacts.txt"].rows_loaded),
        ("trust_b", trust_b.rows_loaded),
    ]
    assert trust_b.rows_loaded > 30


def test_a_key_written_twice_in_a_spec_is_refused(tmp_path):
    """YAML keeps the last of two equal keys without a word: a second `procedure:` would drop the first."""
    path = tmp_path / "twice.yaml"
    path.write_text(yaml.safe_dump(gp_spec()) + "columns:\n  unit: {source: Unit, type: text}\n")
    spec, problems = read_spec(path)
    assert spec is None and "appears twice" in problems[0]


def test_one_opt_out_list_only_in_a_folder_and_in_a_load(tmp_path):
    """Each opt-out list is a full snapshot: a second would replace the first and let its people back in."""
    folder = built_in_specs_and(tmp_path, "opt_out", "type1", "type1_opt_out*.csv")
    assert any("the opt-out list is one full snapshot" in p for p in check_specs(folder)[1])
    extracts = tmp_path / "extracts"
    extracts.mkdir()
    numbers = (REPO / "sample_data" / "extracts" / "national_data_opt_out.csv").read_text().splitlines()
    (extracts / "national_data_opt_out_a.csv").write_text("\n".join(numbers[:20]) + "\n")
    (extracts / "national_data_opt_out_b.csv").write_text("\n".join([numbers[0], *numbers[20:]]) + "\n")
    (extracts / "trust_b").mkdir()  # a subfolder is named, never skipped in silence
    key = init_key(tmp_path / "k.key")
    result = pseudonymise_folder(extracts, tmp_path / "out", key, builtin_specs(), datetime.date(2025, 4, 1))
    assert [p.name for p in result.unrecognised] == ["trust_b"] and len(result.done) == 2
    store = tmp_path / "store.duckdb"
    upgrade(store)
    with pytest.raises(LdmError, match="2 opt-out lists to load at once"):
        load_folder(tmp_path / "out", store, key)
