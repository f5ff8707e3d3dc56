"""Settings of a run: defaults, then a TOML file, then environment variables (strongest).

The file is `ldm.toml` in the working folder, or the one named by LDM_CONFIG or --config;
`ldm.example.toml` in the repository documents every setting with its default.
"""

from __future__ import annotations

import datetime
import os
import re
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path

from ldm import dialects
from ldm.errors import LdmError

CONFIG_ENV = "LDM_CONFIG"
DEFAULT_FILE = Path("ldm.toml")


@dataclass(frozen=True)
class Settings:
    key_file: Path | None = None  # master key file (env LDM_KEY_FILE)
    store: Path | None = None  # the DuckDB store (env LDM_STORE)
    pseudonymised: Path | None = None  # where pseudonymised extracts go; default beside the store
    reporting_period_end: datetime.date = datetime.date(2025, 3, 31)  # env LDM_REPORTING_PERIOD_END
    today: datetime.date | None = None  # dates after this are "in the future"; default: the real today
    max_quarantined_share: float = 0.05  # env LDM_MAX_QUARANTINED
    link_threshold: float = 4.0  # minimum probabilistic match weight (env LDM_LINK_THRESHOLD)
    # File-name patterns in the extracts folder that no spec reads and `ldm run` leaves alone
    # (env LDM_IGNORE, comma-separated); any other file no spec recognises stops the run.
    ignore: tuple[str, ...] = ()
    # Folder of feed specs, one per provider's extract (env LDM_SPECS); default: the built-in specs.
    specs: Path | None = None
    # The engine that links and builds the marts (env LDM_ENGINE): duckdb, in the store, or spark: each
    # batch linked on a Spark session (spark_master), then the marts built there by dbt-spark in the warehouse
    # `spark_dir` and copied into the store. The store's own writes are DuckDB's either way
    # (docs/spark.md).
    engine: str = dialects.DEFAULT
    # The Spark warehouse and metastore of engine spark (env LDM_SPARK_DIR); default beside the store.
    spark_dir: Path | None = None
    # The local Spark session's memory (env LDM_SPARK_MEMORY; the JVM's heap, taken as it is needed):
    # 2g runs out at 100,000 persons, in the aggregations of the utilisation marts.
    spark_memory: str = "8g"
    # The Spark master of engine spark (env LDM_SPARK_MASTER). Unset: local[N], every task in this
    # process's JVM on its N cores. A cluster's (spark://host:7077, yarn, k8s://https://host:443, or
    # local-cluster[W,C,M] on one machine) runs the tasks in executors, which must see spark_dir at
    # the same path and have ldm installed (docs/spark.md, "Running it on a cluster").
    spark_master: str | None = None

    def pseudonymised_dir(self) -> Path:
        if self.pseudonymised:
            return self.pseudonymised
        if self.store is None:
            raise LdmError("no store given: pass --store FILE or set LDM_STORE")
        return self.store.with_name(self.store.stem + "_pseudonymised")

    def spark_warehouse(self) -> Path:
        if self.spark_dir:
            return self.spark_dir.resolve()
        if self.store is None:
            raise LdmError("no store given: pass --store FILE or set LDM_STORE")
        return self.store.resolve().with_name(self.store.stem + "_spark")


# The master URLs Spark accepts (SparkContext.createTaskScheduler), checked here so that a mistyped
# one is a one-line error rather than a JVM's stack trace.
_N = r"\s*[1-9]\d*\s*"  # a count, with the spaces around it that Spark allows
LOCAL_MASTER = re.compile(rf"local(\[({_N}|\s*\*\s*)(,\s*\d+\s*)?\])?")  # every task in this process
SPARK_MASTER = re.compile(rf"{LOCAL_MASTER.pattern}|local-cluster\[{_N},{_N},{_N}\]|(spark|k8s)://\S+|yarn")

ENVIRONMENT = {
    "LDM_KEY_FILE": "key_file",
    "LDM_STORE": "store",
    "LDM_PSEUDONYMISED": "pseudonymised",
    "LDM_REPORTING_PERIOD_END": "reporting_period_end",
    "LDM_TODAY": "today",
    "LDM_MAX_QUARANTINED": "max_quarantined_share",
    "LDM_LINK_THRESHOLD": "link_threshold",
    "LDM_IGNORE": "ignore",
    "LDM_SPECS": "specs",
    "LDM_ENGINE": "engine",
    "LDM_SPARK_DIR": "spark_dir",
    "LDM_SPARK_MEMORY": "spark_memory",
    "LDM_SPARK_MASTER": "spark_master",
}


def _convert(name: str, value: object, source: str) -> object:
    kinds = {f.name: f.type for f in fields(Settings)}
    kind = str(kinds[name])
    try:
        if "tuple" in kind:
            items = value.split(",") if isinstance(value, str) else value
            if not isinstance(items, list | tuple) or not all(isinstance(item, str) for item in items):
                raise ValueError("must be a list of file-name patterns")
            return tuple(item.strip() for item in items if item.strip())
        if "Path" in kind:
            return Path(str(value)).expanduser()
        if "date" in kind:
            day = value if isinstance(value, datetime.date) else datetime.date.fromisoformat(str(value))
            if name == "reporting_period_end" and (day + datetime.timedelta(days=1)).day != 1:
                # The store keeps dates of death and registration ends as months (ldm.minimise).
                raise ValueError(
                    "must be the last day of a month, as the store keeps dates of death as months"
                )
            return day
        if name == "spark_memory":
            if not re.fullmatch(r"[1-9][0-9]*[kmgt]", str(value)):
                raise ValueError("must be a JVM memory size such as 2g or 8192m")
            return str(value)
        if name == "spark_master":
            if not SPARK_MASTER.fullmatch(str(value)):
                raise ValueError(
                    "must be a Spark master URL: local[N], local-cluster[W,C,M], spark://host:port, yarn "
                    "or k8s://host"
                )
            return str(value)
        if name == "engine":
            if value not in dialects.DIALECTS:
                raise ValueError(f"must be one of {', '.join(dialects.DIALECTS)}")
            return value
        if "float" in kind:
            number = float(value)
            if name == "max_quarantined_share" and not 0 <= number <= 1:
                raise ValueError("must be between 0 and 1")
            return number
    except ValueError as error:
        raise LdmError(f"{source}: {name} = {value!r} is not valid ({error})") from None
    return value


def load_settings(path: Path | None = None, **overrides: object) -> Settings:
    """Defaults < config file < environment < explicit overrides (command-line options)."""
    settings = Settings()
    path = path or (Path(os.environ[CONFIG_ENV]) if os.environ.get(CONFIG_ENV) else None)
    if path is not None and not path.is_file():
        raise LdmError(f"config file {path} does not exist")
    path = path or (DEFAULT_FILE if DEFAULT_FILE.is_file() else None)
    if path is not None:
        try:
            document = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as error:
            raise LdmError(f"config file {path} cannot be read: {error}") from None
        known = {f.name for f in fields(Settings)}
        unknown = sorted(set(document) - known)
        if unknown:
            raise LdmError(f"config file {path}: unknown setting(s) {', '.join(unknown)}")
        settings = replace(settings, **{k: _convert(k, v, str(path)) for k, v in document.items()})
    from_env = {
        name: _convert(name, os.environ[variable], variable)
        for variable, name in ENVIRONMENT.items()
        if os.environ.get(variable)
    }
    settings = replace(settings, **from_env)
    given = {k: _convert(k, v, "command line") for k, v in overrides.items() if v is not None}
    return replace(settings, **given)
