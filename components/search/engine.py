"""Searching: BM25 over one index, or over several at once through a ``MultiReader`` (so that one
ranked list has one set of term statistics), with filters, paging and highlighted snippets."""

from __future__ import annotations

import concurrent.futures
import html
import math
import os
import threading
import time
import weakref
from dataclasses import asdict, dataclass, field as dataclass_field, replace
from typing import Sequence
from urllib.parse import urlencode

from ..store import Database
from . import numbers
from .background import describe_pending
from .details import CARDS, RecordFacts, record_facts
from .errors import IndexNotReady, OverBudget, SearchError, TooManyClauses, TooManyTerms
from . import total
from .filters import Filters, combine, filter_clauses
from .highlight import Marker, highlight, matched_fields_and_terms
from .index import IndexStatus, exitable_searcher, index_statuses, open_searcher
from .java import TOO_MANY_TERMS, budget_ms, java, java_error, locked, over_budget
from .query import FIELDS, ParsedQuery, costly_parts, parse_query, stems


@dataclass
class Hit:
    rank: int
    dataset: str
    row: int
    score: float
    source_id: str | None = None
    snippet: str = ""  # HTML: escaped text, matched words in <mark>
    part: str = ""  # the side the snippet is from: prompt, chosen, rejected ('' for a document's text)
    speaker: str = ""  # the role of the message the snippet is from (user, assistant, ...)
    turn: int | None = None  # that message's place in its side (1 = first)
    score_chosen: float | None = None
    score_rejected: float | None = None
    labels: dict = dataclass_field(default_factory=dict)  # current judgments: {label: how many}
    query: str = ""  # what found it (the link passes it on, for highlighting the row)

    @property
    def margin(self) -> float | None:
        """score_chosen - score_rejected, when the record has both."""
        if self.score_chosen is None or self.score_rejected is None:
            return None
        return self.score_chosen - self.score_rejected

    @property
    def link(self) -> str:
        """The query string that opens the hit's row in Compare, with the query for highlighting."""
        params = {"tab": "compare", "dataset": self.dataset, "row": self.row}
        if self.query:
            params["q"] = self.query
        return "?" + urlencode(params)

    def plain_snippet(self) -> str:
        """The snippet as plain text, matched words in [brackets]."""
        text = self.snippet.replace("<mark>", "[").replace("</mark>", "]")
        return html.unescape(text)

    def as_dict(self) -> dict:
        return asdict(self) | {"link": self.link, "margin": self.margin}


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
    skipped: list[str] = dataclass_field(default_factory=list)  # datasets left out, each with why
    ignored: list[str] = dataclass_field(default_factory=list)  # operators plain words took as words

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.k)) if self.k else 1

    @property
    def page(self) -> int:
        return self.offset // self.k + 1 if self.k else 1


# the index statuses of each database, read again only after a write to it (a search writes none)
_STATUSES: "weakref.WeakKeyDictionary[Database, tuple[int, dict[str, IndexStatus]]]" = weakref.WeakKeyDictionary()


def _current_statuses(db: Database) -> dict[str, IndexStatus]:
    """The kept statuses (not to be changed: ``searchable`` copies those it picks)."""
    cached = _STATUSES.get(db)
    if cached is None or cached[0] != db.generation:
        generation = db.generation
        cached = (generation, {s.dataset: s for s in index_statuses(db)})
        _STATUSES[db] = cached
    return cached[1]


def cards_of(db: Database, dataset: str) -> str | None:
    """Where the ready index of ``dataset`` keeps its copy of the records (hit cards read from it),
    or None when it has no ready index."""
    status = _current_statuses(db).get(dataset)
    return os.path.join(status.path, CARDS) if status is not None and status.ready else None


def searchable(db: Database, datasets: Sequence[str] | str, split: str | None = None,
               skipped: list[str] | None = None) -> list[IndexStatus]:
    """The indexes to search for ``datasets`` (narrowed to ``split``). A dataset whose index is not
    ready raises IndexNotReady (saying why, and how far a build under way is), unless ``skipped``
    is a list: then it is left out, its reason appended there, and only a selection with no ready
    index at all raises."""
    if isinstance(datasets, str):
        datasets = [d for d in datasets.split(",") if d]
    if not datasets:
        raise SearchError("pick at least one dataset to search")
    statuses = _current_statuses(db)
    unknown = [d for d in datasets if d not in statuses]
    if unknown:
        raise SearchError(f"no dataset named {', '.join(unknown)}")
    chosen = [replace(statuses[d]) for d in dict.fromkeys(datasets)]
    for s in chosen:  # a folder removed since the statuses were read
        if s.ready and not os.path.isdir(s.path):
            s.state = "missing"
    problems = [describe_pending(db, s.dataset) or s.problem() for s in chosen if not s.ready]
    if problems and (skipped is None or len(problems) == len(chosen)):
        raise IndexNotReady("; ".join(problems))
    if problems:
        skipped.extend(problems)
        chosen = [s for s in chosen if s.ready]
    if split:
        chosen = [s for s in chosen if (s.split or "") == split]
    return chosen


