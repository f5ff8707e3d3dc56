"""The linkage log: records in, linked, ambiguous and unlinked per batch and step.

An IG lead reads link rates by feed and step from here (`ldm audit report`). It counts the records
that reached the store: rows withheld by opt-out are counted by their batch, not by a step, so a
step's `linked` is exactly the rows of the feed's table it linked (ldm.load.linking.Staged).
"""

from __future__ import annotations

import datetime
import getpass
from collections.abc import Sequence

from ldm.linkage.engine import ALGORITHM_VERSION
from ldm.linkage.fellegi_sunter import Model
from ldm.load.batches import insert_row
from ldm.load.linking import PROBABILISTIC, StepCount
from models.governance import LinkageLog


def rows(
    batch_id: int,
    key_id: str,
    steps: Sequence[StepCount],
    started: datetime.datetime,
    finished: datetime.datetime,
    model: Model | None = None,
) -> list[dict]:
    """One log row per step, in the order the steps ran; the probabilistic step's names the model
    it scored with (`ldm-linkage-1+fs:<model_id>`, as its links in record_links do)."""
    return [
        {
            "batch_id": batch_id,
            "step": count.step,
            "records_in": count.records_in,
            "linked": count.linked,
            "ambiguous": count.ambiguous,
            "unlinked": count.unlinked,
            "link_rate": count.linked / count.records_in if count.records_in else None,
            "key_id": key_id,
            "algorithm_version": f"{ALGORITHM_VERSION}+{model.tag}"
            if model is not None and count.step == PROBABILISTIC
            else ALGORITHM_VERSION,
            "operator": getpass.getuser(),
            "started_at": started,
            "finished_at": finished,
        }
        for count in steps
    ]


def write(con, log_rows: list[dict]) -> None:
    """Append the rows (their ids come from governance.linkage_log_id_seq, the column's default)."""
    for row in log_rows:
        insert_row(con, LinkageLog, row)
