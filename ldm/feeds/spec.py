"""Feed specs: one YAML file per feed says how a provider's extract maps onto canonical columns.

A new provider is onboarded by writing a spec (column names, date formats, delimiter), not code.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

from ldm.errors import LdmError
from ldm.feeds.transcode import canonical_encoding, unsupported_message

SPEC_DIR = Path(__file__).resolve().parent / "specs"
TYPES = {
    "text",
    "integer",
    "decimal",
    "date",
    "datetime",
    "nhs_number",
    "local_id",
    "sex",
    "postcode",
    "name",
    "code",
}
IDENTIFIER_TYPES = {"nhs_number", "local_id", "postcode", "name"}  # never leave the identifiable zone
CODE_SYSTEMS = {
    "snomed_ct",
    "icd10",
    "opcs4",
    "gp_practice",
    "ethnic_category",
    "admission_method",
    "treatment_function",
    "first_attendance",
    "attendance_status",
    "attended_yn",
}


@dataclass(frozen=True)
class Column:
    name: str  # canonical name
    source: str  # the provider's column name
    type: str
    required: bool = False
    format: str | None = None  # strptime pattern for date and datetime columns
    code_system: str | None = None
    issuer: str | None = None  # for local_id: the canonical column naming the issuing organisation

    @property
    def is_identifier(self) -> bool:
        return self.type in IDENTIFIER_TYPES or self.name == "date_of_birth"


@dataclass(frozen=True)
class FeedSpec:
    feed: str
    spec_version: int
    file_pattern: str
    delimiter: str
    header: bool
    encoding: str
    columns: tuple[Column, ...]
    event_date: str | None
    path: Path
    # Canonical columns that identify a record across extracts (the provider's key); empty when the
    # provider has none, and then the record's whole content identifies it.
    record_key: tuple[str, ...] = ()

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)


def _fail(path: Path, message: str) -> LdmError:
    return LdmError(f"feed spec {path}: {message}")


def load_spec(path: Path) -> FeedSpec:
    """Read and check one spec file; every mistake is reported with the file and the key."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise _fail(path, f"cannot be read: {error}") from None
    if not isinstance(raw, dict):
        raise _fail(path, "must be a mapping")
    for key in ("feed", "spec_version", "file_pattern", "columns"):
        if key not in raw:
            raise _fail(path, f"missing key '{key}'")
    fmt = raw.get("format") or {}
    encoding = fmt.get("encoding", "utf-8")
    if not isinstance(encoding, str) or canonical_encoding(encoding) is None:
        raise _fail(path, f"format: {unsupported_message(encoding)}")
    columns = []
    for name, entry in (raw["columns"] or {}).items():
        if not isinstance(entry, dict) or "source" not in entry or "type" not in entry:
            raise _fail(path, f"column '{name}' needs 'source' and 'type'")
        if entry["type"] not in TYPES:
            raise _fail(path, f"column '{name}' has unknown type '{entry['type']}' (one of {sorted(TYPES)})")
        if entry["type"] in ("date", "datetime") and not entry.get("format"):
            raise _fail(path, f"column '{name}' is a {entry['type']} and needs a 'format'")
        if entry["type"] == "code" and entry.get("code_system") not in CODE_SYSTEMS:
            raise _fail(path, f"column '{name}' needs a code_system, one of {sorted(CODE_SYSTEMS)}")
        columns.append(
            Column(
                name=name,
                source=str(entry["source"]),
                type=entry["type"],
                required=bool(entry.get("required", False)),
                format=entry.get("format"),
                code_system=entry.get("code_system"),
                issuer=entry.get("issuer"),
            )
        )
    names = {c.name for c in columns}
    for column in columns:
        if column.issuer and column.issuer not in names:
            raise _fail(path, f"column '{column.name}' names issuer '{column.issuer}', which is not a column")
    event_date = raw.get("event_date")
    if event_date and event_date not in names:
        raise _fail(path, f"event_date '{event_date}' is not a column")
    record_key = raw.get("record_key") or []
    if not isinstance(record_key, list) or not all(isinstance(name, str) for name in record_key):
        raise _fail(path, "record_key must be a list of column names")
    for name in record_key:
        column = next((c for c in columns if c.name == name), None)
        if column is None:
            raise _fail(path, f"record_key names '{name}', which is not a column")
        if column.is_identifier:
            raise _fail(path, f"record_key names '{name}', an identifier, which never crosses the seam")
    return FeedSpec(
        feed=raw["feed"],
        spec_version=int(raw["spec_version"]),
        file_pattern=raw["file_pattern"],
        delimiter=fmt.get("delimiter", ","),
        header=bool(fmt.get("header", True)),
        encoding=encoding,
        columns=tuple(columns),
        event_date=event_date,
        path=path,
        record_key=tuple(record_key),
    )


def _specs_in(folder: Path) -> dict[str, FeedSpec]:
    specs = {}
    for path in sorted(folder.glob("*.yaml")):
        spec = load_spec(path)
        specs[spec.feed] = spec
    return specs


@cache
def builtin_specs() -> dict[str, FeedSpec]:
    """The specs shipped with ldm, by feed name."""
    return _specs_in(SPEC_DIR)


def load_specs(folder: Path | None = None) -> dict[str, FeedSpec]:
    """Specs from a folder of YAML files, or the built-in ones."""
    if folder is None:
        return builtin_specs()
    if not folder.is_dir():
        raise LdmError(f"feed spec folder {folder} does not exist")
    return _specs_in(folder)
