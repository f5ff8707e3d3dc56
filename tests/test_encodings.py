"""The encodings providers send: real files in tmp_path, read by real DuckDB (no mocks)."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import duckdb
import pytest

from ldm.errors import LdmError
from ldm.feeds.read import SNIFF_BYTES, RowsError, StructuralError, check_structure, load_raw
from ldm.feeds.spec import builtin_specs, load_spec
from ldm.feeds.transcode import ENCODINGS, readable_copy, transcode_to
from ldm.pseudonymise.extract import _read_and_scan

GP_HEADER = "EventId|PatientNHSNumber|PracticeCode|EventDate|ConceptId|Value|Unit"


def gp_text(*units: str) -> str:
    """A gp_events extract whose rows carry `units` in the Unit column, one row each."""
    rows = [
        f'{n}|"9999191932"|"B86086"|"2023-04-06"|"27113001"|109.5|"{unit}"' for n, unit in enumerate(units, 1)
    ]
    return "\n".join([GP_HEADER, *rows]) + "\n"


def spec_in(encoding: str):
    return dataclasses.replace(builtin_specs()["gp_events"], encoding=encoding)


def units_read(path: Path, encoding: str) -> list[str]:
    con = duckdb.connect()
    load_raw(con, path, spec_in(encoding))
    return [row[0] for row in con.execute('select "Unit" from raw order by rowid').fetchall()]


def test_cp1252_characters_reach_duckdb_as_unicode(tmp_path):
    path = tmp_path / "gp_events_cp1252.txt"
    units = ["€ per kg", "O’Brien’s", "café", "Œuvre—ŸŽ"]  # 0x80, 0x92, 0xE9, 0x8C 0x97 0x9F 0x8E
    path.write_bytes(gp_text(*units).encode("cp1252"))
    assert units_read(path, "cp1252") == units


@pytest.mark.parametrize("spelling", ["windows-1252", "Windows-1252", "CP1252"])
def test_windows_1252_spellings(tmp_path, spelling):
    path = tmp_path / "gp_events.txt"
    path.write_bytes(gp_text("€5", "naïve").encode("cp1252"))
    assert units_read(path, spelling) == ["€5", "naïve"]


@pytest.mark.parametrize("spelling", ["latin-1", "latin1", "ISO-8859-1"])
def test_latin1(tmp_path, spelling):
    path = tmp_path / "gp_events_latin1.txt"
    path.write_bytes(gp_text("café", "Ångström ½").encode("latin-1"))
    assert units_read(path, spelling) == ["café", "Ångström ½"]


def test_latin1_bytes_0x80_to_0x9f_are_the_c1_controls_python_decodes(tmp_path):
    """DuckDB's own latin-1 refuses these bytes; Python's latin-1 (ISO-8859-1) maps them to U+0080-U+009F."""
    path = tmp_path / "gp_events_latin1.txt"
    path.write_bytes(gp_text("x").encode("latin-1").replace(b'"x"', b'"\x80\x9f"'))
    assert units_read(path, "latin-1") == ["\x80\x9f"]


@pytest.mark.parametrize("python_codec", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_with_bom(tmp_path, python_codec):
    """Both byte orders (DuckDB alone reads big-endian as no rows) and a character beyond the BMP."""
    path = tmp_path / "gp_events_utf16.txt"
    units = ["é€", "𝄞 clef", "日本"]
    content = gp_text(*units).encode(python_codec)
    bom = {"utf-16-le": b"\xff\xfe", "utf-16-be": b"\xfe\xff"}.get(python_codec, b"")
    path.write_bytes(bom + content)
    assert check_structure(path, spec_in("UTF-16"))[0] == "EventId"
    assert units_read(path, "utf-16") == units


@pytest.mark.parametrize("spelling", ["utf-8", "utf8", "UTF-8-SIG"])
def test_utf8_with_bom_keeps_the_first_column_name(tmp_path, spelling):
    path = tmp_path / "gp_events_bom.txt"
    path.write_bytes(b"\xef\xbb\xbf" + gp_text("café").encode("utf-8"))
    spec = spec_in(spelling)
    assert check_structure(path, spec)[0] == "EventId"
    con = duckdb.connect()
    load_raw(con, path, spec)
    names = [row[0] for row in con.execute("select name from pragma_table_info('raw')").fetchall()]
    assert names[0] == "EventId"
    assert con.execute('select "EventId", "Unit" from raw').fetchall() == [("1", "café")]


def test_undecodable_cp1252_byte_in_the_header_sniff(tmp_path):
    path = tmp_path / "gp_events.txt"
    content = gp_text("a", "b", "c\x81d").encode("latin-1")  # 0x81 has no character in windows-1252
    path.write_bytes(content)
    offset = content.index(b"\x81")
    with pytest.raises(StructuralError) as raised:
        load_raw(duckdb.connect(), path, spec_in("cp1252"))
    assert str(raised.value) == f"{path}: byte 0x81 at byte {offset} (line 4) is not valid windows-1252"


def test_undecodable_cp1252_byte_past_the_first_mib(tmp_path):
    """Past the header check's sniff, the streaming transcoder finds it, with the same message."""
    path = tmp_path / "gp_events.txt"
    rows = SNIFF_BYTES // 60 + 100
    content = (
        gp_text(*(["é"] * rows)).encode("cp1252") + b'0|"9999191932"|"B86086"|"2023-04-06"|"1"|1|"\x80\x81"\n'
    )
    path.write_bytes(content)
    offset = content.index(b"\x81")
    assert offset > SNIFF_BYTES
    with pytest.raises(RowsError) as raised:
        load_raw(duckdb.connect(), path, spec_in("windows-1252"))
    assert (
        str(raised.value) == f"{path}: byte 0x81 at byte {offset} (line {rows + 2}) is not valid windows-1252"
    )


