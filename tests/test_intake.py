"""The identifiable zone's intake against hostile or careless files: small hand-made extracts, real DuckDB."""

from __future__ import annotations

import bz2
import datetime
import gzip
import json
import lzma
import os
import re
import zipfile
from pathlib import Path

import duckdb
import pytest

from ldm.cli import main
from ldm.feeds.read import MAX_LINE_BYTES, SNIFF_BYTES, StructuralError, check_structure, load_raw
from ldm.feeds.spec import builtin_specs
from ldm.files import safe_stem, scan_file
from ldm.pseudonymise.batch import BatchResult, pseudonymise_folder
from ldm.pseudonymise.extract import pseudonymise_extract
from ldm.pseudonymise.keys import init_key
from ldm.validate.suites import load_suite_document

TODAY = datetime.date(2025, 4, 1)
GP_HEADER = "EventId|PatientNHSNumber|PracticeCode|EventDate|ConceptId|Value|Unit"


def gp_row(number: int, unit: str = "kg", date: str = "2023-04-06") -> str:
    """A gp_events row as the sample sends them (a valid NHS number, practice and SNOMED code)."""
    return f'{number}|"9999191932"|"B86086"|"{date}"|"27113001"|109.5|"{unit}"'


def gp_extract(rows: int, **changes: str) -> bytes:
    """A gp_events extract of `rows` rows; `changes` maps a row number (as 'r7') to its Unit text."""
    lines = [GP_HEADER] + [gp_row(n, changes.get(f"r{n}", "kg")) for n in range(1, rows + 1)]
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture(scope="module")
def spec():
    return builtin_specs()["gp_events"]


@pytest.fixture
def key(tmp_path):
    return init_key(tmp_path / "k.key")


def folder_with(tmp_path: Path, files: dict[str, bytes], name: str = "extracts") -> Path:
    folder = tmp_path / name
    folder.mkdir()
    for file_name, content in files.items():
        (folder / file_name).write_bytes(content)
    return folder


def run(folder: Path, out: Path, key) -> BatchResult:
    return pseudonymise_folder(folder, out, key, builtin_specs(), TODAY)


# 1. A NUL byte anywhere


def test_a_nul_byte_after_the_first_mib_is_found_by_the_scan_beside_the_read(tmp_path, spec, key):
    content = gp_extract(20_000)
    start = content.index(b"\n", SNIFF_BYTES) + 1  # the first line that starts after the first MiB
    end = content.index(b"\n", start)
    content = content[:start] + content[start:end].replace(b'"kg"', b'"k\x00g"') + content[end:]
    offset = content.index(b"\x00")
    line = content[:offset].count(b"\n") + 1
    assert offset > SNIFF_BYTES and content.count(b"\x00") == 1
    path = tmp_path / "gp_events.txt"
    path.write_bytes(content)
    assert check_structure(path, spec)  # the sniff of the first MiB does not see it
    assert scan_file(path).nul_offset == offset

    expected = f"{path}: binary data (a NUL byte) at byte {offset}, line {line}"
    with pytest.raises(StructuralError) as raised:
        pseudonymise_extract(path, spec, key, tmp_path / "out", load_suite_document("gp_events"), TODAY)
    assert str(raised.value).startswith(expected), str(raised.value)
    assert not list((tmp_path / "out").rglob("*.parquet"))

    # In a folder, with a sibling of the same size the file is scanned before the read: same error.
    folder = folder_with(
        tmp_path, {"gp_events.txt": content, "gp_events_b.txt": content.replace(b"\x00", b" ")}
    )
    result = run(folder, tmp_path / "out2", key)
    assert [m.input_file for m, _ in result.done] == ["gp_events_b.txt"]
    [(failed, message)] = result.failed
    assert failed.name == "gp_events.txt"
    assert f"binary data (a NUL byte) at byte {offset}, line {line}" in message


def test_a_nul_byte_explains_a_row_duckdb_cannot_read_but_not_a_header_fault(tmp_path, spec, key):
    content = gp_extract(20_000)
    start = content.index(b"\n", SNIFF_BYTES) + 1
    content = content[:start] + b"x\x00|y\n" + content[start:]  # also a ragged row for DuckDB
    path = tmp_path / "gp_events.txt"
    path.write_bytes(content)
    suite = load_suite_document("gp_events")
    with pytest.raises(StructuralError, match=rf"binary data \(a NUL byte\) at byte {start + 1}, line"):
        pseudonymise_extract(path, spec, key, tmp_path / "out", suite, TODAY)
    path.write_bytes(content.replace(b"Unit", b"Units", 1))
    with pytest.raises(StructuralError, match=r"missing column\(s\) Unit"):
        pseudonymise_extract(path, spec, key, tmp_path / "out", suite, TODAY)


