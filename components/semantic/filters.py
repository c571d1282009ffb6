"""The search filters (components/search/filters.py's ``Filters``) as the set of rows that pass, for
the rankings that do not come from Lucene.

The same filter means the same rows in every mode: a range filter compares the very token the BM25
index holds (``numbers.number_sql`` of the expression in ``numbers.BUILTIN_SQL`` or
``numbers.metadata_sql``, against ``numbers.encode_number`` of the bounds, ends included, a row
without the number not passing), and a label status is read by ``search.filters.label_rows``, the
function the Lucene clause is built from. Bounds are checked by the same function as for BM25.
The rows are computed in DuckDB once per filter and database state, then kept.
"""

from __future__ import annotations

import threading

import numpy as np

from ..search import numbers
from ..search.filters import LABEL_STATUSES, Filters, _bound, label_rows, number_field
from ..store import Database
from .errors import SemanticError
from .. import catalogue

_SIDES = """
    WITH r AS (
        SELECT row, text, score_chosen, score_rejected, metadata,
               nullif(array_to_string(list_transform(prompt, lambda m: m.content), '\n\n'), '') AS p,
               nullif(array_to_string(list_transform(chosen, lambda m: m.content), '\n\n'), '') AS c,
               nullif(array_to_string(list_transform(rejected, lambda m: m.content), '\n\n'), '') AS rj
        FROM records WHERE dataset = $dataset
    ), d AS (SELECT *, concat_ws('\n\n', nullif(text, ''), p, c, rj) AS contents FROM r)
    SELECT row FROM d WHERE {where} ORDER BY row"""
"""The record's texts as the index builder computes them (components/search/index.py ``documents``)."""

_KEPT: dict[tuple, np.ndarray | None] = {}
_LOCK = threading.Lock()


def _expression(db: Database, dataset: str, name: str) -> str:
    field = number_field(name)  # raises SearchError for an unknown filter
    if field in numbers.BUILTIN_SQL:
        return numbers.BUILTIN_SQL[field]
    from ..search.index import numeric_metadata

    column = name[5:]
    if column not in numeric_metadata(db, dataset).values():
        return "NULL::DOUBLE"  # not a numeric column of this dataset: its index has no such field either
    return numbers.metadata_sql(column)


def _filter_key(filters: Filters) -> tuple:
    ranges = tuple(sorted((k, str(lo), str(hi)) for k, (lo, hi) in (filters.ranges or {}).items()))
    return ranges, filters.label or "any"


def passing_rows(db: Database, dataset: str, filters: Filters | None) -> np.ndarray | None:
    """The rows of ``dataset`` that pass ``filters`` (ascending int64), or None when nothing is
    filtered (the split is not looked at here: a dataset of another split is not searched at all).
    Raises SemanticError (a SearchError) for a bad bound or filter name."""
    if filters is None:
        return None
    conditions = []
    for name, (lo, hi) in (filters.ranges or {}).items():
        lo, hi = _bound(name, lo), _bound(name, hi)
        if lo is None and hi is None:
            continue
        if lo is not None and hi is not None and lo > hi:
            raise SemanticError(f"the {name} range is empty: {lo:g} is more than {hi:g}")
        low = numbers.encode_number(lo) if lo is not None else numbers.LOWEST
        high = numbers.encode_number(hi) if hi is not None else numbers.HIGHEST
        token = numbers.number_sql(_expression(db, dataset, name))
        conditions.append(f"({token}) BETWEEN '{low}' AND '{high}'")
    label = filters.label or "any"
    if label not in LABEL_STATUSES:
        raise SemanticError(f"unknown label status {label!r} (use {', '.join(LABEL_STATUSES)})")
    if not conditions and label == "any":
        return None
    key = (str(db.path), id(db), db.generation, dataset) + _filter_key(filters)
    with _LOCK:
        if key in _KEPT:
            return _KEPT[key]
    rows = None
    if conditions:
        rows = np.array([r[0] for r in db.rows(_SIDES.format(where=" AND ".join(conditions)),
                                                {"dataset": dataset})], np.int64)
    if label != "any":
        marked = np.array(sorted(label_rows(db, dataset, "labeled" if label == "unlabeled" else label)), np.int64)
        if label == "unlabeled":
            base = rows if rows is not None else np.array(
                [r[0] for r in db.rows("SELECT row FROM records WHERE dataset = ? ORDER BY row", [dataset])], np.int64)
            rows = np.setdiff1d(base, marked, assume_unique=True)
        else:
            rows = marked if rows is None else np.intersect1d(rows, marked, assume_unique=True)
    with _LOCK:
        if len(_KEPT) > 64:
            _KEPT.clear()
        _KEPT[key] = rows
    return rows


def split_ok(db: Database, dataset: str, filters: Filters | None) -> bool:
    """Whether ``dataset`` is searched under the split filter of ``filters``."""
    if filters is None or not filters.split:
        return True
    info = catalogue.dataset(db, dataset)
    return info is not None and (info.split or "") == filters.split