DENSE = 0.5
"""A filter passing at least this share of the documents is applied after ranking (the best hits of
the query alone, kept while they pass), not as a clause: a clause the ranking must check at every
candidate made the page several times slower for filters that pass nearly everything."""


_COLLECTOR = "org.apache.lucene.search.Collector"
_FIELD_DOC = "org.apache.lucene.search.FieldDoc"


@locked
def collect(searcher, query, n: int) -> list:
    """The best ``n`` documents of ``query`` (Lucene ScoreDocs, each a FieldDoc whose sort values are
    the score and the id), by score, ties in source order (as Anserini breaks them: by the id, which
    holds the zero-padded row). Lucene skips what cannot reach them; nothing is counted beyond."""
    J = java()
    collector = J.TopFieldCollector.create(J.sort, n, n)
    searcher.search(query, J.cast(_COLLECTOR, collector))
    return list(collector.topDocs(0, n).scoreDocs)


def _hits(J, found: list) -> list[tuple[str, int, float, int]]:
    """(dataset, row, score, Lucene document number) of each document ``collect`` found, read from
    its sort values (no stored document is read); the caller holds the Java lock."""
    out = []
    for f in found:
        score, ident = J.cast(_FIELD_DOC, f).fields
        dataset, _, row = ident.utf8ToString().rpartition("/")
        out.append((dataset, int(row), float(score), f.doc))
    return out


@locked
def ranked(searcher, query, offset: int, k: int) -> tuple[int, list[tuple[str, int, float, int]]]:
    """(dataset, row, score, Lucene document number) of hits offset+1 .. offset+k of ``query``
    (``collect``), and how many hits were collected (at least offset+k when there are that many)."""
    found = collect(searcher, query, offset + k)
    return len(found), _hits(java(), found[offset:])


POST_FILTER_MAX = 10_000
"""Past this many best hits of the query alone, a dense filter is made a clause of the ranking after
all (a query whose best hits mostly fail a filter that most documents pass)."""


def first_take(wanted: int, share: float) -> int:
    """How many best hits of the query alone to read first when a dense filter passes ``share`` of
    the documents: enough for ``wanted`` to pass when the hits pass as often as the documents do,
    and a margin. Every hit read costs a call into Java, so a filter that passes nearly everything
    reads little more than the page.

    >>> first_take(10, 0.97), first_take(10, 0.5), first_take(100, 0.9)
    (17, 29, 138)
    """
    return int(wanted / max(share, DENSE * DENSE) * 1.2) + 5


@locked
def top(searcher, query, clauses: list[tuple[str, object]], offset: int, k: int) -> list[tuple[str, int, float, int]]:
    """Hits offset+1 .. offset+k (as ``ranked``) of the documents matching ``query`` and passing the
    filter ``clauses``: a dense filter applied to the best hits of the rest, a sparse one as a clause."""
    passing = [1 - total.density(searcher, q) if occur == "MUST_NOT" else total.density(searcher, q)
               for occur, q in clauses]
    dense = [c for c, share in zip(clauses, passing) if share >= DENSE]
    if not dense:
        return ranked(searcher, combine(query, clauses), offset, k)[1]
    ranking = combine(query, [c for c, share in zip(clauses, passing) if share < DENSE])
    n = first_take(offset + k, math.prod(share for share in passing if share >= DENSE))
    while n <= POST_FILTER_MAX:  # the best n of the query, kept while they pass; more when too few passed
        found = collect(searcher, ranking, n)
        kept = [f for f, ok in zip(found, total.passes(searcher, dense, [f.doc for f in found])) if ok]
        if len(kept) >= offset + k or len(found) < n:
            return _hits(java(), kept[offset:offset + k])  # ids read for the page's hits alone
        n *= 4
    return ranked(searcher, combine(query, clauses), offset, k)[1]


