"""The master key file, its key id and purpose keys: the key policy as tests."""

from __future__ import annotations

import argparse
import hashlib
import hmac
import os
import pickle
import stat
from pathlib import Path

import pytest

from ldm.errors import LdmError
from ldm.pseudonymise import keys
from ldm.pseudonymise.keys import MasterKey, init_key, load_key


def key_text(path: Path) -> str:
    return path.read_text(encoding="ascii").strip()


def write_key_file(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text, encoding="ascii")
    path.chmod(mode)
    return path


def hkdf_sha256(key: bytes, info: bytes, length: int = 32) -> bytes:
    """RFC 5869 written out with hmac, to check the derivation independently of cryptography."""
    prk = hmac.new(b"\0" * 32, key, hashlib.sha256).digest()  # no salt: a block of zeros
    output, block, counter = b"", b"", 1
    while len(output) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        output += block
        counter += 1
    return output[:length]


def test_init_key_writes_256_bits_as_hex_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    key = init_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = key_text(path)
    assert len(text) == 64 and bytes.fromhex(text)
    assert load_key(path) == key


def test_init_key_is_0600_even_with_a_permissive_umask(tmp_path: Path) -> None:
    previous = os.umask(0)
    try:
        init_key(tmp_path / "master.key")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "master.key").stat().st_mode) == 0o600


def test_init_key_makes_a_new_key_each_time(tmp_path: Path) -> None:
    assert init_key(tmp_path / "a.key") != init_key(tmp_path / "b.key")


def test_init_key_refuses_to_overwrite_and_leaves_the_file_alone(tmp_path: Path) -> None:
    path = write_key_file(tmp_path / "master.key", "a" * 64 + "\n")
    with pytest.raises(LdmError, match="already exists") as error:
        init_key(path)
    assert str(path) in str(error.value)
    assert key_text(path) == "a" * 64


def test_init_key_refuses_a_path_inside_a_git_repository(tmp_path: Path) -> None:
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    (tmp_path / "repo" / "secrets").mkdir()
    path = tmp_path / "repo" / "secrets" / "master.key"
    with pytest.raises(LdmError, match="git repository"):
        init_key(path)
    assert not path.exists()


def test_init_key_into_a_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(LdmError, match="cannot create key file"):
        init_key(tmp_path / "no such directory" / "master.key")


def test_load_key_reads_the_file_named_by_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = init_key(tmp_path / "master.key")
    monkeypatch.setenv("LDM_KEY_FILE", str(tmp_path / "master.key"))
    assert load_key() == key


def test_load_key_without_a_path_or_environment_says_how_to_give_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("LDM_KEY_FILE", raising=False)
    with pytest.raises(LdmError, match="LDM_KEY_FILE"):
        load_key()


def test_load_key_names_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(LdmError, match="does not exist") as error:
        load_key(tmp_path / "absent.key")
    assert "absent.key" in str(error.value)


def test_load_key_refuses_a_directory(tmp_path: Path) -> None:
    with pytest.raises(LdmError, match="not a regular file"):
        load_key(tmp_path)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o606, 0o700 | 0o020])
