"""Run the dbt project (dbt_project/) against a store, from this Python environment.

Parsing the project is a fixed cost of every dbt command (about 5 s of a small `dbt build`). dbt
re-uses an earlier parse (its partial_parse.msgpack) only when the project's files, the `--vars`,
the dbt version and the connection settings in the profile are what they were, and the profile
holds the store's path: so dbt runs in the store's folder with ``LDM_STORE`` set to the file's
name only, which makes the profile the same for every store of that name wherever it is. The parse
is kept in a cache (``LDM_DBT_CACHE``, default ``~/.cache/ldm/dbt``) under a digest of everything
dbt compares, so that a new store or a new temporary folder starts from it; dbt still checks the
saved parse itself and parses in full whenever anything differs.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

import duckdb
import yaml

from ldm.errors import LdmError

DBT_PROJECT = Path(__file__).resolve().parents[2] / "dbt_project"
# Seeds (its CSV files) are read from here as well as from dbt_project/seeds (seed-paths in dbt_project.yml).
REFERENCE = DBT_PROJECT.parent / "ldm" / "reference"
CACHE_ENV = "LDM_DBT_CACHE"
PARSE_FILE = "partial_parse.msgpack"
KEPT_PARSES = 8


def _cache_folder() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "ldm" / "dbt")


def _project_files(project: Path = DBT_PROJECT, reference: Path = REFERENCE) -> list[Path]:
    skipped = {"target", "logs", "dbt_packages", "__pycache__"}
    files = [
        path
        for path in project.rglob("*")
        if path.is_file() and not skipped.intersection(path.relative_to(project).parts)
    ]
    # Of the reference data, dbt reads the seeds (CSV files); boundaries and provenance notes are
    # for other readers, and a change to them must not recompute the marts.
    return sorted(files + [path for path in reference.rglob("*.csv") if path.is_file()])


def _parse_key(args: tuple[str, ...], store_name: str) -> str:
    """Digest of what dbt compares before re-using a parse: files, vars, dbt version, profile."""
    digest = hashlib.sha256()
    variables = args[args.index("--vars") + 1] if "--vars" in args[:-1] else ""
    digest.update(json.dumps([version("dbt-core"), version("dbt-duckdb"), variables, store_name]).encode())
    for path in _project_files():
        digest.update(str(path).encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:32]


def _restore_parse(cached: Path, target: Path) -> None:
    if cached.exists():
        target.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            shutil.copyfile(cached, target / PARSE_FILE)


def _keep_parse(target: Path, cached: Path) -> None:
    """Copy dbt's parse into the cache (atomically: other runs may be reading it); prune old ones."""
    made = target / PARSE_FILE
    if not made.exists():
        return
    with contextlib.suppress(OSError):
        cached.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=cached.parent, suffix=".part", delete=False) as handle:
            temporary = Path(handle.name)
        shutil.copyfile(made, temporary)
        os.replace(temporary, cached)
        parses = sorted(cached.parent.glob(f"*-{PARSE_FILE}"), key=lambda path: path.stat().st_mtime)
        for old in parses[:-KEPT_PARSES]:
            old.unlink(missing_ok=True)