def test_a_nul_byte_in_the_first_mib_names_its_byte_and_line(tmp_path, spec):
    path = tmp_path / "gp_events.txt"
    path.write_bytes(gp_extract(5, r3="\x00"))
    offset = path.read_bytes().index(b"\x00")
    with pytest.raises(StructuralError, match=rf"binary data \(a NUL byte\) at byte {offset}, line 4;"):
        check_structure(path, spec)


# 2. Over-long lines


def test_a_line_longer_than_the_limit_is_named_as_such(tmp_path, spec):
    path = tmp_path / "gp_events.txt"
    path.write_bytes(gp_extract(3, r2="x" * 3_000_000))
    with pytest.raises(StructuralError) as raised:
        load_raw(duckdb.connect(), path, spec)
    message = str(raised.value)
    assert message.startswith(f"{path}: line 3 is longer than the limit of {MAX_LINE_BYTES} bytes"), message
    assert "unterminated" not in message and "xxxx" not in message and "\n" not in message


def test_a_line_just_under_the_limit_is_read(tmp_path, spec):
    """The limit is set explicitly: DuckDB 2.0 on its own stops at 2,000,000 bytes."""
    path = tmp_path / "gp_events.txt"
    path.write_bytes(gp_extract(3, r2="x" * (MAX_LINE_BYTES - 100)))
    con = duckdb.connect()
    assert load_raw(con, path, spec) == 3
    assert con.execute("select max(length(Unit)) from raw").fetchall() == [(MAX_LINE_BYTES - 100,)]


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (
            '2|"9999191932"|"B86086"|"2023-04-06"|"27113001"|109.5|"kg\n',
            "unterminated quoted field at line 3",
        ),
        (
            '2|"9999191932"|"B86086"|"2023-04-06"|"27113001"|109.5|"kg"|x\n',
            "truncated or ragged row at line 3",
        ),
    ],
)
def test_other_reader_faults_keep_their_names(tmp_path, spec, row, expected):
    path = tmp_path / "gp_events.txt"
    path.write_text(f"{GP_HEADER}\n{gp_row(1)}\n{row}")
    with pytest.raises(StructuralError, match=re.escape(expected)):
        load_raw(duckdb.connect(), path, spec)


# 3. A column named twice


@pytest.mark.parametrize(
    ("extra", "expected"), [("Unit", "column 'Unit' appears twice"), ("UNIT", "(as 'Unit' and 'UNIT'")]
)
def test_a_header_naming_a_column_twice_is_reported(tmp_path, spec, extra, expected):
    path = tmp_path / "gp_events.txt"
    path.write_text(f"{GP_HEADER}|{extra}\n{gp_row(1)}|kg\n")
    with pytest.raises(StructuralError) as raised:
        load_raw(duckdb.connect(), path, spec)
    assert f"{path}: column 'Unit' appears twice in the header" in str(raised.value)
    assert expected in str(raised.value) and "ragged" not in str(raised.value)


# 4. Compressed and columnar files


def _zip(content: bytes, path: Path) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("gp_events.txt", content)


def _duckdb_copy(options: str):
    def write(content: bytes, path: Path) -> None:
        source = path.with_name("source.txt")
        source.write_bytes(content)
        target = path.with_name("written")
        duckdb.sql(f"copy (select * from read_csv('{source}', delim = '|')) to '{target}' ({options})")
        source.unlink()
        target.rename(path)

    return write


@pytest.mark.parametrize(
    ("write", "what"),
    [
        (
            lambda content, path: path.write_bytes(gzip.compress(content)),
            "is a gzip-compressed file; decompress it first",
        ),
        (_zip, "is a zip archive"),
        (lambda content, path: path.write_bytes(bz2.compress(content)), "is a bzip2-compressed file"),
        (lambda content, path: path.write_bytes(lzma.compress(content)), "is an xz-compressed file"),
        (_duckdb_copy("format csv, compression zstd"), "is a zstd-compressed file"),
        (_duckdb_copy("format parquet"), "is a Parquet file"),
    ],
)
def test_a_compressed_or_columnar_file_is_named_for_what_it_is(tmp_path, spec, write, what):
    path = tmp_path / "gp_events.txt"
    write(gp_extract(50), path)
    with pytest.raises(StructuralError) as raised:
        check_structure(path, spec)
    assert str(raised.value).startswith(f"{path}: {what}"), str(raised.value)
    assert str(raised.value).endswith("(ldm reads plain-text extracts)")


