"""Recompute each person's ethnic category under the one rule the loader now uses.

Revision ID: 0010_persons_stated_ethnic_category
Revises: 0009_linkage_models
Created: 2026-12-02

Revision 0002 filled `persons.ethnic_category` from the latest registration that states one, but the
loader then wrote the latest registration's category, "Z" (not stated) included, so a practice
re-registering a patient without asking again overwrote the category the patient gave. Both now
follow `ldm.person_rules.ethnic_category` (the latest stated category; "Z" or none only when no
registration states one), and this revision recomputes every stored person under it. Only
`persons.ethnic_category` changes, and only where the two rules differ. The downgrade leaves the
values as they are: the old rule was the fault.
"""

from collections.abc import Sequence

from alembic import op

from ldm import person_rules

revision: str = "0010_persons_stated_ethnic_category"
down_revision: str | None = "0009_linkage_models"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RECOMPUTE = f"""
update persons
set ethnic_category = stated.ethnic_category
from (
    select person_id, {person_rules.ethnic_category()} as ethnic_category
    from registrations
    where person_id is not null
    group by person_id
) as stated
where stated.person_id = persons.person_id
  and stated.ethnic_category is distinct from persons.ethnic_category
"""


def upgrade() -> None:
    op.execute(RECOMPUTE)


def downgrade() -> None:
    pass
