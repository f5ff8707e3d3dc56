"""A second provider of a feed onboarded by a spec alone, through `ldm run`, beside the built-in one.

The committed sample's APC extract is re-sent in the style of the HES APC dictionary (semicolon,
Windows-1252 with a non-ASCII character, CRLF, another column order, extra columns, yyyymmdd birth
dates, dd-Mon-yyyy dates, 20 diagnosis and 24 procedure columns, dotless codes with an X filler,
"-" for no operation, no issuer column) and read with examples/specs/apc_spells_hes.yaml placed in
one folder with the built-in specs. The store and marts must agree with the store `ldm demo` builds
from the same records in the built-in format, and every code the HES file carries must arrive.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import duckdb
import pytest

from ldm.config import load_settings
from ldm.demo import SAMPLE_TODAY
from ldm.feeds.spec import SPEC_DIR
from ldm.pipeline import run_pipeline
from ldm.synthetic.formats import FORMATS
from ldm.synthetic.hes import write_hes_apc
from models.feeds import FEED_TABLES, REPEATED_FIELDS, stored_columns

REPO = Path(__file__).resolve().parent.parent
HES_SPEC = REPO / "examples" / "specs" / "apc_spells_hes.yaml"
BUILD_STAMP = ("dbt_invocation_id", "built_at", "audit_head")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def hes_run(sample_marts_store, tmp_path_factory):
    """`ldm run` over the sample with its APC extract sent HES-style, with the demo's key and date."""
    root = tmp_path_factory.mktemp("hes_provider")
    extracts = root / "extracts"
    shutil.copytree(REPO / "sample_data" / "extracts", extracts)
    (extracts / "apc_spells.csv").unlink()
    write_hes_apc(
        REPO / "sample_data" / "extracts" / "apc_spells.csv", extracts / "hes_apc_2025.csv", extra_codes=True
    )
    specs = root / "specs"
    shutil.copytree(SPEC_DIR, specs)
    shutil.copy(HES_SPEC, specs)
    key_file = sample_marts_store.parent.parent / "demo.key"
    settings = load_settings(
        None, store=root / "store.duckdb", key_file=key_file, today=SAMPLE_TODAY, specs=specs
    )
    report = run_pipeline(extracts, settings)
    return root / "store.duckdb", extracts / "hes_apc_2025.csv", report


def rows(store: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(store), read_only=True)
    try:
        return sorted(con.execute(sql).fetchall(), key=repr)
    finally:
        con.close()


def test_the_batch_records_the_provider_and_spec(hes_run):
    store, _, report = hes_run
    manifest = next(m for m, _ in report.pseudonymised.done if m.feed == "apc_spells")
    assert (manifest.provider, manifest.spec_name) == ("hes_style", "apc_spells_hes")
    assert manifest.repeated == {"diagnosis": 20, "procedure": 24}
    assert rows(store, "select provider, spec_name from governance.batches where feed = 'apc_spells'") == [
        ("hes_style", "apc_spells_hes")
    ]


def test_spells_persons_and_marts_agree_with_the_builtin_format(hes_run, sample_marts_store):
    store, _, _ = hes_run
    spell = ", ".join(sorted(stored_columns("apc_spells") - {"batch_id", "record_digest"}))
    assert rows(store, f"select {spell} from main.apc_spells") == rows(
        sample_marts_store, f"select {spell} from main.apc_spells"
    )
    for table in ("persons", "registrations", "gp_events", "op_appointments"):
        columns = ", ".join(sorted(c for c in stored_columns_of(store, table) if "batch_id" not in c))
        assert rows(store, f"select {columns} from main.{table}") == rows(
            sample_marts_store, f"select {columns} from main.{table}"
        ), table
    marts = rows(
        sample_marts_store,
        "select table_schema || '.' || table_name from information_schema.tables where table_name like 'mart_%'",
    )
    assert len(marts) >= 4
    for (mart,) in marts:
        # every column but the build stamp (which dbt build wrote the row, from which audit head)
        columns = f"* exclude ({', '.join(BUILD_STAMP)})"
        assert rounded(rows(store, f"select {columns} from {mart}")) == rounded(
            rows(sample_marts_store, f"select {columns} from {mart}")
        ), mart


def rounded(table: list[tuple]) -> list[tuple]:
    """Rows with floats to 9 significant places: sums in another order may differ in the last bits."""
    return [tuple(float(f"{v:.9g}") if isinstance(v, float) else v for v in row) for row in table]


def stored_columns_of(store: Path, table: str) -> list[str]:
    return [name for (name,) in rows(store, f"select name from pragma_table_info('main.{table}')")]


def codes_by_spell(store: Path, field: str) -> dict[int, dict[int, str]]:
    repeated = REPEATED_FIELDS["apc_spells"][field]
    found: dict[int, dict[int, str]] = {}
    for record_id, position, code in rows(
        store,
        f"""select s.record_id, c.position, c.{repeated.column} from main.{repeated.table} c
            join main.apc_spells s using (batch_id, row_number)""",
    ):
        found.setdefault(record_id, {})[position] = code
    return found