def test_text_that_merely_starts_like_a_signature_is_read(tmp_path):
    """'BZh' or 'PAR1' at the start of a header is text unless the rest of the signature is there."""
    specs = builtin_specs()
    path = tmp_path / "gp_events.txt"
    for first in ("BZh9", "PAR1"):
        path.write_text(f"{first}|{GP_HEADER}\nx|{gp_row(1)}\n")
        assert check_structure(path, specs["gp_events"])[0] == first


# 5. File names


def test_names_with_quotes_semicolons_spaces_and_accents_pseudonymise_like_a_plain_name(tmp_path, key):
    content = gp_extract(30, r7="g") + (gp_row(31, date="2023-02-30") + "\n").encode()
    odd = "gp_events O'Brien;drop (1) é.txt"
    plain = run(folder_with(tmp_path, {"gp_events.txt": content}, "plain"), tmp_path / "out_plain", key)
    strange = run(folder_with(tmp_path, {odd: content}, "odd"), tmp_path / "out_odd", key)
    assert not plain.failed and not strange.failed, (plain.failed, strange.failed)
    [(ours, _)], [(theirs, _)] = strange.done, plain.done
    assert (ours.rows_in, ours.rows_accepted, ours.rows_quarantined) == (31, 30, 1)
    assert (ours.rows_in, ours.rows_accepted, ours.rows_quarantined) == (
        theirs.rows_in,
        theirs.rows_accepted,
        theirs.rows_quarantined,
    )
    assert ours.input_file == odd and ours.input_sha256 == theirs.input_sha256
    assert theirs.output_file.startswith("gp_events.txt.")  # a safe name is kept as it is
    for written in (ours.output_file, Path(ours.quarantine_file).name):
        assert re.fullmatch(r"[A-Za-z0-9._-]+", written), written
    seam = tmp_path / "out_odd" / "gp_events" / ours.output_file
    assert duckdb.sql(f"select count(*) from '{seam}'").fetchall() == [(30,)]
    stored = json.loads(next(seam.parent.glob("*.manifest.json")).read_text())
    assert stored["input_file"] == odd


def test_names_with_glob_or_control_characters_are_refused_and_the_others_run(tmp_path, key):
    folder = folder_with(tmp_path, {"gp_events.txt": gp_extract(10), "gp_events*.txt": gp_extract(11)})
    (folder / "gp_events\n.txt").write_bytes(gp_extract(12))
    (folder / "gp_events\tx.txt").write_bytes(gp_extract(13))
    os.close(os.open(os.fsencode(folder) + b"/gp_events\xff.txt", os.O_CREAT | os.O_WRONLY))
    result = run(folder, tmp_path / "out", key)
    assert [m.input_file for m, _ in result.done] == ["gp_events.txt"]
    reasons = {path.name: message for path, message in result.failed}
    assert reasons == {
        "gp_events\n.txt": "'gp_events\\n.txt' contains a control character (such as a newline or tab); rename it",
        "gp_events\tx.txt": "'gp_events\\tx.txt' contains a control character (such as a newline or tab); rename it",
        "gp_events*.txt": "gp_events*.txt contains a glob character (* ? [ ]), which DuckDB would expand to "
        "other files; rename it",
        "gp_events\udcff.txt": "'gp_events\\udcff.txt' is not valid UTF-8; rename it",
    }
    assert "\n" not in result.failure_message() and result.failure_message().startswith("4 extracts failed: ")


def test_a_glob_character_in_the_folder_is_refused_before_duckdb_sees_it(tmp_path, spec):
    folder = tmp_path / "extracts[1]"
    folder.mkdir()
    (folder / "gp_events.txt").write_bytes(gp_extract(3))
    with pytest.raises(StructuralError, match=r"contains a glob character"):
        load_raw(duckdb.connect(), folder / "gp_events.txt", spec)


def test_a_255_character_name_pseudonymises_with_short_derived_names(tmp_path, key):
    name = "gp_events_" + "a" * 241 + ".txt"
    assert len(name.encode()) == 255
    content = gp_extract(30) + (gp_row(31, date="2023-02-30") + "\n").encode()
    result = run(folder_with(tmp_path, {name: content}), tmp_path / "out", key)
    assert not result.failed, result.failed
    [(manifest, _)] = result.done
    assert manifest.input_file == name and manifest.rows_quarantined == 1
    written = [p.name for p in (tmp_path / "out").rglob("*") if p.is_file()] + [
        Path(manifest.quarantine_file).name
    ]
    assert written and all(len(w.encode()) <= 255 for w in written), written
    assert len(manifest.output_file) <= 255 and Path(manifest.quarantine_file).exists()


