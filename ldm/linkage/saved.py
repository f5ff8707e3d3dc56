"""The probabilistic step's models in the store (governance.linkage_models): written and read back.

The loader runs these: it reads the saved models before linking a batch (the step reuses one while it
fits, ldm.linkage.fellegi_sunter.reusable) and writes a model the batch trained inside the batch's
transaction, under its batch_id, so that the batch's audit digests cover the row and an edited
model fails `ldm audit verify` like any edited link.
"""

from __future__ import annotations

import datetime
import json
import logging

from ldm.dialects import current as dialect
from ldm.linkage.fellegi_sunter import SCHEME, Model, level_weights, model_id
from models.governance import LinkageModel

TABLE = f"{LinkageModel.__table__.schema}.{LinkageModel.__tablename__}"
COLUMNS = tuple(column.name for column in LinkageModel.__table__.columns)  # one definition: models/

logger = logging.getLogger(__name__)


def saved_sql() -> str:
    """The newest model of each fingerprint and set of comparisons, newest first."""
    newest = dialect().first_per_group(
        ", ".join(COLUMNS), TABLE, "fingerprint, compared", "trained_at desc, batch_id desc", COLUMNS
    )
    return f"{newest}\norder by trained_at desc, batch_id desc"


def insert_sql() -> str:
    return f"insert into {TABLE} ({', '.join(COLUMNS)}) values ({', '.join('?' for _ in COLUMNS)})"


def parameters(model: Model) -> list[dict]:
    """m, u and weight of every level of every comparison (null levels: no evidence, weight 0)."""
    out = []
    for comparison, weights in zip(model.settings["comparisons"], level_weights(model.settings), strict=True):
        for level, (label, weight) in zip(comparison["comparison_levels"], weights, strict=True):
            out.append(
                {
                    "comparison": comparison["output_column_name"],
                    "level": label,
                    "m": level.get("m_probability"),
                    "u": level.get("u_probability"),
                    "weight": weight,
                }
            )
    return out


def row(model: Model, batch_id: int, trained_at: datetime.datetime, algorithm_version: str) -> list:
    """The values of `insert_sql` for a model the batch `batch_id` trained."""
    rules = [rule["blocking_rule"] for rule in model.settings["blocking_rules_to_generate_predictions"]]
    values = {
        "model_id": model.model_id,
        "batch_id": batch_id,
        "trained_at": trained_at,
        "fingerprint": model.fingerprint,
        "algorithm_version": f"{algorithm_version}+{SCHEME}",
        "splink_version": model.splink_version,
        "compared": ",".join(model.compared),
        "prior": model.prior,
        "blocking_rules": json.dumps(rules),
        "parameters": json.dumps(parameters(model)),
        "model_json": json.dumps(model.settings, sort_keys=True),
    } | {
        name: getattr(model, name)
        for name in ("blocked_prior", "blocked_share", "blocking_recall", "threshold", "margin", "spine_persons",
                     "training_records", "training_undecided", "training_pairs", "em_iterations")
    }  # fmt: skip
    return [values[name] for name in COLUMNS]


def from_row(values: tuple) -> Model | None:
    """A saved model, or None when its JSON no longer has its id (edited: never scored with)."""
    r = dict(zip(COLUMNS, values, strict=True))
    settings = json.loads(r["model_json"])
    if model_id(settings) != r["model_id"]:
        logger.warning("linkage model %s does not match its id: not reused", r["model_id"])
        return None
    return Model(
        settings=settings,
        fingerprint=r["fingerprint"],
        threshold=r["threshold"],
        margin=r["margin"],
        spine_persons=r["spine_persons"],
        compared=tuple(name for name in r["compared"].split(",") if name),
        blocked_prior=r["blocked_prior"],
        blocked_share=r["blocked_share"],
        blocking_recall=r["blocking_recall"],
        training_records=r["training_records"],
        training_undecided=r["training_undecided"],
        training_pairs=r["training_pairs"],
        em_iterations=r["em_iterations"],
        splink_version=r["splink_version"],
        trained=False,
    )
