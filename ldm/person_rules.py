"""A person's details from their GP registrations: one rule for the loader, the migrations and dbt.

The loader writes `main.persons` under these rules (ldm.load.persons), a migration recomputes stored
rows under them (0010), and dbt reads `main.persons`, so the three never disagree.

- **Latest registration**: the greatest (registration_start, batch_id, row_number). A registration
  with no start date counts as the latest (a missing field orders after every value: the dialect's
  `row_key`), as the spine's tokens do (ldm.load.persons.latest_first).
- **Ethnic category**: that of the latest registration that states one; "Z" (not stated) or none
  only when no registration states one. A practice that re-registers a patient without asking
  again sends "Z", which must not overwrite the category the patient gave.
"""

from __future__ import annotations

from ldm.dialects import current as dialect
from ldm.sql import literal

LATEST = ("registration_start", "batch_id", "row_number")
NOT_STATED = "Z"


def latest_registration() -> str:
    """The key ordering a person's registrations, the latest greatest."""
    return dialect().row_key(LATEST)


def ethnic_category() -> str:
    """The aggregate giving a person's ethnic category from their rows of `main.registrations`."""
    stated_first = dialect().row_key([f"coalesce(ethnic_category <> {literal(NOT_STATED)}, false)", *LATEST])
    return dialect().arg_max("ethnic_category", stated_first)
