"""The secret master key, its public key id, and the purpose keys derived from it.

Key policy, as code:
- One master key of 256 random bits, stored as 64 hexadecimal characters in a file readable by
  its owner only (mode 0600), outside the repository and the store. The file is named by
  `--key-file` or the `LDM_KEY_FILE` environment variable; a key never travels on a command line.
- The key id is the first 16 hex characters of HMAC-SHA256(master key, b"ldm key id v1"). It
  identifies which key produced a batch (it goes into every manifest and log), but reveals
  nothing about the key: without the key it cannot be computed, and it does not help to guess it.
- Nothing uses the master key directly. Each use gets a purpose key, derived with HKDF-SHA256
  (RFC 5869, no salt, info = b"ldm/" + purpose):
    "linkage"            keys the tokens that link records to one person;
    "audit"              keys the store's audit chain, so that rewriting the chain needs the key;
    "release:<project>"  keys the person ids released to one analysis project, so that ids
                         released to two projects cannot be joined with each other or with the
                         linkage tokens.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import os
import re
import secrets
import stat
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ldm.errors import LdmError

KEY_BYTES = 32  # 256 bits
KEY_FILE_ENV = "LDM_KEY_FILE"
LINKAGE = "linkage"
AUDIT = "audit"
RELEASE_PREFIX = "release:"

_KEY_ID_MESSAGE = b"ldm key id v1"
_KEY_ID_HEX_CHARS = 16
_KEY_TEXT = re.compile(r"[0-9a-fA-F]{64}")
_PROJECT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class MasterKey:
    """The master key in memory: it derives purpose keys and never shows its bytes.

    repr and str show the key id only, and pickling is refused, so that the key cannot end up
    in a log line, a traceback, a cache file or a message to a worker process by accident.
    """

    __slots__ = ("_secret", "key_id")

    def __init__(self, secret: bytes) -> None:
        if not isinstance(secret, bytes) or len(secret) != KEY_BYTES:
            raise ValueError(f"a master key is exactly {KEY_BYTES} bytes")
        object.__setattr__(self, "_secret", secret)
        object.__setattr__(self, "key_id", _key_id(secret))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("a MasterKey is immutable")

    def purpose_key(self, purpose: str) -> bytes:
        """The 32-byte key for one purpose: "linkage" or "release:<project>"."""
        check_purpose(purpose)
        hkdf = HKDF(
            algorithm=hashes.SHA256(),
            length=KEY_BYTES,
            salt=None,
            info=b"ldm/" + purpose.encode("utf-8"),
        )
        return hkdf.derive(self._secret)

    def __repr__(self) -> str:
        return f"MasterKey(key_id={self.key_id!r})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MasterKey):
            return NotImplemented
        return hmac.compare_digest(self._secret, other._secret)

    def __hash__(self) -> int:
        return hash(self.key_id)

    def __reduce__(self) -> object:
        raise TypeError("a MasterKey cannot be pickled: pass purpose keys, not the master key")


def _key_id(secret: bytes) -> str:
    """Public fingerprint of a key: a keyed hash, so it cannot be computed without the key."""
    return hmac.new(secret, _KEY_ID_MESSAGE, hashlib.sha256).hexdigest()[:_KEY_ID_HEX_CHARS]


def release_purpose(project: str) -> str:
    """The purpose name for person ids released to one analysis project."""
    purpose = RELEASE_PREFIX + project
    check_purpose(purpose)
    return purpose


def check_purpose(purpose: str) -> None:
    """Refuse purposes outside the policy, so a typo cannot silently create a new key space."""
    if purpose in (LINKAGE, AUDIT):
        return
    if (
        isinstance(purpose, str)
        and purpose.startswith(RELEASE_PREFIX)
        and _PROJECT_NAME.fullmatch(purpose[len(RELEASE_PREFIX) :])
    ):
        return
    raise LdmError(
        f"unknown key purpose {purpose!r}: use {LINKAGE!r}, {AUDIT!r} or {RELEASE_PREFIX!r} followed by a "
        "project name of letters, digits, '.', '_' or '-'"
    )


def init_key(path: str | os.PathLike[str]) -> MasterKey:
    """Write a new random master key to `path` (mode 0600), refusing to replace any file.

    O_CREAT|O_EXCL makes creation atomic: if the file exists, or appears meanwhile, nothing is
    written, because overwriting a key would orphan every token made with it.
    """
    path = Path(path)
    repository = _enclosing_git_repository(path)
    if repository is not None:
        raise LdmError(
            f"refusing to write a key inside the git repository {repository}: "
            "keep key files outside the repository and the store"
        )
    secret = secrets.token_bytes(KEY_BYTES)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise LdmError(
            f"key file {path} already exists; refusing to overwrite it "
            "(tokens made with it could never be reproduced)"
        ) from None
    except OSError as error:
        raise LdmError(f"cannot create key file {path}: {error.strerror}") from None
    try:
        os.fchmod(fd, 0o600)  # the umask can only narrow the mode, but be explicit
        os.write(fd, secret.hex().encode("ascii") + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    return MasterKey(secret)


def load_key(path: str | os.PathLike[str] | None = None) -> MasterKey:
    """Read the master key from `path`, or from the file named by LDM_KEY_FILE.

    Every failure is an LdmError that says what to do; no message ever quotes the file content.
    """
    if path is None:
        from_env = os.environ.get(KEY_FILE_ENV, "").strip()
        if not from_env:
            raise LdmError(
                f"no key file given: pass --key-file FILE or set {KEY_FILE_ENV} "
                "(create one with `ldm keys init --out FILE`)"
            )
        path = from_env
    path = Path(path)
    try:
        status = path.stat()
    except FileNotFoundError:
        raise LdmError(f"key file {path} does not exist") from None
    except OSError as error:
        raise LdmError(f"cannot read key file {path}: {error.strerror}") from None
    if not stat.S_ISREG(status.st_mode):
        raise LdmError(f"key file {path} is not a regular file")
    if os.name == "posix" and status.st_mode & 0o077:
        raise LdmError(
            f"key file {path} can be read or written by group or others "
            f"(mode {stat.S_IMODE(status.st_mode):04o}); run: chmod 600 {path}"
        )
    try:
        text = path.read_bytes().decode("ascii").strip()
    except PermissionError:
        raise LdmError(f"cannot read key file {path}: permission denied") from None
    except UnicodeDecodeError:
        text = ""
    except OSError as error:
        raise LdmError(f"cannot read key file {path}: {error.strerror}") from None
    if not _KEY_TEXT.fullmatch(text):
        raise LdmError(
            f"key file {path} is malformed: expected one line of 64 hexadecimal characters (a 256-bit key)"
        )
    return MasterKey(bytes.fromhex(text))


def _enclosing_git_repository(path: Path) -> Path | None:
    """The git work tree that would contain `path`, if any."""
    directory = path.expanduser().absolute().parent
    for candidate in (directory, *directory.parents):
        if (candidate / ".git").exists():
            return candidate
    return None


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `ldm keys init` and `ldm keys id`."""
    keys = subparsers.add_parser(
        "keys",
        help="create the master key or show its key id",
        description=(
            "Manage the secret master key that keys every pseudonymisation token. "
            "The key lives in a file outside the repository, readable by its owner only."
        ),
    )
    keys.set_defaults(handler=lambda args: _print_help(keys))
    actions = keys.add_subparsers(dest="keys_command", metavar="ACTION")

    init = actions.add_parser(
        "init",
        help="write a new random 256-bit master key to a file (mode 0600)",
        description=(
            "Write a new random 256-bit master key to FILE with mode 0600 and print its key id. "
            "An existing file is never overwritten. Keep the file outside the repository, back "
            "it up under your key policy, and point LDM_KEY_FILE at it."
        ),
    )
    init.add_argument("--out", required=True, type=Path, metavar="FILE", help="new key file to create")
    init.set_defaults(handler=_init_command)

    key_id = actions.add_parser(
        "id",
        help="print the key id of an existing key file",
        description="Print the key id (a fingerprint that reveals nothing) of a master key.",
    )
    key_id.add_argument(
        "--key-file",
        type=Path,
        metavar="FILE",
        help=f"key file to read (default: the file named by {KEY_FILE_ENV})",
    )
    key_id.set_defaults(handler=_id_command)


def _print_help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _init_command(args: argparse.Namespace) -> int:
    key = init_key(args.out)
    print(f"wrote new master key to {args.out} (mode 0600)")
    print(f"key id: {key.key_id}")
    return 0


def _id_command(args: argparse.Namespace) -> int:
    print(load_key(args.key_file).key_id)
    return 0
