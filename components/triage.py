"""Triage: every labeling queue, whichever concept finds its pairs.

The labels' own queues (unlabeled, disagreements, empty sides, search hits, a model's scores) are in
``labels.queues``; the queues found by insights are here, above both, so that labels never import
insights: the pairs behind one bar of the Statistics tab (``bin``, its key) and the suspects of a
contamination check (``contamination``, the check as ``insights.suspects_query`` writes it), and the
rows like one row (``similar``, the row's number: that row, then ``semantic.similar``'s neighbours,
most alike first). The page, the scripting API and the job commands open queues through this module
only.
"""

from __future__ import annotations

from typing import Any

from . import insights, semantic
from .search import SearchError
from .semantic.similar import SEARCH_DEPTH
from .labels import queues as label_queues
from .labels.events import LabelError, check_annotator, check_pairs, labeled_rows
from .store import Database

QUEUES = {**label_queues.QUEUES, "bin": "A bar of the statistics",
          "contamination": "Contamination suspects (score at or above the threshold)",
          "similar": "Rows like one row (most alike first)"}
SCORE_QUEUES = label_queues.SCORE_QUEUES
Queue = label_queues.Queue


def open_queue(db: Database, dataset: str, mode: str = "unlabeled", query: str | None = None,
               model: str | None = None, model2: str | None = None) -> Queue:
    """The rows of queue ``mode`` (one of ``QUEUES``) of ``dataset``, in the queue's order."""
    if mode == "bin":
        try:
            return Queue(insights.rows_for(db, check_pairs(db, dataset).name, query or "", limit=10**7).rows)
        except insights.StatsError as err:
            raise LabelError(str(err)) from None
    if mode == "contamination":
        try:
            return Queue(insights.suspect_rows(db, check_pairs(db, dataset).name, query or ""))
        except insights.ContaminationError as err:
            raise LabelError(str(err)) from None
    if mode == "similar":
        row = str(query or "").strip()
        if not row.isdigit():
            raise LabelError("the queue of rows like a row starts from that row: open it with “label rows like this” "
                             "beside a pair, in Browse, or on the rows a search found like it")
        try:
            found = semantic.similar(db, check_pairs(db, dataset).name, int(row), SEARCH_DEPTH)
        except SearchError as err:  # no vectors and no ready index, no such row, ...
            raise LabelError(str(err)) from None
        return Queue([found.row, *found.rows], engine=found.engine)
    if mode not in QUEUES:
        raise LabelError(f"unknown queue {str(mode)[:40]!r}: use one of {', '.join(QUEUES)}")
    return label_queues.open_queue(db, dataset, mode, query, model, model2)


def next_in_queue(db: Database, dataset: Any, annotator: Any, mode: str, query: str | None = None,
                  model: str | None = None, model2: str | None = None) -> int | None:
    """The first pair of queue ``mode`` that ``annotator`` has not labeled (None when none is left)."""
    info = check_pairs(db, dataset)
    annotator = check_annotator(annotator)
    rows = open_queue(db, info.name, mode, query, model, model2).rows
    pos = label_queues.next_unlabeled(rows, labeled_rows(db, info.name, annotator))
    return None if pos is None else rows[pos]
