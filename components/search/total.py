"""Exact totals and filters as bit sets, so that neither grows with the cost of scoring every match.

Ranking the page needs only the best ``offset + k`` hits, which Lucene finds while skipping blocks
that cannot compete; the total needs every match. Counting through the ranking scores each of them
(about 130 ms for a million matches out of ten million documents). Here the matches of a plain-words
query -- a disjunction -- are counted the way a bit set counts: each word's postings are OR-ed into a
``FixedBitSet`` per segment, each filter AND-ed in as a cached bit set, and the bits counted (a few
ms for the same query). Any other query (Lucene syntax with required or excluded clauses, a segment
with deleted documents) is counted by Lucene's own ``IndexSearcher.count``.

A filter's bit sets (one per segment) are computed once per searcher and kept; they also say how
dense a filter is, and test a hit's membership when a dense filter is applied after ranking.

Everything here is called holding the Java lock.
"""

from __future__ import annotations

import bisect

from .filters import combine
from .java import java, locked

_BOOLEAN = "org.apache.lucene.search.BooleanQuery"
_BOOST = "org.apache.lucene.search.BoostQuery"
_CLAUSE = "org.apache.lucene.search.BooleanClause"
_LEAF = "org.apache.lucene.index.LeafReaderContext"
_ITERATOR = "org.apache.lucene.search.DocIdSetIterator"

_FILTERS: dict[tuple[int, int], tuple[object, object, list, float]] = {}
"""(id(searcher), id(filter query)) -> (searcher, query, [FixedBitSet per segment], the share of the
documents it matches); the searcher and query are held so that their ids stay theirs while the
entry lives."""
_LEAVES: dict[int, tuple[object, list, list[int], int, list, bool]] = {}
"""id(searcher) -> (searcher, its segments' contexts, their first document numbers, its documents,
the segments' readers, whether any segment has deleted documents): an open searcher never changes."""
MAX_FILTERS = 64  # about 1.2 MB per filter per ten million documents


def leaves(searcher) -> tuple[list, list[int]]:
    """The segments of ``searcher`` (LeafReaderContext) and the first document number of each."""
    cached = _LEAVES.get(id(searcher))
    if cached is None or cached[0] is not searcher:
        J = java()
        reader = searcher.getIndexReader()
        contexts = [J.cast(_LEAF, c) for c in reader.leaves().toArray()]
        readers = [c.reader() for c in contexts]
        cached = _LEAVES[id(searcher)] = (searcher, contexts, [c.docBase for c in contexts], reader.maxDoc(),
                                          readers, any(r.hasDeletions() for r in readers))
    return cached[1], cached[2]


def size(searcher) -> int:
    """How many documents ``searcher`` holds (deleted ones included)."""
    leaves(searcher)
    return _LEAVES[id(searcher)][3]


def forget(searcher) -> None:
    """Drop what is kept for ``searcher`` (its index is being closed or rebuilt)."""
    _LEAVES.pop(id(searcher), None)
    _SCRATCH.pop(id(searcher), None)
    for key in [k for k in _FILTERS if k[0] == id(searcher)]:
        del _FILTERS[key]


def disjuncts(query) -> list | None:
    """The parts of a rewritten pure disjunction (only optional clauses, at any depth, boosts
    unwrapped), or None when ``query`` requires or excludes anything. A single query is its own
    one part."""
    J = java()
    name = query.getClass().getName()
    if name == _BOOST:
        return disjuncts(J.cast(_BOOST, query).getQuery())
    if name != _BOOLEAN:
        return [query]
    boolean = J.cast(_BOOLEAN, query)
    if boolean.getMinimumNumberShouldMatch() > 0:
        return None
    parts = []
    for clause in boolean.clauses().toArray():
        clause = J.cast(_CLAUSE, clause)
        if clause.getOccur().name() != "SHOULD":
            return None
        inner = disjuncts(clause.getQuery())
        if inner is None:
            return None
        parts.extend(inner)
    return parts


def _matches(J, weight, context, bits) -> None:
    """OR the documents ``weight`` matches in the segment ``context`` into ``bits``."""
    scorer = weight.scorer(context)
    if scorer is not None:
        getattr(bits, "or")(scorer.iterator())  # the iterator's declared type picks or(DocIdSetIterator)


@locked
def filter_bits(searcher, query) -> list:
    """The documents ``query`` matches, a FixedBitSet per segment of ``searcher`` (kept)."""
    return _filter(searcher, query)[2]


