"""Which rows of a dataset a query finds: the one rule every screen and command shares.

A dataset with a ready search index is searched with BM25 (plain words, Anserini's analyzer) and
its rows come back ranked. A dataset without one (or with a stale one) falls back to a text match:
every row whose text or messages contain every word of the query (case-insensitive; a "quoted
phrase" counts as one word), in source order, and the result says why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..store import Database
from .engine import search
from .errors import SearchError
from .index import index_status

_TERMS = re.compile(r'"([^"]+)"|(\S+)')

# The text a fallback match looks in: the record's text, then every message, one per line.
_TEXT = ("lower(concat_ws(chr(10), text, array_to_string(list_transform(coalesce(prompt, []) || "
         "coalesce(chosen, []) || coalesce(rejected, []), lambda m: coalesce(m.content, '')), chr(10))))")


@dataclass
class Found:
    """The rows a query found: ``rows`` ranked (BM25) or in source order (text match)."""

    rows: list[int]
    engine: str  # "BM25 index" or "text match"
    note: str | None = None  # why the text match was used


def terms(query: str) -> list[str]:
    """The words of ``query`` for a text match, quoted phrases kept whole.

    >>> terms('green tea "oolong leaves"')
    ['green', 'tea', 'oolong leaves']
    """
    return [a or b for a, b in _TERMS.findall(query or "")]


def rows_containing(db: Database, dataset: str, words: list[str], limit: int, pairs_only: bool = False) -> list[int]:
    """Rows of ``dataset`` whose text or messages contain every one of ``words`` (case-insensitive),
    in source order; only pairs (rows with a rejected response) with ``pairs_only``."""
    if not words:
        return []
    where = "".join(f" AND contains({_TEXT}, ?)" for _ in words)
    pairs = " AND rejected IS NOT NULL" if pairs_only else ""
    return [r[0] for r in db.rows(
        f"SELECT row FROM records WHERE dataset = ?{pairs}{where} ORDER BY row LIMIT ?",
        [dataset, *[w.lower() for w in words], int(limit)],
    )]


def find_rows(db: Database, dataset: str, query: str, limit: int, pairs_only: bool = False) -> Found:
    """The rows of ``dataset`` that ``query`` finds, at most ``limit``: BM25-ranked when the dataset
    has a ready index, else every row containing each word, in source order (``Found.note`` says
    why). ``pairs_only`` keeps rows with a rejected response. Raises SearchError."""
    words = terms(query)
    if not words:
        raise SearchError("type something to search for")
    status = index_status(db, dataset)
    if status is None:
        raise SearchError(f"no dataset named {dataset!r}")
    limit = max(1, int(limit))
    if status.ready:
        hits = search(db, [dataset], query, k=limit, snippets=False).hits
        rows = list(dict.fromkeys(h.row for h in hits))
        if pairs_only and rows:
            pairs = {r[0] for r in db.rows(
                "SELECT row FROM records WHERE dataset = ? AND rejected IS NOT NULL "
                "AND row IN (SELECT unnest(?::BIGINT[]))", [dataset, rows])}
            rows = [r for r in rows if r in pairs]
        return Found(rows, "BM25 index")
    why = {"none": f"{dataset} has no search index", "stale": f"the search index of {dataset} is stale",
           "missing": f"the search index folder of {dataset} is gone"}[status.state]
    note = f"{why}; took the rows containing every word"
    return Found(rows_containing(db, dataset, words, limit, pairs_only), "text match", note)
