"""Run the dbt project (dbt_project/) against a store, from this Python environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from ldm.errors import LdmError

DBT_PROJECT = Path(__file__).resolve().parents[2] / "dbt_project"


def run_dbt(*args: str, store: Path, work: Path) -> subprocess.CompletedProcess[str]:
    """dbt ARGS on `store`, with its target/ and logs/ under `work` (the repository stays clean)."""
    dbt = Path(sys.executable).with_name("dbt")
    env = {**os.environ, "LDM_STORE": str(store), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    command = [
        str(dbt), *args, "--no-use-colors", "--project-dir", str(DBT_PROJECT), "--profiles-dir", str(DBT_PROJECT),
        "--target-path", str(work / "target"), "--log-path", str(work / "logs"),
    ]  # fmt: skip
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=3600)


def build_marts(store: Path, work: Path, variables: dict | None = None) -> str:
    """`dbt build` (models, seeds, tests); return dbt's closing summary or raise with its errors."""
    extra = ["--vars", json.dumps(variables)] if variables else []
    result = run_dbt("build", *extra, store=store, work=work)
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    if result.returncode != 0:
        failures = [line for line in lines if "ERROR" in line or "FAIL" in line][-5:]
        raise LdmError("dbt build failed:\n" + "\n".join(failures or lines[-10:]))
    return next((line for line in reversed(lines) if "PASS=" in line), lines[-1] if lines else "")
