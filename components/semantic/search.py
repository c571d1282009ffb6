"""Semantic and hybrid search, beside BM25 (components/search/engine.py).

- **semantic**: the query embedded with the model the dataset's vectors were made with, the nearest
  vectors by cosine similarity (components/semantic/index.py);
- **hybrid**: reciprocal rank fusion (RRF, Cormack et al. 2009) of the BM25 ranked list and the
  semantic one: a hit's score is the sum over the lists of ``1 / (RRF_K + rank)``, ties by dataset
  and row. Each list is taken ``HYBRID_DEPTH`` deep (deeper when a page asks beyond it).

Filters apply to the whole ranked list in every mode: BM25 applies them itself, the semantic
ranking only ever looks at the rows that pass (components/semantic/filters.py), so a page is never
a cut of unfiltered hits. Results come back as the BM25 search's ``Results`` of ``Hit`` (their
score is the similarity, or the fused score), so a page shows them alike.
"""

from __future__ import annotations

import concurrent.futures
import html
import re
import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..search.details import record_facts
from ..search.engine import Hit, Results, cards_of
from ..search.engine import search as bm25_search
from ..search.filters import Filters
from ..search.highlight import SNIPPET_CHARS, Marker, highlight
from ..search.query import stems
from ..store import Database
from ..text import clip
from .encoder import encode_query
from .errors import NoEmbeddings, SemanticError
from .filters import passing_rows, split_ok
from .index import vector_index
from .vectors import VectorSet, current_set

_ENCODING = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="query-embedding")

MODES = ("bm25", "semantic", "hybrid")
RRF_K = 60
HYBRID_DEPTH = 100
MAX_K = 10_000


@dataclass
class SemanticHit(Hit):
    similarity: float | None = None  # cosine similarity of the query and the row (None: not in the semantic list)
    bm25_rank: int | None = None  # the hit's place in the BM25 list (hybrid), None when not in it
    semantic_rank: int | None = None  # its place in the semantic list


@dataclass
class SemanticResults(Results):
    ranking: str = "semantic"  # semantic | hybrid
    model: str = ""  # the model the query was embedded with


def rrf(ranked_lists: Sequence[Sequence], k: int = RRF_K) -> list[tuple[object, float]]:
    """Reciprocal rank fusion: (item, sum of 1 / (k + rank) over the lists it is in), best first,
    ties by the item itself.

    >>> [(item, round(score, 5)) for item, score in rrf([["a", "b", "c"], ["b", "c", "d"]])]
    [('b', 0.03252), ('c', 0.032), ('a', 0.01639), ('d', 0.01587)]
    """
    scores: dict = {}
    for ranked in ranked_lists:
        for rank, item in enumerate(ranked, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))


def _names(datasets: Sequence[str] | str) -> list[str]:
    names = [d for d in datasets.split(",") if d] if isinstance(datasets, str) else list(datasets)
    if not names:
        raise SemanticError("pick at least one dataset to search")
    return list(dict.fromkeys(names))


def semantic_sets(db: Database, datasets: Sequence[str] | str, model: str | None = None, field: str | None = None,
                  filters: Filters | None = None, skipped: list[str] | None = None) -> list[VectorSet]:
    """The vector sets a semantic search of ``datasets`` uses: one model for all (``model``, else
    that of the first dataset's newest set). A dataset without them raises NoEmbeddings, unless
    ``skipped`` is a list (then it is noted there, as long as one dataset has them)."""
    sets: list[VectorSet] = []
    problems = []
    for name in _names(datasets):
        if not split_ok(db, name, filters):
            continue
        try:
            vset = current_set(db, name, model or (sets[0].model if sets else None), field)
        except NoEmbeddings as err:
            problems.append(str(err))
            continue
        sets.append(vset)
    if problems and (skipped is None or not sets):
        raise NoEmbeddings("; ".join(problems))
    if skipped is not None:
        skipped.extend(problems)
    return sets


