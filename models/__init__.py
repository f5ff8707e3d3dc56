"""SQLAlchemy models of the linked store: the one place that defines its tables.

Importing this package registers every table on `metadata`, which the migrations are tested
against (tests/test_store.py). The store itself is created and evolved by Alembic (migrations/).
"""

from models import analyst, governance, linkage
from models.base import ANALYST_SCHEMA, GOVERNANCE_SCHEMA, LINKAGE_SCHEMA, SCHEMAS, Base

metadata = Base.metadata

__all__ = [
    "ANALYST_SCHEMA",
    "GOVERNANCE_SCHEMA",
    "LINKAGE_SCHEMA",
    "SCHEMAS",
    "Base",
    "analyst",
    "governance",
    "linkage",
    "metadata",
]