def _die_with_parent() -> None:
    """In dbt's process, before it starts: be killed when ldm dies, however ldm dies (even kill -9).

    Otherwise a killed run leaves dbt running as an orphan, still writing the working copy. Linux
    only (prctl PR_SET_PDEATHSIG); elsewhere ldm still ends dbt when it is interrupted normally.
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1


def run_dbt(
    *args: str, store: Path, work: Path, on_line: Callable[[str], None] | None = None
) -> subprocess.CompletedProcess[str]:
    """dbt ARGS on `store`, with its target/ and logs/ under `work` (the repository stays clean).

    `on_line` is given each line of dbt's output as it comes (stderr merged into stdout).
    """
    dbt = Path(sys.executable).with_name("dbt")
    store, work = Path(store).resolve(), Path(work).resolve()
    target = work / "target"
    cached = _cache_folder() / f"{_parse_key(args, store.name)}-{PARSE_FILE}"
    _restore_parse(cached, target)
    # The store by its name, from its folder: the profile (and so the saved parse) is then the same
    # for every store of that name.
    env = {**os.environ, "LDM_STORE": store.name, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    # One OpenBLAS thread: the Python model int_inequality_indices runs its matrix products on a
    # thread per core already, and OpenBLAS's own threads then spin and more than double its CPU
    # time (its results are the same bits either way).
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    command = [
        str(dbt), *args, "--no-use-colors", "--project-dir", str(DBT_PROJECT), "--profiles-dir", str(DBT_PROJECT),
        "--target-path", str(target), "--log-path", str(work / "logs"),
    ]  # fmt: skip
    if on_line is None:
        result = subprocess.run(
            command, env=env, cwd=store.parent, capture_output=True, text=True, timeout=3600,
            preexec_fn=_die_with_parent,
        )  # fmt: skip
    else:
        result = _streamed(command, env, store.parent, on_line)
    if result.returncode == 0:
        _keep_parse(target, cached)
    return result


def _streamed(
    command: list[str], env: dict, cwd: Path, on_line: Callable[[str], None]
) -> subprocess.CompletedProcess[str]:
    lines = []
    with subprocess.Popen(
        command, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        preexec_fn=_die_with_parent,
    ) as process:  # fmt: skip
        try:
            for line in process.stdout:
                lines.append(line)
                on_line(line)
        except BaseException:  # interrupted or terminated: dbt must not go on writing the store
            process.kill()
            raise
    return subprocess.CompletedProcess(command, process.returncode, "".join(lines), "")


NODE_DONE = re.compile(r"\b(\d+) of (\d+) (OK|PASS|WARN|ERROR|FAIL|SKIP)\b")
RUN_RESULTS = "run_results.json"
SHOWN_PROBLEMS = 10


def _node_name(unique_id: str) -> str:
    """A node's name from its id: `model.ldm.int_registers`, `test.ldm.<name>.<hash>`,
    `unit_test.ldm.<model>.<name>`, `source.ldm.<source>.<table>` (shown as source.table)."""
    kind, _, *rest = unique_id.split(".")
    if kind == "test" and len(rest) > 1:
        return rest[0]
    return ".".join(rest) if kind == "source" else rest[-1]


def _rows(count: int | None) -> str:
    return "an unknown number of rows" if count is None else f"{count:,} row{'s' if count != 1 else ''}"


def _describe(result: dict, nodes: dict) -> str:
    """One line for a dbt node that failed or warned: the model, the rule and how many rows broke it."""
    uid, status = result["unique_id"], result["status"]
    node = nodes.get(uid, {})
    message = (result.get("message") or status).strip().splitlines()[0]
    if uid.startswith("unit_test."):
        return f"unit test {_node_name(uid)} of model {node.get('model', '?')} failed: {message}"
    if not uid.startswith("test."):
        return f"{uid.split('.')[0]} {_node_name(uid)}: {status}: {message}"
    if node.get("attached_node"):
        model = _node_name(node["attached_node"])
    else:  # a singular test: the models it reads
        model = ", ".join(_node_name(n) for n in node.get("depends_on", {}).get("nodes", [])) or "?"
    where = f"{model}.{node['column_name']}" if node.get("column_name") else model
    if status == "error":  # the test could not run (SQL error): dbt's message says why
        return f"{where}: test {_node_name(uid)} could not run: {message}"
    verb = "warned" if status == "warn" else "failed"
    line = f"{where}: test {_node_name(uid)} {verb}: {_rows(result.get('failures'))} broke it"
    limits = (node.get("config") or {}).get("meta") or {}
    if "max_share" in limits:  # a data-quality test (dbt_project/tests/generic): its thresholds
        limit = f"{limits['max_share']:.1%} of rows and {limits['min_rows']:,} rows"
        line += f" (it fails above {limit})" if status == "warn" else f" (more than {limit})"
    return line


def dbt_problems(target: Path) -> tuple[list[str], list[str]]:
    """What failed and what warned in dbt's last run in `target`, one line each, from its artifacts.

    run_results.json gives each node's status, message and, for a test, the number of failing rows
    (`failures`); manifest.json gives the model and column a test is attached to. Log lines are not
    read: their wording changes between dbt versions, and they name the test, not the model.
    """
    results_path = target / RUN_RESULTS
    if not results_path.exists():
        return [], []
    results = json.loads(results_path.read_text())["results"]
    manifest_path = target / "manifest.json"
    nodes: dict = {}
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        nodes = {**manifest.get("nodes", {}), **manifest.get("unit_tests", {})}
    failed = [_describe(r, nodes) for r in results if r["status"] in ("error", "fail", "runtime error")]
    warned = [_describe(r, nodes) for r in results if r["status"] == "warn"]
    return failed, warned


def _listed(lines: list[str]) -> str:
    shown = lines[:SHOWN_PROBLEMS]
    more = (
        [f"... and {len(lines) - len(shown)} more (dbt's run_results.json)"]
        if len(lines) > len(shown)
        else []
    )
    return "\n".join(f"  {line}" for line in shown + more)


def definitions_digest(project: Path = DBT_PROJECT, reference: Path = REFERENCE) -> str:
    """Digest of what the marts are computed under: the dbt project's files and the reference data.

    The marts keep the periods they have built (int_periods, mart_periods); a period built under
    another digest is computed again, so a changed register rule, codelist or lookup never leaves
    old periods computed the old way beside new ones.
    """
    digest = hashlib.sha256()
    for path in _project_files(project, reference):
        name = str(path.relative_to(project.parent)).encode()
        digest.update(name + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]


SERIES_TABLE = ("marts", "mart_periods")


def series_columns() -> list[str]:
    """The columns of mart_periods, from its contract (models/marts/mart_periods.yml)."""
    document = yaml.safe_load((DBT_PROJECT / "models" / "marts" / "mart_periods.yml").read_text())
    (model,) = [model for model in document["models"] if model["name"] == SERIES_TABLE[1]]
    return [column["name"] for column in model["columns"]]


def has_series(store: Path) -> bool:
    """Whether the store holds the marts' series of periods (marts.mart_periods) from an earlier
    build, in the shape this project builds.

    Without it the marts are built afresh (dbt's --full-refresh): a store from before the series, or
    a new one, has no periods to keep, and a store whose mart_periods lacks a column of the contract
    was built by an older ldm, whose marts may have an older shape too.
    """
    if not Path(store).exists():
        return False
    con = duckdb.connect(str(store), read_only=True)
    try:
        present = {
            row[0]
            for row in con.execute(
                "select column_name from information_schema.columns where table_schema = ? and table_name = ?",
                list(SERIES_TABLE),
            ).fetchall()
        }
    finally:
        con.close()
    return bool(present) and set(series_columns()) <= present


def build_marts(
    store: Path,
    work: Path,
    variables: dict | None = None,
    advance: Callable[[int, int], None] | None = None,
    full_refresh: bool = False,
    unit_tests: bool = False,
) -> str:
    """`dbt build` (models, seeds, tests); return dbt's closing summary or raise with what failed.

    dbt's unit tests are left out unless `unit_tests`: they check the models' SQL on the fixtures in
    the marts' YAML, not the month's data, so, as dbt advises, they run where the SQL changes (the
    test command runs them on both engines), not in every production build.

    The marts are a series of periods: a build adds the periods not yet built under the current
    definitions (definitions_digest()) and keeps the rest; `full_refresh`, or a store without the
    series, computes every period.

    A failure is raised as one line per failing node, naming the model, the rule (the test) and how
    many rows broke it. Tests that warned (data-quality tests under their share) follow the summary
    with their counts, so that the run's closing lines and the audit's record of the build show them.
    `advance(1, total)` is called as each of dbt's `total` nodes finishes.
    """
    variables = {"definitions_digest": definitions_digest(), **(variables or {})}
    extra = ["--vars", json.dumps(variables)]
    if full_refresh or not has_series(store):
        extra.append("--full-refresh")
    if not unit_tests:
        extra += ["--exclude-resource-type", "unit_test"]

    def on_line(line: str) -> None:
        if done := NODE_DONE.search(line):
            advance(1, int(done.group(2)))

    target = Path(work).resolve() / "target"
    (target / RUN_RESULTS).unlink(missing_ok=True)  # an earlier run's results must not be read as this one's
    result = run_dbt("build", *extra, store=store, work=work, on_line=on_line if advance else None)
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    failed, warned = dbt_problems(target)
    if result.returncode != 0:
        if any("No space left on device" in line for line in lines):
            raise LdmError(
                f"dbt build failed: no space left on device for {store}; free some space and run again"
            )
        if failed:
            raise LdmError(f"dbt build failed:\n{_listed(failed)}")
        # Nothing ran (the project did not parse or compile): dbt's own error lines say why.
        errors = [line for line in lines if "ERROR" in line or "FAIL" in line or "Error" in line][-5:]
        raise LdmError("dbt build failed:\n" + "\n".join(errors or lines[-10:]))
    summary = next((line for line in reversed(lines) if "PASS=" in line), lines[-1] if lines else "")
    # dbt's closing line is "HH:MM:SS  Done. PASS=..."; its counts alone, as the Spark build's summary
    # starts (the time of day is dbt's log stamp, not part of what was built).
    summary = summary[summary.index("PASS=") :] if "PASS=" in summary else summary
    if warned:  # on the summary's line: it is printed and sealed in the audit as one line
        summary += "; " + "; ".join(warned)
    return summary
