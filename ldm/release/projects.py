"""Analysis projects: registered from a project file, checked before every release.

A project file (YAML) states what IG approved: the project's name (which keys its pseudonyms),
its purpose, who approved it (a role or board), the legal basis, and the approval and expiry
dates. `ldm release project add` records it in governance.projects with an audit entry; changing
a registered project (a renewal, a corrected purpose) is deliberate (`--amend`) and audited too.
A release to a project that is not registered, not yet approved or past its expiry date is
refused before anything is recorded or written.
"""

from __future__ import annotations

import datetime
import getpass
import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import duckdb
import yaml

from ldm.errors import LdmError
from ldm.governance import audit
from ldm.pseudonymise.keys import MasterKey, release_purpose
from ldm.release.record import PROJECTS, check_store, now, sealed
from ldm.store import connect
from ldm.store.lock import store_lock

FIELDS = ("project", "purpose", "approver", "legal_basis", "approved_on", "expires_on")


@dataclass(frozen=True)
class Project:
    project: str
    purpose: str
    approver: str
    legal_basis: str
    approved_on: datetime.date | None
    expires_on: datetime.date

    def refusal(self, today: datetime.date) -> str | None:
        """Why no release may be made to the project today, or None when one may."""
        if self.expires_on < today:
            return f"project {self.project} expired on {self.expires_on}; renew its approval first (--amend)"
        if self.approved_on is not None and self.approved_on > today:
            return f"project {self.project} is approved from {self.approved_on} only"
        return None


def _date(value: Any, name: str, required: bool) -> datetime.date | None:
    if value is None and not required:
        return None
    if isinstance(value, datetime.datetime):
        return value.date()
    if isinstance(value, datetime.date):
        return value
    try:
        return datetime.date.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f"{name}: {value!r} is not a date (YYYY-MM-DD)") from None


def load_project(path: Path) -> tuple[Project, str]:
    """The project a project file describes, and the file's SHA-256; LdmError naming what is wrong."""
    path = Path(path).expanduser().absolute()
    if not path.is_file():
        raise LdmError(f"no project file at {path}")
    raw = path.read_bytes()
    try:
        data = yaml.safe_load(raw)
        if not isinstance(data, dict):
            raise ValueError(f"expected a mapping with {', '.join(FIELDS)}")
        if unknown := sorted(set(data) - set(FIELDS)):
            raise ValueError(f"unknown key(s) {', '.join(unknown)}")
        texts = {}
        for name in FIELDS[:4]:
            text = str(data.get(name) or "").strip()
            if not text:
                raise ValueError(f"{name} is missing or empty")
            texts[name] = text
        release_purpose(texts["project"])
        project = Project(
            **texts,
            approved_on=_date(data.get("approved_on"), "approved_on", required=False),
            expires_on=_date(data.get("expires_on"), "expires_on", required=True),
        )
    except (yaml.YAMLError, ValueError, LdmError) as error:
        raise LdmError(f"{path} is not a valid project file: {str(error).splitlines()[0]}") from None
    if project.approved_on and project.expires_on < project.approved_on:
        raise LdmError(f"{path}: expires_on {project.expires_on} is before approved_on {project.approved_on}")
    return project, hashlib.sha256(raw).hexdigest()


def registered(con: duckdb.DuckDBPyConnection, name: str) -> Project | None:
    rows = con.execute(f"select {', '.join(FIELDS)} from {PROJECTS} where project = ?", [name]).fetchall()
    return Project(*rows[0]) if rows else None


def active_project(con: duckdb.DuckDBPyConnection, name: str, today: datetime.date) -> Project:
    """The registered project, or LdmError when it is unknown, expired or not yet approved."""
    project = registered(con, name)
    if project is None:
        raise LdmError(
            f"project {name} is not registered: nothing is released to a project IG has not approved "
            "(register it with `ldm release project add`)"
        )
    if refusal := project.refusal(today):
        raise LdmError(refusal)
    return project


def register(
    store: Path, path: Path, key: MasterKey, amend: bool = False
) -> tuple[Project, str, audit.Head | None]:
    """Record the project file's project; ('registered' | 'amended' | 'unchanged', the new audit head)."""
    project, sha256 = load_project(path)
    with store_lock(store):
        con = connect(store)
        try:
            check_store(con, store, key)
            before = registered(con, project.project)
            if before == project:
                return project, "unchanged", None
            if before is not None and not amend:
                changed = [f for f in FIELDS if getattr(before, f) != getattr(project, f)]
                raise LdmError(
                    f"project {project.project} is registered already with another {', '.join(changed)}; "
                    "pass --amend to change its record (the change is audited)"
                )
            head = sealed(con, key, PROJECTS, lambda: _write(con, project, before, Path(path).name, sha256))
        finally:
            con.close()
        audit.write_anchor(Path(store).expanduser().absolute(), head)
    return project, "registered" if before is None else "amended", head


def list_projects(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    """Every registered project with its dates and how many releases it has had."""
    return con.execute(
        f"""select p.project, p.approver, p.legal_basis, p.approved_on, p.expires_on,
                   (select count(*) filter (where r.status = 'written') from governance.releases r
                     where r.project = p.project) as releases_written
            from {PROJECTS} p order by p.project"""
    ).fetchall()


def _write(
    con: duckdb.DuckDBPyConnection, project: Project, before: Project | None, file: str, sha256: str
) -> tuple[str, str, dict[str, Any]]:
    """Insert or amend the project's row; the audit entry that records it."""
    values = asdict(project)
    detail = {**values, "project_file": file, "project_sha256": sha256}
    if before is None:
        columns = [*FIELDS, "project_file", "project_sha256", "registered_at", "registered_by"]
        con.execute(
            f"insert into {PROJECTS} ({', '.join(columns)}) values ({', '.join('?' for _ in columns)})",
            [*values.values(), file, sha256, now(), getpass.getuser()],
        )
        return "project_registered", f"project {project.project}", detail
    detail["changed"] = {
        f: [getattr(before, f), getattr(project, f)]
        for f in FIELDS
        if getattr(before, f) != getattr(project, f)
    }
    assignments = ", ".join(f"{f} = ?" for f in FIELDS[1:])
    con.execute(
        f"update {PROJECTS} set {assignments}, project_file = ?, project_sha256 = ?, amended_at = ?, "
        "registered_by = ? where project = ?",
        [*list(values.values())[1:], file, sha256, now(), getpass.getuser(), project.project],
    )
    return "project_amended", f"project {project.project}", detail
