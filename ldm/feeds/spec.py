"""Feed specs: one YAML file per provider's extract says how it maps onto a feed's canonical columns.

A new provider is onboarded by writing a spec (column names, encoding, delimiter, date formats,
repeated code columns, placeholder values, constants), not code. Several providers may send one
feed: each has its own spec, named by its file, with the feed and a `provider` inside. The format
is described for spec authors in docs/feed-specs.md.

Every problem in a spec is found and named (file, key, and the closest known name for a
misspelling); `check_specs` collects them all, and every command that reads specs refuses a folder
with any, in one line (`ldm specs check` lists them).
"""

from __future__ import annotations

import difflib
import fnmatch
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

from ldm.column_types import IDENTIFIER_TYPES
from ldm.column_types import TYPES as COLUMN_TYPES
from ldm.errors import LdmError
from ldm.feeds.codes import REFERENCE_LISTS, VALUE_SETS
from ldm.feeds.transcode import canonical_encoding, unsupported_message
from models.feeds import FEEDS, REPEATED_FIELDS, repeated_column, stored_columns

SPEC_DIR = Path(__file__).resolve().parent / "specs"
TYPES = set(COLUMN_TYPES)  # each type's behaviour is defined once, in ldm.column_types
# Checked by a rule of their own (SNOMED CT's check digit, OPCS-4's shape), a reference list or a value set.
CODE_SYSTEMS = {"snomed_ct", "opcs4", *REFERENCE_LISTS, *VALUE_SETS}
DEFAULT_PROVIDER = "standard"
# The names linkage reads each identifier by: another name would cross the seam as nothing it reads.
CANONICAL_IDENTIFIERS = {
    "nhs_number": ("nhs_number",),
    "local_id": ("local_id",),
    "postcode": ("postcode",),
    "name": ("forename", "surname"),
}
ODS_CODE = re.compile(r"^[A-Za-z0-9]+$")
SPEC_KEYS = {
    "feed",
    "provider",
    "spec_version",
    "file_pattern",
    "format",
    "event_date",
    "record_key",
    "columns",
    "description",
}
FORMAT_KEYS = {"delimiter", "header", "encoding", "null_values"}
COLUMN_KEYS = {
    "source",
    "constant",
    "type",
    "required",
    "format",
    "code_system",
    "issuer",
    "null_values",
    "keep",
    "repeated",
    "strip_characters",
    "max_length",
    "description",
}
RANGE = re.compile(r"\{(\d+)\.\.(\d+)\}")
CONSTANT_SOURCE = "ldm constant: "  # raw-table column of a constant; no header can be mistaken for it


@dataclass(frozen=True)
class Column:
    name: str  # canonical name; a repeated field's positions are <field>_<position>
    source: str  # the provider's column name (for a constant: CONSTANT_SOURCE + name)
    type: str
    required: bool = False
    format: str | None = None  # strptime pattern for date and datetime columns
    code_system: str | None = None
    issuer: str | None = None  # for local_id: the canonical column naming the issuing organisation
    null_values: tuple[str, ...] = ()  # texts that mean "no value" in this column (the file's included)
    constant: str | None = None  # the value of every row, for a column the file does not carry
    keep: bool = True  # False: read and validated, deliberately not written to the seam or store
    field: str | None = None  # the repeated field this column is one position of
    position: int | None = None  # its position (0 is the primary diagnosis or procedure)
    strip_characters: str = ""  # characters removed from a code before it is checked (e.g. "-")
    max_length: int | None = None  # a code is cut to this length first (e.g. 4 for a 5-character ICD-10)

    @property
    def is_identifier(self) -> bool:
        return self.type in IDENTIFIER_TYPES or self.name == "date_of_birth"

    @property
    def read_from_file(self) -> bool:
        return self.constant is None


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
    provider: str = DEFAULT_PROVIDER
    repeated: tuple[tuple[str, int], ...] = ()  # (field, positions) of each repeated field

    @property
    def name(self) -> str:
        """The spec's name: its file name without .yaml (unique in its folder)."""
        return self.path.stem

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)

    @property
    def sources(self) -> list[str]:
        """The provider's columns the spec reads, each once, in the spec's order."""
        return list(dict.fromkeys(c.source for c in self.columns if c.read_from_file))

    @property
    def kept(self) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if c.keep)