def query_vectors(sets: list[VectorSet], query: str) -> dict[tuple[str, str], np.ndarray]:
    """{(model, revision): the vector of ``query``} for the models of ``sets`` (each embedded once)."""
    if not query or not query.strip():
        raise SemanticError("type something to search for")
    vectors: dict[tuple[str, str], np.ndarray] = {}
    for vset in sets:
        key = (vset.model, vset.model_revision)
        if key not in vectors:
            vectors[key] = encode_query(vset.model, vset.model_revision, query)
    return vectors


def semantic_ranked(db: Database, sets: list[VectorSet], query: str, n: int, filters: Filters | None = None,
                    vectors: dict[tuple[str, str], np.ndarray] | None = None) -> tuple[list[tuple[str, int, float]], int]:
    """The best ``n`` (dataset, row, similarity) of the rows passing ``filters``, best first, and
    how many rows were ranked (every passing row that has a vector). ``vectors``: the query's
    (``query_vectors``), when already embedded."""
    vectors = vectors if vectors is not None else query_vectors(sets, query)
    found: list[tuple[float, int, int, str]] = []
    ranked = 0
    for order, vset in enumerate(sets):
        key = (vset.model, vset.model_revision)
        index = vector_index(db, vset)
        passing = passing_rows(db, vset.dataset, filters)
        allowed = None if passing is None else index.positions(passing)
        ranked += len(index) if allowed is None else len(allowed)
        rows, sims = index.search(vectors[key], n, allowed)
        found.extend((-float(s), order, int(r), vset.dataset) for r, s in zip(rows, sims))
    found.sort()
    return [(d, r, -s) for s, _, r, d in found[:n]], ranked


def semantic_search(db: Database, datasets: Sequence[str] | str, query: str, k: int = 10, offset: int = 0,
                    filters: Filters | None = None, model: str | None = None, field: str | None = None,
                    snippets: bool = True, partial: bool = False) -> SemanticResults:
    """Rows of ``datasets`` nearest in meaning to ``query``: hits offset+1 .. offset+k by cosine
    similarity among the rows passing ``filters`` (``total``: how many were ranked). ``model`` and
    ``field`` pick the vector set (default: each dataset's newest). A dataset without vectors
    raises NoEmbeddings in one line (with ``partial``, it is left out and named in ``skipped``
    while another has them)."""
    started = time.perf_counter()
    k, offset = max(1, min(int(k), MAX_K)), max(0, int(offset))
    skipped: list[str] | None = [] if partial else None
    sets = semantic_sets(db, datasets, model, field, filters, skipped)
    ranked, total = semantic_ranked(db, sets, query, offset + k, filters) if sets else ([], 0)
    hits = [SemanticHit(offset + i + 1, d, r, s, query=query, similarity=s, semantic_rank=offset + i + 1)
            for i, (d, r, s) in enumerate(ranked[offset:offset + k])]
    if snippets:
        add_cards(db, hits, {s.dataset: s.field for s in sets})
    return SemanticResults(hits, total, offset, k, time.perf_counter() - started, [s.dataset for s in sets],
                           query, sets[0].field if sets else (field or ""), "words", skipped=skipped or [],
                           ranking="semantic", model=sets[0].model if sets else (model or ""))


