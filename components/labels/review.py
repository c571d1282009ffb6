"""Reviewing: a reviewer works through the pairs annotators disagree on, sees every label with its
note and confidence, and records a final label with a reason.

A review is a row of ``reviews``; the latest of each pair is in effect. It is not a vote: majorities
and agreement count the annotators' labels only, so a review never changes the figures that say how
reliable the annotators were. The export prefers it over everything else (``export``).
"""

from __future__ import annotations

from typing import Any

from ..store import Database
from ..text import utc_now
from .agreement import disagreements
from .events import JUDGMENTS, MAX_NOTE, LabelError, check_annotator, check_label, check_pairs, check_row

REVIEWS_SQL = """
    SELECT row, reviewer, label, reason, created_at FROM (
        SELECT *, row_number() OVER (PARTITION BY row ORDER BY id DESC) AS _latest
        FROM reviews WHERE dataset = $dataset)
    WHERE _latest = 1
"""
"""The final label of each reviewed pair of a dataset: its latest review."""


def resolve(db: Database, dataset: Any, row: Any, label: Any, reviewer: Any, reason: Any) -> dict:
    """Record ``reviewer``'s final ``label`` of pair ``row`` with ``reason`` (required)."""
    info = check_pairs(db, dataset)
    row = check_row(db, info.name, row)
    label = check_label(label)
    if label not in JUDGMENTS:
        raise LabelError(f"a final label is a judgment ({', '.join(JUDGMENTS)}), not {label!r}")
    reviewer = check_annotator(reviewer)
    reason = " ".join(str(reason or "").split())
    if not reason:
        raise LabelError("give the reason for the final label")
    if len(reason) > MAX_NOTE:
        raise LabelError(f"the reason is {len(reason):,} characters; keep it under {MAX_NOTE:,}")
    now = utc_now()
    review_id = db.write(lambda cur: cur.execute(
        "INSERT INTO reviews (dataset, row, reviewer, label, reason, created_at) VALUES (?, ?, ?, ?, ?, ?) "
        "RETURNING id", [info.name, row, reviewer, label, reason, now]).fetchone()[0])
    return {"id": review_id, "dataset": info.name, "row": row, "reviewer": reviewer, "label": label,
            "reason": reason, "created_at": now}


def reviewed(db: Database, dataset: str) -> dict[int, dict]:
    """{row: {reviewer, label, reason, created_at}} of the reviewed pairs of ``dataset``."""
    return {d.pop("row"): d for d in db.dicts(REVIEWS_SQL + " ORDER BY row", {"dataset": dataset})}


def reviewed_labels(db: Database, dataset: str) -> dict[int, str]:
    """{row: final label} of the reviewed pairs of ``dataset``."""
    return {row: d["label"] for row, d in reviewed(db, dataset).items()}


def review_queue(db: Database, dataset: Any) -> list[dict]:
    """The disagreements of ``dataset`` for a reviewer: those not yet resolved first, each with its
    labels, majority and (when resolved) the review."""
    name = check_pairs(db, dataset).name
    done = reviewed(db, name)
    items = [d | {"review": done.get(d["row"])} for d in disagreements(db, name)]
    return sorted(items, key=lambda d: (d["review"] is not None, d["row"]))