def specs_matching(file_name: str, specs: dict[str, FeedSpec]) -> list[FeedSpec]:
    """The specs whose file pattern matches a file name (case-sensitive, as on Linux); more than one is
    an error for the caller to name, never a guess."""
    return [spec for spec in specs.values() if fnmatch.fnmatchcase(file_name, spec.file_pattern)]


def closest(name: str, known) -> str:
    """' (did you mean X?)' for the closest of `known` names, or ''."""
    match = difflib.get_close_matches(name, [str(k) for k in known], n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""


def expand_sources(source) -> list[str]:
    """A repeated field's columns: a list of names, each of which may hold one range such as
    `DIAG_{01..20}` (the width of the first number sets the zero padding)."""
    names = []
    for item in source if isinstance(source, list) else [source]:
        text = str(item)
        found = RANGE.search(text)
        if not found:
            names.append(text)
            continue
        first, last = found.group(1), found.group(2)
        width = len(first) if first.startswith("0") else 0
        step = 1 if int(last) >= int(first) else -1
        for number in range(int(first), int(last) + step, step):
            names.append(text[: found.start()] + str(number).zfill(width) + text[found.end() :])
    return names


def _texts(value, where: str, problems: list[str]) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str | int) for v in value):
        problems.append(f"{where}: null_values must be a list of texts")
        return ()
    return tuple(str(v) for v in value)


def _unknown_keys(entry: dict, known: set[str], where: str, problems: list[str]) -> None:
    for key in entry:
        if key not in known:
            problems.append(f"{where}: unknown key {key!r}{closest(str(key), known)}")


def _column_problems(name: str, entry: dict, problems: list[str]) -> bool:
    """Append what is wrong with one column entry; False if it cannot be read at all."""
    where = f"column {name!r}"
    if not isinstance(entry, dict):
        problems.append(f"{where} must be a mapping")
        return False
    _unknown_keys(entry, COLUMN_KEYS, where, problems)
    if "type" not in entry:
        problems.append(f"{where} needs a 'type'")
        return False
    if ("source" in entry) == ("constant" in entry):
        problems.append(f"{where} needs either a 'source' (the provider's column) or a 'constant'")
        return False
    for key in ("required", "keep", "repeated"):
        if key in entry and not isinstance(entry[key], bool):
            problems.append(f"{where}: {key} must be true or false, not {entry[key]!r}")
    for key in ("type", "format", "code_system", "issuer", "strip_characters"):
        if key in entry and not isinstance(entry[key], str):
            problems.append(f"{where}: {key} must be a text, not {entry[key]!r}")
            return False
    if "source" in entry and not isinstance(entry["source"], str | list):
        problems.append(f"{where}: source must be a column name (in quotes if it looks like a number)")
        return False
    kind = entry["type"]
    if kind not in TYPES:
        problems.append(
            f"{where} has unknown type {kind!r}{closest(str(kind), TYPES)} (one of {sorted(TYPES)})"
        )
        return False
    if kind in ("date", "datetime") and not entry.get("format"):
        problems.append(f"{where} is a {kind} and needs a 'format'")
    elif kind in ("date", "datetime") and not ("%Y" in entry["format"] or "%y" in entry["format"]):
        problems.append(
            f"{where}: format {entry['format']!r} is not a strptime pattern with a year (e.g. %d/%m/%Y)"
        )
    if entry.get("repeated") and kind != "code":
        problems.append(f"{where}: a repeated field holds codes (type: code)")
    if entry.get("repeated") and "constant" in entry:
        problems.append(f"{where}: a repeated field is read from the file, not a constant")
        return False
    if kind in IDENTIFIER_TYPES and name not in CANONICAL_IDENTIFIERS[kind]:
        problems.append(
            f"{where}: a {kind} column is named {' or '.join(CANONICAL_IDENTIFIERS[kind])}, "
            "the names linkage reads it by"
        )
    if kind == "code" and entry.get("code_system") not in CODE_SYSTEMS:
        system = entry.get("code_system")
        hint = closest(str(system), CODE_SYSTEMS) if system else ""
        problems.append(f"{where} needs a code_system, one of {sorted(CODE_SYSTEMS)}{hint}")
    if kind != "code" and ("strip_characters" in entry or "max_length" in entry):
        problems.append(f"{where}: strip_characters and max_length apply to code columns only")
    if "max_length" in entry and not (isinstance(entry["max_length"], int) and entry["max_length"] > 0):
        problems.append(f"{where}: max_length must be a positive whole number")
    if "constant" in entry and (kind in IDENTIFIER_TYPES or name == "date_of_birth"):
        problems.append(f"{where}: an identifier cannot be a constant")
    if isinstance(entry.get("source"), list) and not entry.get("repeated"):
        problems.append(f"{where} lists several source columns; a repeated field says `repeated: true`")
    return True


