"""A reward model's suggestion beside the pair on screen: which side its stored scores prefer, and by
how much; and what a label records about the suggestion it was given with.

The model and its revision are resolved once, when a queue opens (``source``: the latest revision
on the dataset's current version, the rule of ``components.scores.store.current_scores``); each pair
on screen then costs one lookup by the full primary key of ``pair_scores`` (``lookup``), so the key
press to the next pair stays as fast as before.

>>> suggested_label(0.8), suggested_label(-0.1), suggested_label(0.0)
('chosen', 'rejected', 'tie')
"""

from __future__ import annotations

from ..store import Database
from .events import LabelError

_LATEST_REVISION = """
    SELECT arg_max(model_revision, scored_at) FROM pair_scores
    WHERE dataset = ? AND dataset_version = ? AND model = ?
"""
"""The latest revision of a model on one dataset version: the one scored most recently."""


def source(db: Database, dataset: str, version: int, model: str | None) -> dict | None:
    """{model, revision, version} the suggestions of a queue read, or None without a model."""
    if not model:
        return None
    revision = db.scalar(_LATEST_REVISION, [dataset, version, model])
    return None if revision is None else {"model": model, "revision": revision, "version": version}


def lookup(db: Database, dataset: str, row: int, src: dict | None) -> dict | None:
    """The suggestion of ``src`` for pair ``row`` (None when that model did not score it)."""
    if not src or row is None:
        return None
    found = db.one(
        """SELECT score_chosen, score_rejected, margin FROM pair_scores
           WHERE dataset = ? AND dataset_version = ? AND row = ? AND model = ? AND model_revision = ?""",
        [dataset, src["version"], int(row), src["model"], src["revision"]])
    if found is None or found[2] is None:
        return None
    chosen, rejected, margin = found
    return {"row": int(row), "model": src["model"], "model_revision": src["revision"], "score_chosen": chosen,
            "score_rejected": rejected, "margin": margin, "label": suggested_label(margin)}


def suggested_label(margin: float) -> str:
    """The label a model's margin (score chosen - score rejected) suggests."""
    return "chosen" if margin > 0 else "rejected" if margin < 0 else "tie"


def label_options(suggestion: dict | None, accepted: bool) -> dict:
    """What a label given beside ``suggestion`` records in its options: the suggestion shown (model,
    revision, margin, the label it suggested) and whether the label is that suggestion accepted."""
    if suggestion is None:
        if accepted:
            raise LabelError("no model suggestion for this pair to accept")
        return {}
    shown = {k: suggestion[k] for k in ("model", "model_revision", "margin", "label")}
    return {"suggestion": shown, "accepted_suggestion": bool(accepted)}