def test_the_five_diagnoses_and_two_procedures_both_formats_carry_agree(hes_run, sample_marts_store):
    store, _, _ = hes_run
    for field, shared in (("diagnosis", 5), ("procedure", 2)):
        hes, builtin = codes_by_spell(store, field), codes_by_spell(sample_marts_store, field)
        assert set(hes) >= set(builtin)
        for record_id, codes in builtin.items():  # the HES file may carry more codes after these
            assert {p: c for p, c in hes[record_id].items() if p in codes} == codes, (field, record_id)
            assert max(hes[record_id]) >= max(codes) and len(codes) <= shared


def expected_from_file(path: Path) -> dict[str, dict[int, dict[int, str]]]:
    """Every code the HES file carries, by spell and position, cleaned as a reader would by hand."""
    expected: dict[str, dict[int, dict[int, str]]] = {"diagnosis": {}, "procedure": {}}
    with path.open(encoding="cp1252", newline="") as handle:
        for row in csv.DictReader(handle, delimiter=";"):
            for field, prefix, count in (("diagnosis", "DIAG", 20), ("procedure", "OPERTN", 24)):
                codes = {}
                for position in range(count):
                    code = row[f"{prefix}_{position + 1:02d}"].strip().upper().replace(".", "")
                    if code in ("", "-", "&"):
                        continue
                    if field == "diagnosis" and len(code) == 4 and code.endswith("X"):
                        code = code[:3]
                    codes[position] = code
                expected[field][int(row["EPIKEY"])] = codes  # a record sent twice: its last version
    return expected


def test_every_code_the_provider_sends_reaches_the_store_at_its_position(hes_run):
    store, hes_file, _ = hes_run
    expected = expected_from_file(hes_file)
    deep = 0
    for field in ("diagnosis", "procedure"):
        stored = codes_by_spell(store, field)
        for record_id, codes in stored.items():
            assert codes == expected[field][record_id], (field, record_id)
            deep += any(position >= 5 for position in codes)
        assert max(max(codes) for codes in stored.values()) == (19 if field == "diagnosis" else 23)
    assert deep > 0
    assert not rows(store, "select * from main.spell_procedures where opcs4_code in ('-', '&')")


# Where an identifier's value shows in the store: identifiers never cross the seam, their derived
# values do. Names and local ids only link records (linkage.record_links has every row's person).
DERIVED = {"date_of_birth": "year_of_birth", "postcode": "lsoa11_code", "nhs_number": "nhs_number_valid"}


def sent(extract: Path, spec) -> set[str]:
    """The provider's columns with a value (not blank, not one of the column's null values) on some row
    of `extract`, read with the spec's delimiter and encoding."""
    null_values = {column.source: set(column.null_values) for column in spec.columns}
    encoding = "utf-8-sig" if spec.encoding.lower().replace("_", "-") == "utf-8" else spec.encoding
    filled = set()
    with extract.open(encoding=encoding, newline="") as handle:
        for row in csv.DictReader(handle, delimiter=spec.delimiter):
            filled.update(
                name
                for name, value in row.items()
                if value and value.strip() not in {"", *null_values.get(name, ())}
            )
    return filled


def unkept(store: Path, spec, extract: Path) -> list[str]:
    """The spec's kept columns with no value in the store although the provider sent one in `extract`
    (empty when every mapped column the provider filled arrived)."""
    missing = []
    table = FEED_TABLES[spec.feed]
    columns = stored_columns(spec.feed)
    filled = sent(extract, spec)
    for column in spec.kept:
        if column.read_from_file and column.source not in filled:
            continue  # nothing to arrive (the sample's deaths carry four causes at most, of sixteen)
        if column.field is not None:
            repeated = REPEATED_FIELDS[spec.feed][column.field]
            found = rows(
                store, f"select count(*) from main.{repeated.table} where position = {column.position}"
            )
        elif column.is_identifier:
            derived = DERIVED.get(column.type if column.type != "date" else column.name)
            if derived is None or derived not in columns:
                continue
            found = rows(store, f"select count({derived}) from main.{table}")
        else:
            found = rows(store, f"select count({column.name}) from main.{table}")
        if found[0][0] == 0:
            missing.append(column.name)
    return missing


@pytest.mark.parametrize("feed", sorted(FEED_TABLES))
def test_every_column_a_builtin_spec_maps_arrives_in_the_store(sample_marts_store, feed):
    from ldm.feeds.spec import builtin_specs

    spec = builtin_specs()[feed]
    extract = REPO / "sample_data" / "extracts" / FORMATS[feed].file_name
    assert unkept(sample_marts_store, spec, extract) == []
    # The sample leaves empty only later positions of a repeated field (the deaths' causes 4 to 15).
    empty = [c for c in spec.kept if c.read_from_file and c.source not in sent(extract, spec)]
    assert all(c.field is not None and c.position > 0 for c in empty), [c.name for c in empty]


def test_every_column_the_example_spec_maps_arrives_in_the_store(hes_run):
    from ldm.feeds.spec import load_spec

    store, hes_file, _ = hes_run
    assert unkept(store, load_spec(HES_SPEC), hes_file) == []
