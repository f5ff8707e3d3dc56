"""Alembic environment and versions that create and evolve the store (see ldm.store)."""
