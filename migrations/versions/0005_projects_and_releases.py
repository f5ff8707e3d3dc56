"""Analysis projects and the person-level releases made to them.

Revision ID: 0005_projects_and_releases
Revises: 0004_batch_provenance_duplicates
Created: 2026-12-02

- `governance.projects`: each analysis project approved by IG (purpose, approver, legal basis,
  approval and expiry dates), from its project file. `ldm release` refuses a project that is not
  here or whose expiry date has passed.
- `governance.releases`: every release to a project, recorded before anything is written (the
  spec as JSON, the key id, the k-anonymity threshold), then its outcome: written (with the
  manifest's checksum), refused (the smallest group's size and attributes, never its members) or
  failed. `ldm audit report` lists them.
- `governance.release_id_seq` numbers the releases.

Both tables are new and empty, so no row of the store changes; no column is named after a batch,
so the audit records each table whole.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.schema import CreateSequence, DropSequence

from ldm.sql import literal

revision: str = "0005_projects_and_releases"
down_revision: str | None = "0004_batch_provenance_duplicates"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GOVERNANCE = "governance"
RELEASE_ID_SEQ = sa.Sequence("release_id_seq", schema=GOVERNANCE)


def _col(name: str, type_: sa.types.TypeEngine, comment: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, type_, nullable=nullable, comment=comment, autoincrement=False)


def _text(name: str, comment: str, nullable: bool = True) -> sa.Column:
    return _col(name, sa.String(), comment, nullable)


def _at(name: str, comment: str, nullable: bool = True) -> sa.Column:
    return _col(name, sa.DateTime(timezone=True), comment, nullable)


def upgrade() -> None:
    op.execute(CreateSequence(RELEASE_ID_SEQ))
    op.create_table(
        "projects",
        _text(
            "project",
            "Project name (letters, digits, '.', '_', '-'); keys its pseudonyms (purpose release:<project>)",
            nullable=False,
        ),
        _text("purpose", "What the project will use the data for, as approved", nullable=False),
        _text("approver", "Who approved the project (a role or board, not a person's name)", nullable=False),
        _text("legal_basis", "Legal basis for the disclosure (e.g. UK GDPR articles, COPI)", nullable=False),
        _col("approved_on", sa.Date(), "Date of the approval"),
        _col(
            "expires_on", sa.Date(), "Last day on which a release may be made to the project", nullable=False
        ),
        _text("project_file", "Name of the project file the record was read from"),
        _text("project_sha256", "SHA-256 of that project file (hex)", nullable=False),
        _at("registered_at", "When the project was first registered", nullable=False),
        _text("registered_by", "Account that registered or last amended the project"),
        _at("amended_at", "When the record was last amended; NULL if never"),
        sa.PrimaryKeyConstraint("project", name="pk_projects"),
        schema=GOVERNANCE,
        comment="Analysis projects approved to receive person-level releases, with purpose, approver and expiry",
    )
    op.create_table(
        "releases",
        sa.Column(
            "release_id",
            sa.BigInteger(),
            server_default=sa.text(f"nextval({literal(GOVERNANCE + '.release_id_seq')})"),
            nullable=False,
            comment="Release id, from governance.release_id_seq",
        ),
        _text("project", "Project released to (governance.projects.project)", nullable=False),
        _col(
            "release_number",
            sa.Integer(),
            "1 for the project's first release, 2 for its second, ...",
            nullable=False,
        ),
        _text("spec_file", "Name of the release spec file"),
        _text("spec_sha256", "SHA-256 of the release spec file (hex)", nullable=False),
        _text(
            "spec",
            "The release spec as JSON: cohort, tables, columns, date coarsening, quasi-identifiers, "
            "generalisation steps, threshold",
            nullable=False,
        ),
        _text("key_id", "Key id of the master key the project's key was derived from", nullable=False),
        _col("k_threshold", sa.Integer(), "Smallest group size (k) the release must reach", nullable=False),
        _text("status", "recorded (being made), written, refused or failed", nullable=False),
        _at("requested_at", "When the release was recorded", nullable=False),
        _text("operator", "Account that made the release"),
        _text("out_folder", "Folder the release was (to be) written to"),
        _col(
            "k_smallest",
            sa.BigInteger(),
            "Smallest group size found over the quasi-identifiers, after the generalisation applied",
        ),
        _text(
            "smallest_group", "Table and attribute values of the smallest group, as JSON (never its members)"
        ),
        _text("generalised", "Generalisation steps applied and the k after each, as JSON"),
        _col("persons", sa.BigInteger(), "Persons released"),
        _text("table_rows", "Rows released per table, as JSON"),
        _text("manifest_sha256", "SHA-256 of the release's manifest.json (hex)"),
        _at("finished_at", "When the outcome was recorded"),
        _text("reason", "Why the release was refused or failed"),
        sa.PrimaryKeyConstraint("release_id", name="pk_releases"),
        schema=GOVERNANCE,
        comment="Person-level releases to analysis projects: spec, k-anonymity check, outcome and manifest",
    )


def downgrade() -> None:
    op.drop_table("releases", schema=GOVERNANCE)
    op.drop_table("projects", schema=GOVERNANCE)
    op.execute(DropSequence(RELEASE_ID_SEQ))