@locked
def page(searcher, query, clauses: list[tuple[str, object]], offset: int, k: int
         ) -> tuple[int, list[tuple[str, int, float, int]]]:
    """The exact number of documents matching ``query`` and passing the filter ``clauses``, and
    hits offset+1 .. offset+k of them (``top``)."""
    return total.exact_total(searcher, query, clauses), top(searcher, query, clauses, offset, k)


COSTLY = threading.Semaphore(1)
"""Held by the one search with wildcards, fuzzy words or regular expressions that may queue for Java
at a time: a plain search waits behind at most one of them (at most its time budget), however many
people send costly queries at once."""
COSTLY_WAIT_S = 5.0


def search(db: Database, datasets: Sequence[str] | str, query: str, field: str = "contents", mode: str = "words",
           k: int = 10, offset: int = 0, filters: Filters | None = None, snippets: bool = True,
           partial: bool = False) -> Results:
    """Search ``datasets`` for ``query``: the hits ranked offset+1 .. offset+k and the total that
    matches (both after ``filters``), with highlighted snippets, the side and speaker each comes
    from, and the record's ratings and judgments. With ``partial``, datasets whose index is not
    ready are left out (``Results.skipped`` says why) as long as one is.

    Every search has a time budget (``java.budget_ms``); a query with wildcards, fuzzy words or
    regular expressions also waits for its turn among such queries (``COSTLY``)."""
    if mode != "lucene" or not costly_parts(query):
        return _search(db, datasets, query, field, mode, k, offset, filters, snippets, partial)
    if not COSTLY.acquire(timeout=COSTLY_WAIT_S):
        raise SearchError("the server is busy with other searches that use wildcards, fuzzy words or regular "
                          "expressions: try again in a moment, or search plain words")
    try:
        return _search(db, datasets, query, field, mode, k, offset, filters, snippets, partial)
    finally:
        COSTLY.release()


@locked
def _search(db: Database, datasets: Sequence[str] | str, query: str, field: str, mode: str, k: int, offset: int,
            filters: Filters | None, snippets: bool, partial: bool) -> Results:
    J = java()  # starting Java (the first search of a process) is not part of the search's time
    started = time.perf_counter()
    filters = filters or Filters()
    k = max(1, min(int(k), 10_000))
    offset = max(0, int(offset))
    skipped: list[str] | None = [] if partial else None
    statuses = searchable(db, datasets, filters.split, skipped)
    parsed = parse_query(query, field, mode)
    names = [s.dataset for s in statuses]
    done = dict(datasets=names, query=query, field=field, mode=mode, skipped=skipped or [], ignored=parsed.ignored)
    if not statuses:
        return Results([], 0, offset, k, time.perf_counter() - started, **done)
    _check_numbers(statuses, filters)
    searcher = open_searcher(statuses)
    warm = id(searcher) in _WARM  # else Lucene loads its classes and the index's files during this search
    # the clock starts now: a stranger's query may not hold Java long
    timeout = J.QueryTimeoutImpl(budget_ms() * (1 if warm else COLD_FACTOR))
    cached = searcher
    if parsed.expanding:
        searcher = exitable_searcher(statuses, timeout)
    searcher.setTimeout(timeout)
    try:
        clauses = filter_clauses(db, names, filters)
        found = top(searcher, parsed.lucene, clauses, offset, k)
        hits = [Hit(offset + i + 1, d, row, score, query=query) for i, (d, row, score, _) in enumerate(found)]
        # on a large index the page's records are read from the database while Java counts the
        # matches (a Java call lets go of the GIL): at ten million documents the two take about as
        # long. On a small one the count is short and handing the GIL back and forth costs more.
        aside = total.size(searcher) >= READ_WHILE_COUNTING
        documents = {st.dataset for st in statuses if st.kind == "documents"}
        copies = {st.dataset: os.path.join(st.path, CARDS) for st in statuses}
        pending = _read_records(db, hits, searcher, parsed, aside, documents, copies) if snippets and hits else None
        count = total.exact_total(searcher, parsed.lucene, clauses,
                                  (parsed.field, parsed.terms) if parsed.terms else None)
        if searcher.timedOut():  # Lucene stopped scoring at the budget: the page would be partial
            raise OverBudget(over_budget(parsed.expanding))
        if pending is not None:
            _add_snippets(hits, *pending)
    except J.JavaException as err:
        error = java_error(err)
        if isinstance(error, TooManyClauses) and parsed.expanding:
            error = TooManyTerms(TOO_MANY_TERMS)
        elif type(error) is SearchError:
            error = SearchError(f"the search failed: {error}")
        raise error from None
    finally:
        searcher.setTimeout(None)  # the cached searcher serves other calls without a budget of this one
    _WARM.add(id(cached))
    return Results(hits, count, offset, k, time.perf_counter() - started, **done)


