"""Batch search and TREC runs: topics in, one ranked list per topic, run files out (the form
``trec_eval`` reads)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence

from ..store import Database
from .engine import Hit, ranked, searchable
from .errors import QuerySyntaxError, SearchError
from .filters import Filters, combine, filter_clauses
from .index import Progress, open_searcher
from .java import java, java_message, locked
from .query import parse_query


def source_ids(db: Database, dataset: str, rows: Iterable[int]) -> dict[int, str]:
    """{row: source id} for those of ``rows`` whose record has a source id."""
    return dict(db.rows(
        """SELECT row, source_id FROM records
           WHERE dataset = ? AND source_id IS NOT NULL AND row IN (SELECT unnest(?::BIGINT[]))""",
        [dataset, list(rows)],
    ))


def read_topics(path: str | os.PathLike) -> list[tuple[str, str]]:
    """(qid, query) pairs of a topics file with one ``qid<TAB>query`` per line."""
    topics = []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise SearchError(f"cannot read topics {path}: {err.strerror or err}") from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        qid, tab, text = line.partition("\t")
        if not tab or not qid.strip() or not text.strip():
            raise SearchError(f"{path}, line {n}: expected 'qid<TAB>query', got {line[:80]!r}")
        topics.append((qid.strip(), text.strip()))
    if not topics:
        raise SearchError(f"{path}: no topics")
    return topics


@locked
def batch_search(db: Database, datasets: Sequence[str] | str, topics: Sequence[tuple[str, str]], k: int = 1000,
                 field: str = "contents", mode: str = "words", filters: Filters | None = None,
                 progress: Progress | None = None) -> dict[str, list[Hit]]:
    """{qid: ranked hits} for many queries (no snippets; source ids filled in)."""
    report = progress or (lambda frac, desc: None)
    filters = filters or Filters()
    statuses = searchable(db, datasets, filters.split)
    J = java()
    out: dict[str, list[Hit]] = {}
    if not statuses:
        return {qid: [] for qid, _ in topics}
    searcher = open_searcher(statuses)
    clauses = filter_clauses(db, [s.dataset for s in statuses], filters)
    for i, (qid, text) in enumerate(topics):
        try:
            # topics are searched as Pyserini searches them: quotes in a topic are not phrases
            query = parse_query(text, field, mode, quotes_and_fields=False)
        except QuerySyntaxError as err:
            raise QuerySyntaxError(f"topic {qid}: {err}") from None
        except SearchError:
            out[qid] = []
            continue
        try:
            _, found = ranked(searcher, combine(query.lucene, clauses), 0, k)
        except J.JavaException as err:
            raise SearchError(f"topic {qid}: the search failed: {java_message(err)}") from None
        out[qid] = [Hit(n + 1, d, row, score) for n, (d, row, score, _) in enumerate(found)]
        report((i + 1) / len(topics), f"searched {i + 1} of {len(topics)} topics")
    by_dataset: dict[str, set[int]] = {}
    for hits in out.values():
        for h in hits:
            by_dataset.setdefault(h.dataset, set()).add(h.row)
    ids = {d: source_ids(db, d, rows) for d, rows in by_dataset.items()}
    for hits in out.values():
        for h in hits:
            h.source_id = ids[h.dataset].get(h.row)
    return out


def trec_docid(hit: Hit, several: bool = False) -> str:
    """The docid a run file names: the source id when the row has one, else the row (with its
    dataset when several datasets were searched)."""
    if hit.source_id:
        return str(hit.source_id)
    return f"{hit.dataset}/{hit.row}" if several else str(hit.row)


def write_run(results: dict[str, list[Hit]], path: str | os.PathLike, tag: str = "studio-bm25") -> int:
    """Write a TREC run (``qid Q0 docid rank score tag``); returns the number of lines.

    Scores are rounded to 4 decimals and ties nudged down by 1e-6 each (as Anserini does), so the
    order of the file's scores is the order of the ranking whatever tie rule a tool applies.
    """
    several = len({h.dataset for hits in results.values() for h in hits}) > 1
    lines = []
    for qid, hits in results.items():
        prev, dup = None, 0
        for h in hits:
            score = round(h.score, 4)
            if prev is not None and prev - score <= 1e-4:
                dup += 1
                score = round(score - 1e-6 * dup, 6)
            else:
                dup = 0
            prev = round(h.score, 4)
            lines.append(f"{qid} Q0 {trec_docid(h, several)} {h.rank} {score:.6f} {tag}")
    try:
        Path(path).write_text("\n".join(lines) + ("\n" if lines else ""), encoding="utf-8")
    except OSError as err:
        raise SearchError(f"cannot write the run {path}: {err.strerror or err}") from None
    return len(lines)