@pytest.mark.parametrize("chunk_bytes", [1, 2, 3, 5, 7, 64])
def test_utf16_decodes_across_chunk_boundaries(tmp_path, chunk_bytes):
    """Small chunks split the BOM, code units and surrogate pairs; the UTF-8 copy is still exact."""
    path = tmp_path / "gp_events_utf16.txt"
    units = ["𝄞" * 3, "é€", "😀x😀"] * 20
    text = gp_text(*units)
    path.write_bytes(text.encode("utf-16"))
    assert path.stat().st_size > 10 * chunk_bytes
    target = tmp_path / "copy.txt"
    transcode_to(path, target, "utf-16", chunk_bytes=chunk_bytes)
    assert target.read_bytes() == text.encode("utf-8")
    with readable_copy(path, "utf-16", chunk_bytes=chunk_bytes) as readable:
        rows = (
            duckdb.connect()
            .execute(
                "select \"Unit\" from read_csv(?, delim = '|', header = true, auto_detect = false, "
                "columns = {'EventId': 'VARCHAR', 'PatientNHSNumber': 'VARCHAR', 'PracticeCode': 'VARCHAR', "
                "'EventDate': 'VARCHAR', 'ConceptId': 'VARCHAR', 'Value': 'VARCHAR', 'Unit': 'VARCHAR'})",
                [str(readable)],
            )
            .fetchall()
        )
    assert [row[0] for row in rows] == units
    assert not readable.exists()


def test_undecodable_byte_offset_and_line_across_chunks(tmp_path):
    path = tmp_path / "gp_events.txt"
    content = gp_text("a", "bb", "ccc").encode("cp1252") + b'9|"x"|"y"|"z"|"1"|1|"\x8d"\n'
    path.write_bytes(content)
    offset = content.index(b"\x8d")
    for chunk_bytes in (1, 4, 13, offset, offset + 1):
        with pytest.raises(
            ValueError, match=rf"byte 0x8D at byte {offset} \(line 5\) is not valid windows-1252"
        ):
            transcode_to(path, tmp_path / "copy.txt", "cp1252", chunk_bytes=chunk_bytes)


def test_truncated_utf16_names_the_end_of_the_file(tmp_path):
    path = tmp_path / "gp_events_utf16.txt"
    content = gp_text("é").encode("utf-16") + b"\x41"  # an odd number of bytes
    path.write_bytes(content)
    with pytest.raises(ValueError, match=rf"ends inside a character at byte {len(content) - 1} \(line 3\)"):
        transcode_to(path, tmp_path / "copy.txt", "utf-16", chunk_bytes=5)


def test_the_copy_is_removed_when_duckdb_fails(tmp_path):
    path = tmp_path / "gp_events.txt"
    path.write_bytes((gp_text("é") + "2|ragged\n").encode("cp1252"))
    with pytest.raises(RowsError) as raised:
        load_raw(duckdb.connect(), path, spec_in("cp1252"))
    assert str(raised.value).startswith(f"{path}: ") and "ldm-transcoded-" not in str(raised.value)
    with pytest.raises(RuntimeError), readable_copy(path, "cp1252") as readable:
        assert readable != path and readable.exists()
        raise RuntimeError("boom")
    assert not readable.exists()


def test_the_checksum_is_of_the_bytes_received(tmp_path):
    path = tmp_path / "gp_events.txt"
    content = gp_text("€", "é").encode("cp1252")
    path.write_bytes(content)
    con = duckdb.connect()
    scan = _read_and_scan(con, path, spec_in("cp1252"), None)
    assert scan.sha256 == hashlib.sha256(content).hexdigest()
    assert con.execute('select "Unit" from raw order by rowid').fetchall() == [("€",), ("é",)]


def test_an_unknown_encoding_is_refused_in_one_line(tmp_path):
    path = tmp_path / "gp_events.txt"
    path.write_bytes(gp_text("a").encode())
    with pytest.raises(StructuralError) as raised:
        load_raw(duckdb.connect(), path, spec_in("ebcdic"))
    message = str(raised.value)
    assert "\n" not in message and "'ebcdic' is not supported" in message
    assert all(spelling in message for spelling in ENCODINGS)
    source = builtin_specs()["gp_events"].path.read_text(encoding="utf-8")
    spec_file = tmp_path / "gp_events.yaml"
    spec_file.write_text(source.replace("encoding: utf-8", "encoding: shift_jis"), encoding="utf-8")
    with pytest.raises(LdmError, match=r"format: encoding 'shift_jis' is not supported \(accepted: utf-8, "):
        load_spec(spec_file)
    spec_file.write_text(source.replace("encoding: utf-8", "encoding: Windows-1252"), encoding="utf-8")
    assert load_spec(spec_file).encoding == "Windows-1252"