def test_safe_stem_keeps_safe_names_and_keeps_changed_names_apart():
    assert safe_stem("gp_events_2024-01.txt") == "gp_events_2024-01.txt"
    a, b = safe_stem("gp_events O'Brien.txt"), safe_stem("gp_events O;Brien.txt")
    assert a != b and a.startswith("gp_events_O_Brien.txt-") and re.fullmatch(r"[A-Za-z0-9._-]+", a)
    assert len(safe_stem("x" * 255)) == 100 and safe_stem("x" * 255) != safe_stem("x" * 254)
    assert safe_stem("..") not in ("", ".", "..")


# 6. Symbolic links


def test_a_symbolic_link_out_of_the_folder_is_refused_and_one_inside_is_read(tmp_path, key):
    folder = folder_with(tmp_path, {})
    (folder / "store").mkdir()
    inside = folder / "store" / "kept.txt"
    inside.write_bytes(gp_extract(10))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "secret.txt").write_bytes(gp_extract(11))
    (folder / "gp_events_inside.txt").symlink_to(Path("store") / "kept.txt")
    (folder / "gp_events_outside.txt").symlink_to(elsewhere / "secret.txt")
    result = run(folder, tmp_path / "out", key)
    assert [m.input_file for m, _ in result.done] == ["gp_events_inside.txt"]
    assert [(p.name, m) for p, m in result.failed] == [
        (
            "gp_events_outside.txt",
            f"gp_events_outside.txt is a symbolic link to {elsewhere / 'secret.txt'} outside the extracts "
            "folder; copy the file in instead",
        )
    ]


# 7. The same bytes twice in one run, and re-sends under another key


def test_the_same_bytes_under_two_names_are_pseudonymised_once(tmp_path, key, capsys):
    content = gp_extract(20)
    other = gp_extract(20, r5="lb")  # the same size, other bytes
    assert len(other) == len(content)
    files = {"gp_events_b.txt": content, "gp_events_a.txt": content, "gp_events_c.txt": other}
    folder = folder_with(tmp_path, files)
    result = run(folder, tmp_path / "out", key)
    assert [(p.name, q.name) for p, q in result.duplicates] == [("gp_events_b.txt", "gp_events_a.txt")]
    assert [m.input_file for m, _ in result.done] == ["gp_events_a.txt", "gp_events_c.txt"]
    shas = [m.input_sha256 for m, _ in result.done]
    assert len(set(shas)) == 2 and len(list((tmp_path / "out" / "gp_events").glob("*.parquet"))) == 2

    assert main(["pseudonymise", "--extracts", str(folder), "--out", str(tmp_path / "out2"),
                 "--key-file", str(tmp_path / "k.key"), "--today", TODAY.isoformat()]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert re.search(r"gp_events_b.txt +same bytes \(SHA-256\) as gp_events_a.txt", printed), printed


def test_a_file_pseudonymised_under_another_key_is_not_a_resend(tmp_path, key):
    folder = folder_with(tmp_path, {"gp_events.txt": gp_extract(20)})
    assert run(folder, tmp_path / "out", key).done
    other = init_key(tmp_path / "other.key")
    again = run(folder, tmp_path / "out", other)
    assert not again.resent and [m.key_id for m, _ in again.done] == [other.key_id]
    assert other.key_id != key.key_id
    third = run(folder, tmp_path / "out", other)
    assert not third.done and [p.name for p, _ in third.resent] == ["gp_events.txt"]


# 8. Every failure on one line


def test_the_failure_message_names_every_failed_extract(tmp_path, key):
    folder = folder_with(
        tmp_path,
        {
            "apc_spells.csv": b"",
            "gp_events.txt": gzip.compress(gp_extract(10)),
            "op_appointments.csv": b"AppointmentId;NHSNumber\n1;9990000018\n",
            "gp_events_good.txt": gp_extract(10),
        },
    )
    result = run(folder, tmp_path / "out", key)
    assert [m.input_file for m, _ in result.done] == ["gp_events_good.txt"]
    assert result.failure_message() == (
        "3 extracts failed: apc_spells.csv: file is empty; "
        "gp_events.txt: is a gzip-compressed file; decompress it first (ldm reads plain-text extracts); "
        "op_appointments.csv: expected ','-delimited columns, found one column; the header looks ';'-delimited"
    )
    assert BatchResult().failure_message() == ""