def hybrid_search(db: Database, datasets: Sequence[str] | str, query: str, k: int = 10, offset: int = 0,
                  filters: Filters | None = None, model: str | None = None, field: str | None = None,
                  mode: str = "words", bm25_field: str = "contents", snippets: bool = True,
                  depth: int = HYBRID_DEPTH) -> SemanticResults:
    """BM25 and semantic search fused by reciprocal rank: hits offset+1 .. offset+k of the union of
    both lists (each ``max(depth, offset + k)`` deep, both after ``filters``); ``total`` is the size
    of that union. ``mode`` and ``bm25_field`` are the BM25 query's (plain words or Lucene syntax,
    the field searched). Needs both a ready BM25 index and vectors."""
    started = time.perf_counter()
    k, offset = max(1, min(int(k), MAX_K)), max(0, int(offset))
    names = _names(datasets)
    sets = semantic_sets(db, names, model, field, filters)
    n = max(int(depth), offset + k)
    # the query is embedded on a thread of its own while Lucene ranks (both let go of the GIL)
    embedding = _ENCODING.submit(query_vectors, sets, query)
    lexical = bm25_search(db, [s.dataset for s in sets], query, field=bm25_field, mode=mode, k=min(n, MAX_K),
                          filters=filters, snippets=False)
    dense, _ = semantic_ranked(db, sets, query, n, filters, embedding.result())
    order = {s.dataset: i for i, s in enumerate(sets)}
    key = lambda d, r: (order[d], r)  # noqa: E731 - ties broken in dataset, then row order
    bm25_list = [key(h.dataset, h.row) for h in lexical.hits]
    dense_list = [key(d, r) for d, r, _ in dense]
    fused = rrf([bm25_list, dense_list])
    bm25_rank = {item: i for i, item in enumerate(bm25_list, start=1)}
    dense_rank = {item: i for i, item in enumerate(dense_list, start=1)}
    similarity = {key(d, r): s for d, r, s in dense}
    hits = []
    for i, ((o, row), score) in enumerate(fused[offset:offset + k]):
        item = (o, row)
        hits.append(SemanticHit(offset + i + 1, sets[o].dataset, row, score, query=query,
                                similarity=similarity.get(item), bm25_rank=bm25_rank.get(item),
                                semantic_rank=dense_rank.get(item)))
    if snippets:
        add_cards(db, hits, {s.dataset: s.field for s in sets}, query)
    return SemanticResults(hits, len(fused), offset, k, time.perf_counter() - started, [s.dataset for s in sets],
                           query, bm25_field, mode, ignored=lexical.ignored, ranking="hybrid",
                           model=sets[0].model if sets else "")


def search(db: Database, datasets: Sequence[str] | str, query: str, mode: str = "bm25", **kwargs) -> Results:
    """One entry for the three modes: ``bm25`` (components.search.search), ``semantic`` or ``hybrid``.
    Keyword arguments are those of the function of the mode."""
    if mode == "bm25":
        return bm25_search(db, datasets, query, **kwargs)
    if mode == "semantic":
        return semantic_search(db, datasets, query, **kwargs)
    if mode == "hybrid":
        return hybrid_search(db, datasets, query, **kwargs)
    raise SemanticError(f"unknown search mode {mode!r} (use {', '.join(MODES)})")


def add_cards(db: Database, hits: list[Hit], fields: dict[str, str], query: str | None = None) -> None:
    """What a hit card shows -- ratings, labels, source id, a snippet of ``fields[dataset]`` (the field
    the vectors were made of: ``text`` for a document, else a side or ``contents``), the words of
    ``query`` marked (the hybrid mode, where BM25 is running anyway) -- for each of ``hits``."""
    marker = None
    if query:
        words = [w.lower() for w in re.findall(r"\w+", query)]
        marker = Marker({t for terms in stems(words).values() for t in terms})
    for dataset in dict.fromkeys(h.dataset for h in hits):
        field = fields[dataset]
        facts = record_facts(db, dataset, [h.row for h in hits if h.dataset == dataset],
                             "contents" if field == "text" else field, field == "text", cards=cards_of(db, dataset))
        for hit in (h for h in hits if h.dataset == dataset):
            fact = facts.get(hit.row)
            if fact is None:
                continue
            hit.source_id, hit.score_chosen, hit.score_rejected, hit.labels = (
                fact.source_id, fact.score_chosen, fact.score_rejected, fact.labels)
            best = None
            for segment in fact.segments:
                snippet, n = highlight(segment.text, marker) if marker else (
                    html.escape(clip(segment.text, SNIPPET_CHARS)), 0)
                if best is None or n > best[1]:
                    best = ((segment.side, segment.speaker, segment.turn), n, snippet)
                if marker is None:
                    break
            if best:
                (side, hit.speaker, hit.turn), _, hit.snippet = best
                hit.part = "" if side in ("contents", "text") else side