def test_load_key_rejects_group_or_other_access(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "master.key"
    init_key(path)
    path.chmod(mode)
    with pytest.raises(LdmError, match=f"chmod 600 {path}"):
        load_key(path)


def test_load_key_accepts_owner_read_only(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    key = init_key(path)
    path.chmod(0o400)
    assert load_key(path) == key


@pytest.mark.parametrize(
    "text",
    [
        "",
        "a" * 63,
        "a" * 65,
        "g" * 64,
        "0x" + "a" * 62,
        "a" * 32 + " " + "a" * 32,
        "correct horse battery staple",
    ],
)
def test_load_key_rejects_malformed_content_without_quoting_it(tmp_path: Path, text: str) -> None:
    path = write_key_file(tmp_path / "master.key", text)
    with pytest.raises(LdmError, match="malformed: expected one line of 64 hexadecimal") as error:
        load_key(path)
    if text:
        assert text not in str(error.value)


def test_load_key_rejects_binary_content(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    path.write_bytes(bytes(range(256)))
    path.chmod(0o600)
    with pytest.raises(LdmError, match="malformed"):
        load_key(path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read any file")
def test_load_key_reports_an_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    init_key(path)
    path.chmod(0o000)
    try:
        with pytest.raises(LdmError, match="cannot read key file"):
            load_key(path)
    finally:
        path.chmod(0o600)


def test_load_key_accepts_upper_case_hex_and_surrounding_whitespace(tmp_path: Path) -> None:
    lower = write_key_file(tmp_path / "lower.key", "ab" * 32)
    upper = write_key_file(tmp_path / "upper.key", "\n  " + "AB" * 32 + "  \n")
    assert load_key(lower) == load_key(upper)


def test_key_id_is_the_documented_fingerprint_and_stable(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    key = init_key(path)
    secret = bytes.fromhex(key_text(path))
    expected = hmac.new(secret, b"ldm key id v1", hashlib.sha256).hexdigest()[:16]
    assert key.key_id == expected
    assert load_key(path).key_id == expected
    assert load_key(path).key_id == load_key(path).key_id


def test_key_id_reveals_no_part_of_the_key(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    key = init_key(path)
    text = key_text(path)
    assert key.key_id not in text
    assert key.key_id != hashlib.sha256(bytes.fromhex(text)).hexdigest()[:16]
    assert not any(text[i : i + 8] in key.key_id for i in range(0, 57))


def test_master_key_never_shows_its_bytes(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    key = init_key(path)
    text = key_text(path)
    for shown in (repr(key), str(key), f"{key}", repr([key])):
        assert text not in shown and text.upper() not in shown
        assert key.key_id in shown
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(key)
    with pytest.raises(AttributeError):
        key.key_id = "0" * 16  # type: ignore[misc]


def test_purpose_keys_are_hkdf_sha256_with_the_documented_info(tmp_path: Path) -> None:
    path = write_key_file(tmp_path / "master.key", "0f" * 32)
    key = load_key(path)
    secret = bytes.fromhex("0f" * 32)
    assert key.purpose_key("linkage") == hkdf_sha256(secret, b"ldm/linkage")
    assert key.purpose_key("release:asthma-audit") == hkdf_sha256(secret, b"ldm/release:asthma-audit")


def test_purpose_keys_differ_by_purpose_and_project(tmp_path: Path) -> None:
    key = init_key(tmp_path / "master.key")
    derived = [
        key.purpose_key("linkage"),
        key.purpose_key(keys.release_purpose("project-a")),
        key.purpose_key(keys.release_purpose("project-b")),
    ]
    assert len(set(derived)) == 3
    assert all(len(purpose_key) == 32 for purpose_key in derived)
    assert key.purpose_key("linkage") == key.purpose_key("linkage")
    assert bytes.fromhex(key_text(tmp_path / "master.key")) not in derived


def test_purpose_keys_differ_between_master_keys(tmp_path: Path) -> None:
    first, second = init_key(tmp_path / "a.key"), init_key(tmp_path / "b.key")
    assert first.purpose_key("linkage") != second.purpose_key("linkage")


@pytest.mark.parametrize("purpose", ["", "Linkage", "release:", "release: x", "research", "x/y"])
def test_unknown_purposes_are_refused(tmp_path: Path, purpose: str) -> None:
    key = init_key(tmp_path / "master.key")
    with pytest.raises(LdmError, match="unknown key purpose"):
        key.purpose_key(purpose)


def test_master_key_must_be_32_bytes() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        MasterKey(b"short")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ldm")
    keys.register(parser.add_subparsers(dest="command"))
    return parser


def test_cli_keys_init_prints_path_and_key_id_but_never_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "master.key"
    args = build_parser().parse_args(["keys", "init", "--out", str(path)])
    assert args.handler(args) == 0
    output = capsys.readouterr().out
    assert str(path) in output
    assert load_key(path).key_id in output
    assert key_text(path) not in output


def test_cli_keys_init_refuses_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    init_key(path)
    args = build_parser().parse_args(["keys", "init", "--out", str(path)])
    with pytest.raises(LdmError, match="already exists"):
        args.handler(args)


def test_cli_keys_id_prints_the_key_id(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "master.key"
    key = init_key(path)
    args = build_parser().parse_args(["keys", "id", "--key-file", str(path)])
    assert args.handler(args) == 0
    assert capsys.readouterr().out.strip() == key.key_id


@pytest.mark.parametrize(
    ("argv", "expected"),
    [(["keys", "--help"], "master key"), (["keys", "init", "--help"], "--out FILE")],
)
def test_cli_help_on_both_levels(argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(argv)
    assert exit_.value.code == 0
    assert expected in capsys.readouterr().out


def test_cli_keys_without_an_action_shows_help(capsys: pytest.CaptureFixture[str]) -> None:
    args = build_parser().parse_args(["keys"])
    assert args.handler(args) == 2
    assert "init" in capsys.readouterr().out
