"""Alembic revisions, applied in order by ldm.store.upgrade."""
