"""One writer at a time: a lock on the store for the whole of a run or a load.

DuckDB locks the store file only while a connection is open, but `ldm run` works on a copy of the
store for minutes and swaps it in at the end, so two runs could each copy, load and swap, and one
month would silently vanish. The lock is `<store>.lock`, held with `flock` for the whole command:
the kernel drops it when the process ends however it ends (even `kill -9`), so a lock left by a
killed run is recognised as stale by the next one, which takes it over and says so. The file
records who holds the lock and since when, so that a second run is told in one line.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import getpass
import json
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

from ldm.errors import LdmError
from ldm.store.connection import store_path


def lock_path(store: Path) -> Path:
    return store.with_name(store.name + ".lock")


def _holder() -> dict:
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "user": getpass.getuser(),
        "since": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": " ".join(Path(sys.argv[0]).name.split() + sys.argv[1:2]) or "ldm",
    }


def describe(text: str) -> str:
    """Who holds a lock, in words, from the lock file's content."""
    try:
        holder = json.loads(text)
        return (
            f"{holder['command']} (pid {holder['pid']} on {holder['host']}, user {holder['user']}) "
            f"since {holder['since']}"
        )
    except (ValueError, KeyError, TypeError):
        return "another process"


@contextlib.contextmanager
def store_lock(store: Path, notice=None) -> Iterator[None]:
    """Hold the store's lock for the block, or raise LdmError saying who holds it.

    `notice` gets a line when a stale lock (its process gone) is taken over.
    """
    store = store_path(store, must_exist=False)  # a missing folder or a folder as the store: one clear line
    path = lock_path(store.resolve())  # one lock whatever path or link names the store
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as error:
            raise LdmError(f"cannot create the lock file {path}: {error.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.pread(fd, 4096, 0).decode("utf-8", "replace")
            os.close(fd)
            raise LdmError(
                f"store {store} is locked by {describe(text)}; wait for it to end (lock file {path})"
            ) from None
        # The file may have been removed by its previous holder between our open and our lock:
        # then we hold a lock on a file nobody else can see, so start again.
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        stale = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip()
        if stale and notice:
            notice(f"took over a stale lock on {store} left by {describe(stale)}, which is no longer running")
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(_holder()).encode(), 0)
        yield
    finally:
        with contextlib.suppress(OSError):
            path.unlink()
        os.close(fd)
