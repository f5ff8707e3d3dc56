"""Set up a virtual environment from the pinned constraints and run the demo or the tests.

Usage:
    python3 tasks.py demo   # set up, then run the main job on the committed sample data
    python3 tasks.py test   # set up, then run the linters and every test

Only Python 3.11 and access to the package registry are needed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".installed"


def run(*args: str | os.PathLike) -> None:
    print("+", " ".join(str(a) for a in args), flush=True)
    subprocess.run([str(a) for a in args], cwd=ROOT, check=True)


def install_fingerprint(extras: str) -> str:
    digest = hashlib.sha256(extras.encode())
    for name in ("constraints.txt", "pyproject.toml"):
        digest.update((ROOT / name).read_bytes())
    return digest.hexdigest()


CHROMIUM = Path("/usr/bin/chromium")


def missing_system_packages() -> list[str]:
    """The system packages the tests need and this machine lacks: headless Chromium for the dashboard's
    browser tests (Playwright drives it; its own browser downloads cannot be fetched here), and a Java
    runtime for the marts on Spark (pyspark starts a JVM; Spark 4 runs on Java 17 or 21)."""
    missing = [] if CHROMIUM.exists() else ["chromium"]
    if not (shutil.which("java") or os.environ.get("JAVA_HOME")):
        missing.append("default-jre-headless")
    return missing


def install_system_packages() -> None:
    """Install the missing system packages, where apt-get exists."""
    missing = missing_system_packages()
    if not missing or not Path("/usr/bin/apt-get").exists():
        return
    sudo = ["sudo"] if os.geteuid() != 0 and Path("/usr/bin/sudo").exists() else []
    run(*sudo, "apt-get", "update", "-qq")
    run(*sudo, "apt-get", "install", "-y", "-qq", *missing)


def setup(extras: str = "dev") -> None:
    """Create .venv and install ldm and the `extras` with pinned dependencies (skipped when nothing changed)."""
    if not (BIN / "python").exists():
        run(sys.executable, "-m", "venv", VENV)
    fingerprint = install_fingerprint(extras)
    if STAMP.exists() and STAMP.read_text() == fingerprint:
        return
    run(BIN / "python", "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    run(BIN / "python", "-m", "pip", "install", "--quiet", "-c", "constraints.txt", "-e", f".[{extras}]")
    STAMP.write_text(fingerprint)


def demo() -> None:
    run(BIN / "ldm", "demo")


def test() -> None:
    install_system_packages()  # Chromium (the dashboard's browser tests) and Java (the marts on Spark)
    python_sources = [p for p in ("ldm", "models", "migrations", "tests", "tasks.py") if (ROOT / p).exists()]
    run(BIN / "ruff", "check", *python_sources)
    run(BIN / "ruff", "format", "--check", *python_sources)
    run(BIN / "sqlfluff", "lint", "--nocolor", "--processes", "0", "dbt_project/models")  # 0: every core
    # Two workers (the CI machine's two cores), each taking whole test files, so that a module's
    # store is built once, in the worker that uses it; the session fixtures are built per worker.
    # Files go out in collection order (tests/conftest.py puts the longest first), not pytest-xdist's
    # default of the most tests first, so that the two workers end together.
    run(BIN / "python", "-m", "pytest", "-q", "-n", "2", "--dist", "loadfile", "--no-loadscope-reorder",
        *sys.argv[2:])  # fmt: skip


# The extras each command installs: the tests also build the marts on Spark (the `spark` extra).
EXTRAS = {"demo": "dev", "test": "dev,spark"}


def main() -> None:
    commands = {"demo": demo, "test": test}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        sys.exit(__doc__)
    if sys.version_info < (3, 11):  # noqa: UP036 - tasks.py may be started by an older python3
        sys.exit("ldm needs Python 3.11 or newer")
    setup(EXTRAS[sys.argv[1]])
    try:
        commands[sys.argv[1]]()
    except subprocess.CalledProcessError as failure:
        sys.exit(failure.returncode)


if __name__ == "__main__":
    main()