@locked
def density(searcher, query) -> float:
    """The share of ``searcher``'s documents that filter ``query`` matches."""
    return _filter(searcher, query)[3]


def _filter(searcher, query) -> tuple[object, object, list, float]:
    key = (id(searcher), id(query))
    cached = _FILTERS.get(key)
    if cached is not None and cached[0] is searcher and cached[1] is query:
        return cached
    J = java()
    weight = searcher.createWeight(searcher.rewrite(query), J.ScoreMode.COMPLETE_NO_SCORES, 1.0)
    per_leaf = []
    for context in leaves(searcher)[0]:
        bits = J.FixedBitSet(context.reader().maxDoc())
        _matches(J, weight, context, bits)
        per_leaf.append(bits)
    docs = sum(b.length() for b in per_leaf)
    share = sum(b.cardinality() for b in per_leaf) / docs if docs else 0.0
    if len(_FILTERS) >= MAX_FILTERS:
        del _FILTERS[next(iter(_FILTERS))]
    _FILTERS[key] = cached = (searcher, query, per_leaf, share)
    return cached


@locked
def passes(searcher, clauses: list[tuple[str, object]], docs: list[int]) -> list[bool]:
    """Whether each document number passes every (occur, query) filter clause."""
    if not clauses:
        return [True] * len(docs)
    starts = leaves(searcher)[1]
    sets = [(occur, filter_bits(searcher, q)) for occur, q in clauses]
    out = []
    for doc in docs:
        leaf = bisect.bisect_right(starts, doc) - 1
        local = doc - starts[leaf]
        out.append(all(bits[leaf].get(local) == (occur != "MUST_NOT") for occur, bits in sets))
    return out


_SCRATCH: dict[int, tuple[object, list]] = {}
"""id(searcher) -> (searcher, a FixedBitSet per segment that totals are counted in): made once, cleared
for each count (making one through jnius costs thirty times as much as clearing it)."""


def _scratch(J, searcher, readers: list) -> list:
    kept = _SCRATCH.get(id(searcher))
    if kept is None or kept[0] is not searcher:
        kept = _SCRATCH[id(searcher)] = (searcher, [J.FixedBitSet(r.maxDoc()) for r in readers])
    return kept[1]


_TERMS: dict[tuple[str, str], object] = {}
"""(field, word) -> its Lucene Term: a Java object made once (a constructor call costs more than the
lookup of its postings)."""


def _term(J, field: str, word: str):
    term = _TERMS.get((field, word))
    if term is None:
        if len(_TERMS) >= 100_000:
            _TERMS.clear()
        term = _TERMS[(field, word)] = J.Term(field, word)
    return term


@locked
def exact_total(searcher, query, clauses: list[tuple[str, object]], terms: tuple[str, list[str]] | None = None) -> int:
    """How many documents match ``query`` and pass the (occur, query) filter ``clauses``. ``terms``,
    (field, words) when ``query`` is a bag of those words, lets the words' postings be read at once
    instead of walking the query's parts."""
    J = java()
    leaves(searcher)
    _, contexts, _, _, readers, deleted = _LEAVES[id(searcher)]
    if deleted:
        return searcher.count(combine(query, clauses))
    if terms is not None:
        words = [_term(J, terms[0], w) for w in terms[1]]

        def fill(i: int, bits) -> None:
            for word in words:
                postings = readers[i].postings(word, 0)  # PostingsEnum.NONE: documents only
                if postings is not None:
                    getattr(bits, "or")(J.cast(_ITERATOR, postings))
    else:
        parts = disjuncts(searcher.rewrite(query))
        if parts is None:
            return searcher.count(combine(query, clauses))
        weights = [searcher.createWeight(p, J.ScoreMode.COMPLETE_NO_SCORES, 1.0) for p in parts]

        def fill(i: int, bits) -> None:
            for weight in weights:
                _matches(J, weight, contexts[i], bits)
    sets = [(occur, filter_bits(searcher, q)) for occur, q in clauses]
    total = 0
    for i, bits in enumerate(_scratch(J, searcher, readers)):
        bits.clear()
        fill(i, bits)
        for occur, per_leaf in sets:
            if occur == "MUST_NOT":
                bits.andNot(per_leaf[i])
            else:
                getattr(bits, "and")(per_leaf[i])
        total += bits.cardinality()
    return total