def _columns(raw_columns: dict, file_nulls: tuple[str, ...], feed: str, problems: list[str]) -> list[Column]:
    columns = []
    for name, entry in raw_columns.items():
        name = str(name)
        if not _column_problems(name, entry, problems):
            continue
        common = dict(
            type=entry["type"],
            format=entry.get("format"),
            code_system=entry.get("code_system"),
            issuer=entry.get("issuer"),
            null_values=tuple(
                dict.fromkeys(file_nulls + _texts(entry.get("null_values"), f"column {name!r}", problems))
            ),
            keep=bool(entry.get("keep", True)),
            strip_characters=str(entry.get("strip_characters") or ""),
            max_length=entry.get("max_length"),
        )
        if entry.get("repeated"):
            sources = expand_sources(entry.get("source"))
            field = REPEATED_FIELDS.get(feed, {}).get(name)
            if field is None:
                known = sorted(REPEATED_FIELDS.get(feed, {}))
                problems.append(
                    f"column {name!r} is repeated, but the {feed} feed stores no repeated field of that name "
                    f"(its repeated fields: {', '.join(known) or 'none'}){closest(name, known)}"
                )
                continue
            if entry.get("code_system") not in (None, field.code_system):
                problems.append(f"column {name!r}: the store holds {field.code_system} codes for it")
            for position, source in enumerate(sources):
                columns.append(
                    Column(
                        name=repeated_column(name, position),
                        source=source,
                        required=bool(entry.get("required", False)) and position == 0,
                        field=name,
                        position=position,
                        **common,
                    )
                )
            continue
        constant = entry.get("constant")
        columns.append(
            Column(
                name=name,
                source=CONSTANT_SOURCE + name if constant is not None else str(entry["source"]),
                required=bool(entry.get("required", False)),
                constant=None if constant is None else str(constant),
                **common,
            )
        )
    return columns