_WARM: set[int] = set()
"""The searchers (by id) that have answered a search in this process."""
COLD_FACTOR = 20
"""The first search on a searcher gets this many times the budget: a cold JVM's first search spent
most of a second loading Lucene's classes and the index's files (a 14-document index, a fresh CLI)."""


def _check_numbers(statuses: list[IndexStatus], filters: Filters) -> None:
    """A built-in range filter an index was built without (an older build) is refused, not empty."""
    for name, (lo, hi) in (filters.ranges or {}).items():
        if name in numbers.BUILTIN and (lo not in (None, "") or hi not in (None, "")):
            old = [s.dataset for s in statuses if name not in (s.numeric_fields or {})]
            if old:
                raise SearchError(f"the index of {', '.join(old)} was built before the {name} filter existed; "
                                  f"rebuild it to filter by {numbers.LABELS.get(name, name)}")


_READERS = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="search-records")
READ_WHILE_COUNTING = 2_000_000
"""Documents from which a page's records are read on a worker thread while Java counts (measured:
2 ms slower at 1M documents, 4 ms faster at 10M)."""


def _read_records(db: Database, hits: list[Hit], searcher, query: ParsedQuery, aside: bool,
                  documents: set[str], cards: dict[str, str] | None = None):
    """Start reading what the snippets of ``hits`` need (from the indexes' ``cards`` copies, {dataset:
    path}, else the database; on a worker thread when ``aside``, else now); the marker of the query's
    matched words and the future of {(dataset, row): RecordFacts}."""
    cards = cards or {}
    # Words matched in the searched field, and in any field a Lucene query names explicitly
    matched = {(f, t) for f, t in matched_fields_and_terms(searcher, query) if f in FIELDS}
    marker = Marker(t for _, t in matched)
    # the fields the query matches in (chosen:sorry): snippets come from those sides when it names only sides
    named = {f for f, _ in matched} or {query.field}
    looked = query.field if named <= {query.field} else "contents"
    sides = named & {"prompt", "chosen", "rejected"} if not named & {"contents", "final"} else set()

    def read() -> dict[tuple[str, int], RecordFacts]:
        facts: dict[tuple[str, int], RecordFacts] = {}
        for dataset in dict.fromkeys(h.dataset for h in hits):
            rows = [h.row for h in hits if h.dataset == dataset]
            for row, fact in record_facts(db, dataset, rows, looked, dataset in documents,
                                          cards=cards.get(dataset)).items():
                if sides and any(s.side in sides for s in fact.segments):
                    fact.segments = [s for s in fact.segments if s.side in sides]
                facts[(dataset, row)] = fact
        return facts

    if aside:
        return marker, _READERS.submit(read)
    done: concurrent.futures.Future = concurrent.futures.Future()
    done.set_result(read())
    return marker, done


def _add_snippets(hits: list[Hit], marker: Marker, reading: "concurrent.futures.Future") -> None:
    facts = reading.result()
    pages = []
    for hit in hits:
        fact = facts.get((hit.dataset, hit.row))
        parts = []
        if fact is not None:  # message by message: the snippet knows its speaker
            hit.source_id = fact.source_id
            hit.score_chosen, hit.score_rejected, hit.labels = fact.score_chosen, fact.score_rejected, fact.labels
            parts = [((s.side, s.speaker, s.turn), s.text) for s in fact.segments]
        pages.append([(where, text, marker.candidates(text)) for where, text in parts])
    # the stems of every candidate word of the page in one go (one call to Java for the new ones)
    stems(w for parts in pages for _, _, found in parts for _, _, w in found)
    for hit, parts in zip(hits, pages):
        best = None
        for where, text, found in parts:
            snippet, n = highlight(text, marker, found=found)
            if best is None or n > best[2]:
                best = (where, snippet, n)
        if best:
            side, hit.speaker, hit.turn = best[0]
            hit.part = "" if side in ("contents", "text") else side
            hit.snippet = best[1]
