"""The export's working tables, named once: what each holds while one mart is put under disclosure
control (ldm.export.suppress) and written (ldm.export.export), on the read-only store's connection.
"""

from __future__ import annotations

from ldm.sql import WorkingTable

ROWS = WorkingTable("export_rows", "the mart's rows, numbered (row_id) in its declared order")
CELLS = WorkingTable("export_cells", "one row per count cell: row_id, col, value, suppressed, reason")
MEMBERS = WorkingTable(
    "export_members", "each cell's secondary-suppression groups: g, k, row_id, col, priority"
)
PICKED = WorkingTable(
    "export_picked", "the next cell to suppress in each group that reveals one suppressed cell"
)
PUBLISHED = WorkingTable(
    "export_published", "the mart as published: rounded counts, flags, recomputed values"
)


def final(mart: str) -> WorkingTable:
    """A mart's final cell states, kept for the marts that inherit its suppression."""
    return WorkingTable(f"export_final_{mart}", f"{mart}'s rows with each count cell's final state")