def _cross_problems(spec: FeedSpec, problems: list[str]) -> None:
    """Problems between columns: names that point nowhere, and columns the store has no place for."""
    names = {c.name for c in spec.columns}
    for column in spec.columns:
        if column.issuer and column.issuer not in names:
            problems.append(
                f"column {column.name!r} names issuer {column.issuer!r}, which is not a column"
                + closest(column.issuer, names)
            )
        issuer = spec.column(column.issuer) if column.type == "local_id" and column.issuer else None
        if issuer is not None and issuer.constant is not None and not ODS_CODE.match(issuer.constant):
            problems.append(
                f"column {issuer.name!r}: an issuing organisation is an ODS code (letters and digits), "
                f"not {issuer.constant!r}; local ids qualified by it could not be tokenised"
            )
        if column.type == "local_id" and not column.issuer:
            problems.append(
                f"column {column.name!r} is a local_id and needs an 'issuer' column (a constant will do)"
            )
    if spec.event_date and spec.event_date not in names:
        problems.append(f"event_date {spec.event_date!r} is not a column{closest(spec.event_date, names)}")
    elif spec.event_date and not spec.column(spec.event_date).keep:
        problems.append(f"event_date {spec.event_date!r} is declared keep: false")
    if spec.event_date in names and spec.column(spec.event_date).type not in ("date", "datetime"):
        problems.append(f"event_date {spec.event_date!r} is not a date or datetime column")
    for name in spec.record_key:
        column = spec.column(name)
        if column is None:
            problems.append(f"record_key names {name!r}, which is not a column{closest(name, names)}")
        elif column.is_identifier:
            problems.append(f"record_key names {name!r}, an identifier, which never crosses the seam")
        elif not column.keep:
            problems.append(f"record_key names {name!r}, which is declared keep: false")
        elif column.type in ("date", "datetime"):
            problems.append(
                f"record_key names {name!r}, a date: the store keeps some dates coarsened (in a month of "
                "birth, of death), so the record could not be recognised when sent again; key it by the "
                "provider's record id, or leave record_key out to recognise records by their content"
            )
    keys = [spec.column(n) for n in spec.record_key if spec.column(n)]
    if keys and not any(c.required and c.constant is None for c in keys):
        problems.append(
            "record_key needs a required column read from the file: rows whose key columns are all empty "
            "(or constant) would all be one record, and all but one dropped as duplicates"
        )
    if spec.feed != "opt_out" and spec.column("nhs_number") is None:
        problems.append(
            "an nhs_number column is needed: linkage starts from it (a provider without one is not yet supported)"
        )
    nulls_by_source: dict[str, tuple[str, tuple[str, ...]]] = {}
    for column in spec.columns:
        if not column.read_from_file:
            continue
        earlier = nulls_by_source.setdefault(column.source, (column.name, column.null_values))
        if earlier[1] != column.null_values:
            problems.append(
                f"columns {earlier[0]!r} and {column.name!r} read {column.source!r} with different null_values"
            )
    stored = stored_columns(spec.feed)
    if spec.feed == "opt_out":
        return
    for column in spec.columns:
        if column.keep and not column.is_identifier and column.field is None and column.name not in stored:
            problems.append(
                f"column {column.name!r} has no place in the store's {spec.feed} table, so it would not be kept: "
                f"map it to a store column{closest(column.name, stored)} or declare `keep: false`"
            )


