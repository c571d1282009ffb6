"""Rows like a given row: its nearest neighbours by embedding, or -- for a dataset without vectors --
Lucene's MoreLikeThis over its BM25 index (the row's most telling terms, weighted by tf-idf, as a
query). Either gives a ranked list of rows, usable as a search result or as a labeling queue.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field as dataclass_field

from ..search.filters import Filters
from ..store import Database
from .errors import NoEmbeddings, SemanticError
from .filters import passing_rows
from .index import vector_index
from .search import SemanticHit, SemanticResults, add_cards
from .step import field_text
from .vectors import current_set
from .. import catalogue

MLT_CLASS = "org.apache.lucene.queries.mlt.MoreLikeThis"
MLT_TERMS = 25


@dataclass
class Neighbour:
    rank: int
    dataset: str
    row: int
    score: float  # cosine similarity (embeddings) or BM25 score of the MoreLikeThis query

    @property
    def link(self) -> str:
        return f"?tab=compare&dataset={self.dataset}&row={self.row}"


@dataclass
class Similar:
    dataset: str
    row: int
    engine: str  # "embeddings" | "MoreLikeThis"
    neighbours: list[Neighbour] = dataclass_field(default_factory=list)
    model: str = ""  # the embedding model, or the Lucene field MoreLikeThis read
    note: str = ""  # why MoreLikeThis was used
    field: str = ""  # the text compared: the vectors' field (prompt, chosen, rejected, text) or the Lucene field

    @property
    def rows(self) -> list[int]:
        """The neighbours' rows, best first: a labeling queue."""
        return [n.row for n in self.neighbours]

    def as_dict(self) -> dict:
        return asdict(self) | {"rows": self.rows}


def similar(db: Database, dataset: str, row: int, k: int = 10, model: str | None = None, field: str | None = None,
            filters: Filters | None = None, engine: str = "auto") -> Similar:
    """The ``k`` rows of ``dataset`` most like ``row`` (itself left out), best first, among those
    passing ``filters``. ``engine``: ``embeddings`` (nearest vectors, cosine similarity),
    ``mlt`` (Lucene's MoreLikeThis on the BM25 index) or ``auto`` (embeddings when the dataset has
    them, else MoreLikeThis). Raises SemanticError (one line) when neither can be used."""
    k = max(1, min(int(k), 10_000))
    row = int(row)
    if catalogue.record(db, dataset, row) is None:
        raise SemanticError(f"{dataset} has no row {row}" if catalogue.dataset(db, dataset) else f"no dataset named {dataset!r}")
    if engine not in ("auto", "embeddings", "mlt"):
        raise SemanticError(f"unknown engine {engine!r} (use auto, embeddings or mlt)")
    note = ""
    if engine in ("auto", "embeddings"):
        try:
            vset = current_set(db, dataset, model, field)
        except NoEmbeddings as err:
            if engine == "embeddings":
                raise
            note = str(err).split(" (")[0]
        else:
            index = vector_index(db, vset)
            vector = index.vector_of(row)
            if vector is None:
                raise SemanticError(f"row {row} of {dataset} has no vector (its {vset.field} is empty or failed)")
            passing = passing_rows(db, dataset, filters)
            allowed = None if passing is None else index.positions(passing)
            rows, sims = index.search(vector, k + 1, allowed)
            found = [(int(r), float(s)) for r, s in zip(rows, sims) if int(r) != row][:k]
            return Similar(dataset, row, "embeddings", [Neighbour(i + 1, dataset, r, s) for i, (r, s) in enumerate(found)],
                           vset.model, field=vset.field)
    return _more_like_this(db, dataset, row, k, field, filters, note)


def _more_like_this(db: Database, dataset: str, row: int, k: int, field: str | None, filters: Filters | None,
                    note: str) -> Similar:
    from ..search.engine import searchable, top
    from ..search.filters import filter_clauses
    from ..search.index import open_searcher
    from ..search.java import LOCK, java, java_message

    statuses = searchable(db, [dataset])  # IndexNotReady (a SearchError) says why and how to build it
    kind = statuses[0].kind
    lucene_field = field if field in ("prompt", "chosen", "rejected") else "contents"
    if kind == "documents":
        lucene_field = "contents"
    record = catalogue.record(db, dataset, row)
    if lucene_field == "contents":
        text = "\n\n".join(t for t in (record.get("text") or "", *(field_text(record.get(s))
                                       for s in ("prompt", "chosen", "rejected"))) if t)
    else:
        text = field_text(record.get(lucene_field))
    if not text.strip():
        raise SemanticError(f"row {row} of {dataset} has no {lucene_field} text to find rows like it")
    with LOCK:
        J = java()
        try:
            searcher = open_searcher(statuses)
            mlt = J.autoclass(MLT_CLASS)(searcher.getIndexReader())
            mlt.setAnalyzer(J.analyzer)
            mlt.setFieldNames([lucene_field])
            mlt.setMinTermFreq(1)
            mlt.setMinDocFreq(1)
            mlt.setMaxQueryTerms(MLT_TERMS)
            query = mlt.like(lucene_field, J.autoclass("java.io.StringReader")(text))  # Reader... varargs
            itself = J.autoclass("org.apache.lucene.search.TermQuery")(
                J.autoclass("org.apache.lucene.index.Term")("id", f"{dataset}/{row:012d}"))
            clauses = [("MUST_NOT", itself), *filter_clauses(db, [dataset], filters or Filters())]
            found = top(searcher, query, clauses, 0, k)
        except J.JavaException as err:
            raise SemanticError(f"MoreLikeThis failed: {java_message(err)}") from None
    neighbours = [Neighbour(i + 1, d, r, float(s)) for i, (d, r, s, _) in enumerate(found)]
    return Similar(dataset, row, "MoreLikeThis", neighbours, lucene_field, note,
                   field="text" if kind == "documents" else lucene_field)


SEARCH_DEPTH = 100
"""How many rows like a row a similar search (and its labeling queue) goes through."""


def similar_search(db: Database, dataset: str, row: int, k: int = 10, offset: int = 0,
                   filters: Filters | None = None, snippets: bool = True):
    """``similar`` as a page of search results: hits offset+1 .. offset+k of the ``SEARCH_DEPTH``
    rows most like ``row`` (their score: cosine similarity, or MoreLikeThis's BM25 score), each with
    what a hit card shows. ``Results.query`` says what was searched for."""
    started = time.perf_counter()
    k, offset = max(1, min(int(k), SEARCH_DEPTH)), max(0, int(offset))
    found = similar(db, dataset, row, SEARCH_DEPTH, filters=filters)
    embeddings = found.engine == "embeddings"
    hits = [SemanticHit(n.rank, n.dataset, n.row, n.score, similarity=n.score if embeddings else None,
                        semantic_rank=n.rank if embeddings else None)
            for n in found.neighbours[offset:offset + k]]
    if snippets:
        add_cards(db, hits, {dataset: found.field})
    how = (f"embeddings of {found.model}" if embeddings else
           f"Lucene MoreLikeThis on {found.model}" + (" (no embeddings of its current version)" if found.note else ""))
    return SemanticResults(hits, len(found.neighbours), offset, k, time.perf_counter() - started, [dataset],
                           f"rows like row {found.row}", found.field, "words", ranking="similar", model=how)
