"""Searching: BM25 over one index, or over several at once through a ``MultiReader`` (so that one
ranked list has one set of term statistics), with filters, paging and highlighted snippets."""

from __future__ import annotations

import html
import json
import math
import os
import time
import weakref
from dataclasses import asdict, dataclass, replace
from typing import Sequence

from ..store import Database
from .errors import IndexNotReady, SearchError
from .filters import Filters, combine, filter_clauses
from .highlight import Marker, highlight, matched_terms, stems
from .index import IndexStatus, index_statuses, open_searcher
from .java import java, java_message, locked
from .query import FIELDS, ParsedQuery, parse_query


@dataclass
class Hit:
    rank: int
    dataset: str
    row: int
    score: float
    source_id: str | None = None
    snippet: str = ""  # HTML: escaped text, matched words in <mark>
    part: str = ""  # which part of the record the snippet is from (prompt, chosen, ...)

    @property
    def link(self) -> str:
        from urllib.parse import urlencode

        return "?" + urlencode({"dataset": self.dataset, "row": self.row})

    def plain_snippet(self) -> str:
        """The snippet as plain text, matched words in [brackets]."""
        text = self.snippet.replace("<mark>", "[").replace("</mark>", "]")
        return html.unescape(text)

    def as_dict(self) -> dict:
        return asdict(self) | {"link": self.link}


@dataclass
class Results:
    hits: list[Hit]
    total: int
    offset: int
    k: int
    seconds: float
    datasets: list[str]
    query: str
    field: str
    mode: str

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.k)) if self.k else 1

    @property
    def page(self) -> int:
        return self.offset // self.k + 1 if self.k else 1


# the index statuses of each database, read again only after a write to it (a search writes none)
_STATUSES: "weakref.WeakKeyDictionary[Database, tuple[int, dict[str, IndexStatus]]]" = weakref.WeakKeyDictionary()


def _current_statuses(db: Database) -> dict[str, IndexStatus]:
    cached = _STATUSES.get(db)
    if cached is None or cached[0] != db.generation:
        generation = db.generation
        cached = (generation, {s.dataset: s for s in index_statuses(db)})
        _STATUSES[db] = cached
    return {name: replace(s) for name, s in cached[1].items()}


def searchable(db: Database, datasets: Sequence[str] | str, split: str | None = None) -> list[IndexStatus]:
    """The indexes to search for ``datasets`` (narrowed to ``split``); raises if one is not ready."""
    if isinstance(datasets, str):
        datasets = [d for d in datasets.split(",") if d]
    if not datasets:
        raise SearchError("pick at least one dataset to search")
    statuses = _current_statuses(db)
    unknown = [d for d in datasets if d not in statuses]
    if unknown:
        raise SearchError(f"no dataset named {', '.join(unknown)}")
    chosen = [statuses[d] for d in dict.fromkeys(datasets)]
    for s in chosen:  # a folder removed since the statuses were read
        if s.ready and not os.path.isdir(s.path):
            s.state = "missing"
    problems = [s.problem() for s in chosen if not s.ready]
    if problems:
        raise IndexNotReady("; ".join(problems))
    if split:
        chosen = [s for s in chosen if (s.split or "") == split]
    return chosen


_EXACT = 2**31 - 1  # a total-hits threshold no index reaches: count every match


@locked
def ranked(searcher, query, offset: int, k: int, documents: bool = True,
           exact_total: bool = True) -> tuple[int, list[tuple[str, int, float, object]]]:
    """The number of matches and (dataset, row, score, stored document or None) of hits offset+1 ..
    offset+k, by score, ties in source order (as Anserini breaks them: by the id, which holds the
    zero-padded row). One pass over the matches collects both."""
    J = java()
    collector = J.TopFieldCollector.create(J.sort, offset + k, _EXACT if exact_total else offset + k)
    searcher.search(query, J.cast("org.apache.lucene.search.Collector", collector))
    total = collector.getTotalHits()
    top = collector.topDocs(offset, k)
    found = top.scoreDocs
    if not found:
        return total, []
    J.TopFieldCollector.populateScores(found, searcher, query)
    out = []
    if documents:  # stored documents too (for snippets): Anserini's arrays, a few Java calls in all
        page = J.ScoredDocs.fromTopDocs(top, searcher)
        for ident, score, doc in zip(page.docids, page.scores, page.lucene_documents):
            dataset, _, row = ident.rpartition("/")
            out.append((dataset, int(row), float(score), doc))
        return total, out
    for sd in found:  # the id from the sort values: no stored document is read
        ident = J.cast("org.apache.lucene.search.FieldDoc", sd).fields[1].utf8ToString()
        dataset, _, row = ident.rpartition("/")
        out.append((dataset, int(row), float(sd.score), None))
    return total, out


@locked
def search(db: Database, datasets: Sequence[str] | str, query: str, field: str = "contents", mode: str = "words",
           k: int = 10, offset: int = 0, filters: Filters | None = None, snippets: bool = True) -> Results:
    """Search ``datasets`` for ``query``: the hits ranked offset+1 .. offset+k and the total that
    matches (both after ``filters``), with highlighted snippets."""
    J = java()  # starting Java (the first search of a process) is not part of the search's time
    started = time.perf_counter()
    filters = filters or Filters()
    k = max(1, min(int(k), 10_000))
    offset = max(0, int(offset))
    statuses = searchable(db, datasets, filters.split)
    parsed = parse_query(query, field, mode)
    names = [s.dataset for s in statuses]
    if not statuses:
        return Results([], 0, offset, k, time.perf_counter() - started, names, query, field, mode)
    searcher = open_searcher(statuses)
    full = combine(parsed.lucene, filter_clauses(db, names, filters))
    try:
        total, found = ranked(searcher, full, offset, k)
        hits = [Hit(offset + i + 1, d, row, score) for i, (d, row, score, _) in enumerate(found)]
        if snippets and hits:
            _add_snippets(hits, [r[3] for r in found], searcher, parsed)
    except J.JavaException as err:
        raise SearchError(f"the search failed: {java_message(err)}") from None
    return Results(hits, total, offset, k, time.perf_counter() - started, names, query, field, mode)


_PARTS = {
    "contents": ("contents", "prompt", "chosen", "rejected"),
    "prompt": ("prompt",),
    "chosen": ("chosen",),
    "rejected": ("rejected",),
    "final": ("final",),
}


def _add_snippets(hits: list[Hit], docs: list, searcher, query: ParsedQuery) -> None:
    # Words matched in the searched field, and in any field a Lucene query names explicitly
    marker = Marker(matched_terms(searcher, query, FIELDS))
    pages = []
    for hit, doc in zip(hits, docs):
        raw = json.loads(doc.get("raw"))
        hit.source_id = raw.get("source_id")
        parts = [(p, raw.get(p) or "") for p in _PARTS[query.field] if raw.get(p)]
        if query.field == "contents" and len(parts) > 1:
            parts = parts[1:]  # the record's own parts, rather than their concatenation
        pages.append([(part, text, marker.candidates(text)) for part, text in parts])
    # the stems of every candidate word of the page in one go (one call to Java for the new ones)
    stems(w for parts in pages for _, _, found in parts for _, _, w in found)
    for hit, parts in zip(hits, pages):
        best = None
        for part, text, found in parts:
            snippet, n = highlight(text, marker, found=found)
            if best is None or n > best[2]:
                best = (part, snippet, n)
        if best:
            hit.part = best[0] if best[0] != "contents" else ""
            hit.snippet = best[1]