def parse_spec(path: Path, raw) -> tuple[FeedSpec | None, list[str]]:
    """The spec in a YAML document, and every problem found in it (none: the spec is sound)."""
    problems: list[str] = []
    if not isinstance(raw, dict):
        return None, ["must be a mapping"]
    _unknown_keys(raw, SPEC_KEYS, "spec", problems)
    for key in ("feed", "spec_version", "file_pattern", "columns"):
        if key not in raw:
            problems.append(f"missing key {key!r}")
    if problems and any(p.startswith("missing key") for p in problems):
        return None, problems
    feed = str(raw["feed"])
    if feed not in FEEDS:
        problems.append(
            f"feed {feed!r} is not one ldm loads{closest(feed, FEEDS)}; a provider's spec names the feed it sends "
            f"(one of {', '.join(FEEDS)}) and its own `provider`"
        )
    fmt = raw.get("format") or {}
    if not isinstance(fmt, dict):
        problems.append("format must be a mapping")
        fmt = {}
    _unknown_keys(fmt, FORMAT_KEYS, "format", problems)
    encoding = fmt.get("encoding", "utf-8")
    if not isinstance(encoding, str) or canonical_encoding(encoding) is None:
        problems.append(f"format: {unsupported_message(encoding)}")
    if fmt.get("header", True) is not True:
        problems.append("format: header must be true: ldm reads a provider's columns by their names")
    delimiter = fmt.get("delimiter", ",")
    if not isinstance(delimiter, str) or len(delimiter) != 1:
        problems.append(f"format: delimiter must be one character, not {delimiter!r}")
    try:
        version = int(raw["spec_version"])
    except (TypeError, ValueError):
        version = 0
    if not isinstance(raw["columns"], dict) or not raw["columns"]:
        problems.append("columns must be a mapping of canonical names to entries")
        return None, problems
    file_nulls = _texts(fmt.get("null_values"), "format", problems)
    columns = _columns(raw["columns"], file_nulls, feed, problems)
    record_key = raw.get("record_key") or []
    if not isinstance(record_key, list) or not all(isinstance(name, str) for name in record_key):
        problems.append("record_key must be a list of column names")
        record_key = []
    for key in ("event_date", "provider", "file_pattern", "description"):
        if raw.get(key) is not None and not isinstance(raw[key], str):
            problems.append(f"{key} must be a text, not {raw[key]!r}")
            raw = {**raw, key: None if key != "file_pattern" else str(raw[key])}
    if not isinstance(raw["spec_version"], int) or isinstance(raw["spec_version"], bool):
        problems.append(f"spec_version must be a whole number, not {raw['spec_version']!r}")
    repeated = tuple(
        (field, sum(1 for c in columns if c.field == field))
        for field in dict.fromkeys(c.field for c in columns if c.field)
    )
    spec = FeedSpec(
        feed=feed,
        spec_version=version,
        file_pattern=str(raw["file_pattern"]),
        delimiter=str(delimiter),
        header=bool(fmt.get("header", True)),
        encoding=encoding if isinstance(encoding, str) else "utf-8",
        columns=tuple(columns),
        event_date=raw.get("event_date"),
        path=path,
        record_key=tuple(record_key),
        provider=str(raw.get("provider") or DEFAULT_PROVIDER),
        repeated=repeated,
    )
    _cross_problems(spec, problems)
    return spec, problems


class _UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader that refuses a key written twice in one mapping: plain YAML keeps the last
    silently, and a spec's second `procedure:` would drop the first one's columns without a word."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice in one mapping", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep)


def read_spec(path: Path) -> tuple[FeedSpec | None, list[str]]:
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        return None, [f"cannot be read: {' '.join(str(error).split())}"]
    return parse_spec(path, raw)


def load_spec(path: Path) -> FeedSpec:
    """Read and check one spec file; its first problem is raised naming the file and the key."""
    spec, problems = read_spec(path)
    if problems:
        raise LdmError(
            f"feed spec {path}: {problems[0]}"
            + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else "")
        )
    return spec


def check_specs(folder: Path) -> tuple[dict[str, FeedSpec], list[str]]:
    """Every spec in the folder by name, and every problem in or between them ('<file>: <problem>')."""
    specs, problems = {}, []
    paths = sorted(folder.glob("*.yaml")) + sorted(folder.glob("*.yml"))
    if not paths:
        problems.append(f"{folder}: no feed specs (*.yaml) in the folder")
    for path in paths:
        spec, found = read_spec(path)
        problems += [f"{path.name}: {problem}" for problem in found]
        if spec is not None:
            if spec.name in specs:
                problems.append(f"{path.name}: another spec is also named {spec.name!r}")
            specs[spec.name] = spec
    by_provider: dict[tuple[str, str], str] = {}
    for spec in specs.values():
        earlier = by_provider.setdefault((spec.feed, spec.provider), spec.path.name)
        if earlier != spec.path.name:
            problems.append(
                f"{spec.path.name}: {earlier} is also the {spec.feed} spec of provider {spec.provider!r}; "
                "give each provider's spec its own `provider`"
            )
    opt_outs = sorted(s.path.name for s in specs.values() if s.feed == "opt_out")
    if len(opt_outs) > 1:
        problems.append(
            f"{' and '.join(opt_outs)}: the opt-out list is one full snapshot, so a second list would replace "
            "the first's (letting its people back in); keep one opt-out spec"
        )
    ordered = sorted(specs.values(), key=lambda s: s.path.name)
    for i, first in enumerate(ordered):
        for second in ordered[i + 1 :]:
            if patterns_overlap(first.file_pattern, second.file_pattern):
                problems.append(
                    f"{first.path.name} and {second.path.name}: file patterns {first.file_pattern!r} and "
                    f"{second.file_pattern!r} can match the same file; make them distinct"
                )
    return specs, problems


