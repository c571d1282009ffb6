"""Labeling queues: which pairs an annotator sees, in which order, and how far along they are.

Three queues: every pair in one stable shuffled order (the same for everyone, so each annotator
resumes at their own first unlabeled pair), the pairs a search finds (``components.search.find_rows``:
BM25 when the dataset has a ready index, else a text match), and the pairs annotators disagree on.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Sequence

from .. import search
from ..formats import EMPTY_SIDE_SQL
from ..store import Database
from .agreement import disagreements
from .events import LabelError, check_annotator, check_pairs, label_progress, labeled_rows

QUEUES = {"unlabeled": "Unlabeled (shuffled)", "search": "Search hits", "disagreements": "Disagreements",
          "empty_side": "Pairs with an empty side", "bin": "A bar of the statistics"}
SEARCH_LIMIT = 1000


@dataclass
class Queue:
    """The rows of one queue, and for a search how they were found."""

    rows: list[int]
    engine: str | None = None  # "BM25 index" or "text match" (search queues)
    note: str | None = None  # why the text match was used


_orders: dict[tuple[str, str, int], list[int]] = {}
_orders_lock = threading.Lock()


def shuffled_rows(db: Database, dataset: str) -> list[int]:
    """The dataset's pairs in its stable pseudo-random order (md5 of name and row: the same in every
    process), cached per dataset version."""
    info = check_pairs(db, dataset)
    key = (str(db.path), info.name, info.version)
    with _orders_lock:
        rows = _orders.get(key)
    if rows is None:
        rows = [r[0] for r in db.rows(
            "SELECT row FROM records WHERE dataset = ? AND rejected IS NOT NULL "
            "ORDER BY md5(dataset || '/' || row::VARCHAR), row",
            [info.name],
        )]
        with _orders_lock:
            for k in [k for k in _orders if k[:2] == key[:2]]:
                del _orders[k]
            _orders[key] = rows
    return rows


def search_pairs(db: Database, dataset: str, query: str, limit: int = SEARCH_LIMIT) -> Queue:
    """The pairs a search for ``query`` finds (``components.search.find_rows``), as a queue."""
    info = check_pairs(db, dataset)
    try:
        found = search.find_rows(db, info.name, query, limit, pairs_only=True)
    except search.SearchError as err:
        raise LabelError(str(err)) from None
    return Queue(found.rows, found.engine, found.note)


def open_queue(db: Database, dataset: str, mode: str = "unlabeled", query: str | None = None) -> Queue:
    """The rows of queue ``mode`` (one of ``QUEUES``) of ``dataset``."""
    if mode == "unlabeled":
        return Queue(shuffled_rows(db, dataset))
    if mode == "search":
        return search_pairs(db, dataset, query or "")
    if mode == "disagreements":
        return Queue([d["row"] for d in disagreements(db, dataset)])
    if mode == "bin":  # the pairs behind one bar of the Statistics tab (its key)
        from .. import insights  # insights reads labels: imported when asked, no cycle

        try:
            return Queue(insights.rows_for(db, check_pairs(db, dataset).name, query or "", limit=10**7).rows)
        except insights.StatsError as err:
            raise LabelError(str(err)) from None
    if mode == "empty_side":  # loaded and flagged at ingest: worth a look before training on them
        return Queue([r[0] for r in db.rows(f"SELECT row FROM records WHERE dataset = ? AND {EMPTY_SIDE_SQL} "
                                            "ORDER BY row", [check_pairs(db, dataset).name])])
    raise LabelError(f"unknown queue {mode!r}: use one of {', '.join(QUEUES)}")


def next_unlabeled(rows: Sequence[int], labeled: dict | set, start: int = 0) -> int | None:
    """Position of the first row at or after ``start`` not in ``labeled``, wrapping around; None when all are.

    >>> next_unlabeled([5, 3, 9, 1], {3, 5}, 0), next_unlabeled([5, 3, 9, 1], {1, 9}, 3)
    (2, 0)
    """
    n = len(rows)
    for i in range(n):
        pos = (start + i) % n
        if rows[pos] not in labeled:
            return pos
    return None


def next_row(db: Database, dataset: Any, annotator: Any) -> int | None:
    """The next pair ``annotator`` should label in ``dataset``'s shuffled queue (None when done)."""
    info = check_pairs(db, dataset)
    annotator = check_annotator(annotator)
    rows = shuffled_rows(db, info.name)
    pos = next_unlabeled(rows, labeled_rows(db, info.name, annotator))
    return None if pos is None else rows[pos]


def progress(db: Database, dataset: str, annotator: str | None, rows: Sequence[int] | None = None) -> dict:
    """How far ``annotator`` and everyone are through ``dataset`` (or through ``rows``)."""
    return label_progress(db, dataset, annotator, rows)
