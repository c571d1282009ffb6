"""Labeling queues: which pairs an annotator sees, in which order, and how far along they are.

Every pair in one stable shuffled order (the same for everyone, so each annotator resumes at their
own first unlabeled pair), the pairs a search finds (``components.search.find_rows``: BM25 when the
dataset has a ready index, else a text match), the pairs annotators disagree on, and four queues
that read a reward model's stored scores (``components.scores.store.current_scores``; margin =
score of the chosen side minus score of the rejected side):

- ``model_flips``: the model prefers the rejected side (margin < 0), the most confident first;
- ``model_vs_majority``: the model's side differs from the people's majority (``MAJORITY_SQL``; only
  a majority for chosen or rejected counts, a zero margin takes no side), the largest |margin| first;
- ``uncertain``: every scored pair, smallest |margin| first (the uncertainty order of active learning);
- ``models_disagree``: two models prefer different sides (margins of opposite signs), the largest gap
  between their margins first.
Ties in any order go by row.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Sequence

from .. import search
from ..formats import EMPTY_SIDE_SQL
from ..store import Database
from .agreement import disagreements
from .events import LabelError, check_annotator, check_pairs, label_progress, labeled_rows, majority_labels

QUEUES = {"unlabeled": "Unlabeled (shuffled)", "search": "Search hits", "disagreements": "Disagreements",
          "empty_side": "Pairs with an empty side",
          "model_flips": "Model prefers the rejected side", "model_vs_majority": "Model disagrees with the majority",
          "uncertain": "Model least sure first (smallest margin)", "models_disagree": "Two models disagree"}
SCORE_QUEUES = ("model_flips", "model_vs_majority", "uncertain", "models_disagree")
"""The queues that need a model's scores (``model``; ``models_disagree`` also ``model2``)."""
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


def pick_models(db: Database, dataset: str, mode: str, model: str | None = None,
                model2: str | None = None) -> tuple[str, str | None]:
    """The model (and for ``models_disagree`` the second model) a score queue reads: as given, or the
    only model that scored the dataset's current version; a one-line error when that is unclear."""
    from ..scores.store import scoring_models  # scores are read only by the queues that need them

    scored = scoring_models(db, dataset)
    if not scored:
        raise LabelError(f"no model has scored {dataset} (its current version) yet: "
                         f"python app.py score {dataset} --model PATH_OR_HUB_ID")
    for m in (model, model2):
        if m and m not in scored:
            raise LabelError(f"{m!r} has not scored {dataset}; scored by: {', '.join(scored)}")
    if mode != "models_disagree":
        if not model and len(scored) > 1:
            raise LabelError(f"several models scored {dataset}: pick one of {', '.join(scored)}")
        return model or scored[0], None
    if len(scored) < 2:
        raise LabelError(f"only {scored[0]} scored {dataset}: two models disagreeing needs a second one")
    given = [m for m in (model, model2) if m]
    if len(given) < 2:
        if len(scored) != 2:
            raise LabelError(f"pick the two models to compare: {', '.join(scored)}")
        given += [m for m in scored if m not in given][: 2 - len(given)]
    if given[0] == given[1]:
        raise LabelError("pick two different models")
    return given[0], given[1]


_SCORE_SQL = {
    "model_flips": "SELECT row FROM s WHERE margin < 0 ORDER BY margin, row",
    "model_vs_majority": "SELECT s.row FROM s JOIN h USING (row) WHERE (h.majority = 'chosen' AND s.margin < 0) "
                         "OR (h.majority = 'rejected' AND s.margin > 0) ORDER BY abs(s.margin) DESC, s.row",
    "uncertain": "SELECT row FROM s WHERE margin IS NOT NULL ORDER BY abs(margin), row",
    "models_disagree": "SELECT s.row FROM s JOIN t USING (row) WHERE s.margin * t.margin < 0 "
                       "ORDER BY abs(s.margin - t.margin) DESC, s.row",
}


def score_rows(db: Database, dataset: str, mode: str, model: str | None = None, model2: str | None = None) -> list[int]:
    """The rows of score queue ``mode`` (one of ``SCORE_QUEUES``) of ``dataset``, in the queue's order."""
    import duckdb
    import pyarrow as pa

    from ..scores.store import current_scores

    name = check_pairs(db, dataset).name
    model, model2 = pick_models(db, name, mode, model, model2)
    con = duckdb.connect()
    try:
        con.register("s", current_scores(db, name, model))
        if mode == "model_vs_majority":
            majority = majority_labels(db, name)
            con.register("h", pa.table({"row": pa.array(list(majority), pa.int64()),
                                        "majority": pa.array(list(majority.values()), pa.string())}))
        if mode == "models_disagree":
            con.register("t", current_scores(db, name, model2))
        return [r[0] for r in con.execute(_SCORE_SQL[mode]).fetchall()]
    finally:
        con.close()


def open_queue(db: Database, dataset: str, mode: str = "unlabeled", query: str | None = None,
               model: str | None = None, model2: str | None = None) -> Queue:
    """The rows of queue ``mode`` (one of ``QUEUES``) of ``dataset``; score queues read ``model``
    (and ``model2``), by default the only model that scored the dataset."""
    if mode in SCORE_QUEUES:
        return Queue(score_rows(db, dataset, mode, model, model2))
    if mode == "unlabeled":
        return Queue(shuffled_rows(db, dataset))
    if mode == "search":
        return search_pairs(db, dataset, query or "")
    if mode == "disagreements":
        return Queue([d["row"] for d in disagreements(db, dataset)])
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