def _specs_in(folder: Path) -> dict[str, FeedSpec]:
    specs, problems = check_specs(folder)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise LdmError(f"feed specs in {folder}: {problems[0]}{more}; see: ldm specs check {folder}")
    return specs


@cache
def builtin_specs() -> dict[str, FeedSpec]:
    """The specs shipped with ldm, by spec name (the feed's name for each built-in spec)."""
    return _specs_in(SPEC_DIR)


def load_specs(folder: Path | None = None) -> dict[str, FeedSpec]:
    """Specs from a folder of YAML files, or the built-in ones, checked as `ldm specs check` does."""
    if folder is None:
        return builtin_specs()
    if not folder.is_dir():
        raise LdmError(f"feed spec folder {folder} does not exist")
    return _specs_in(folder)


def _glob_tokens(pattern: str) -> list[object]:
    """fnmatch's pattern as tokens: '*', or a predicate on one character."""
    tokens: list[object] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "*":
            if not tokens or tokens[-1] != "*":
                tokens.append("*")
        elif char == "?":
            tokens.append(lambda c: True)
        elif (
            char == "["
            and (end := pattern.find("]", i + 2 if pattern[i + 1 : i + 2] in ("!", "]") else i + 1)) > 0
        ):
            body = pattern[i + 1 : end]
            negate = body.startswith("!")
            body = body[1:] if negate else body
            members: set[str] = set()
            ranges = []
            j = 0
            while j < len(body):
                if j + 2 < len(body) and body[j + 1] == "-":
                    ranges.append((body[j], body[j + 2]))
                    j += 3
                else:
                    members.add(body[j])
                    j += 1
            tokens.append(
                lambda c, m=members, r=ranges, n=negate: n != (c in m or any(a <= c <= b for a, b in r))
            )
            i = end
        else:
            tokens.append(char)
        i += 1
    return tokens


def patterns_overlap(first: str, second: str) -> bool:
    """Whether some file name matches both fnmatch patterns (case-sensitive, as on Linux).

    Decided on the two patterns' automata, so `apc*.csv` and `*_hes.csv` are found to overlap
    although neither pattern matches the other's text.
    """
    a, b = _glob_tokens(first), _glob_tokens(second)
    alphabet = {t for t in a + b if isinstance(t, str) and t != "*"} | set(map(chr, range(32, 127)))

    def accepts(token, char: str) -> bool:
        return token == char if isinstance(token, str) else token(char)

    @cache
    def meet(i: int, j: int) -> bool:
        if i == len(a) and j == len(b):
            return True
        if i < len(a) and a[i] == "*" and meet(i + 1, j):
            return True
        if j < len(b) and b[j] == "*" and meet(i, j + 1):
            return True
        if i == len(a) or j == len(b):
            return False
        left, right = a[i], b[j]
        if left == "*" and right == "*":
            return False  # both stars: skipping either, above, covers every way on
        for char in alphabet:
            both = (left == "*" or accepts(left, char)) and (right == "*" or accepts(right, char))
            if both and meet(i if left == "*" else i + 1, j if right == "*" else j + 1):
                return True
        return False

    return meet(0, 0)
