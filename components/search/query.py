"""Queries: plain words or Lucene syntax, turned into Lucene queries the way Pyserini builds them.

Plain words go through Anserini's bag-of-words generator with Anserini's English analyzer (what
Pyserini's ``LuceneSearcher.search(q)`` runs); Lucene syntax goes through Lucene's classic
``QueryParser`` with the same analyzer, whose own message explains a query it rejects.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import QuerySyntaxError, SearchError
from .java import java, java_message, locked

FIELDS = {
    "contents": "everything",
    "prompt": "prompt",
    "chosen": "chosen",
    "rejected": "rejected",
    "final": "final turns",
}
"""The searchable fields and how the UI names them."""

MODES = {"words": "plain words", "lucene": "Lucene syntax"}


@dataclass
class ParsedQuery:
    """A Lucene query and what it was parsed from."""

    lucene: object
    text: str
    field: str
    mode: str

    @locked
    def expanded(self, rewrite):
        """The same query parsed again with ``rewrite`` (a MultiTermQuery rewrite method) for its
        wildcards, prefixes, regular expressions and ranges."""
        if self.mode == "words":
            return self.lucene
        J = java()
        parser = J.QueryParser(self.field, J.analyzer)
        parser.setMultiTermRewriteMethod(rewrite)
        return parser.parse(self.text)


@locked
def parse_query(text: str, field_name: str = "contents", mode: str = "words") -> ParsedQuery:
    """The Lucene query for ``text``: bag of words over ``field_name``, or Lucene syntax."""
    J = java()
    if field_name not in FIELDS:
        raise SearchError(f"unknown field {field_name!r} (fields: {', '.join(FIELDS)})")
    if mode not in MODES:
        raise SearchError(f"unknown mode {mode!r} (modes: {', '.join(MODES)})")
    text = (text or "").strip()
    if not text:
        raise SearchError("type something to search for")
    if mode == "words":
        if J.AnalyzerUtils.analyze(J.analyzer, text).isEmpty():
            raise SearchError(f"no searchable words in {text!r} (only stop words or punctuation?)")
        return ParsedQuery(J.bag_of_words.buildQuery(field_name, J.analyzer, text), text, field_name, mode)
    parser = J.QueryParser(field_name, J.analyzer)  # a parser is not thread-safe: one per query
    try:
        query = parser.parse(text)
    except J.JavaException as err:
        raise QuerySyntaxError(java_message(err)) from None
    unknown = sorted(fields_of(query) - set(FIELDS))
    if unknown:
        raise QuerySyntaxError(f"unknown field{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} "
                               f"in {text!r} (fields: {', '.join(FIELDS)})")
    return ParsedQuery(query, text, field_name, mode)


_CLAUSE = "org.apache.lucene.search.BooleanClause"
_NESTED = {  # queries that hold queries: how to reach them
    "BooleanQuery": lambda J, q: [J.cast(_CLAUSE, c).getQuery() for c in q.clauses().toArray()],
    "BoostQuery": lambda J, q: [q.getQuery()],
    "ConstantScoreQuery": lambda J, q: [q.getQuery()],
    "DisjunctionMaxQuery": lambda J, q: list(q.getDisjuncts().toArray()),
}


@locked
def fields_of(query) -> set[str]:
    """The fields a parsed Lucene query names (a ``field:`` prefix the parser takes as it is)."""
    J = java()
    out: set[str] = set()

    def walk(q) -> None:
        name = q.getClass().getName()
        q = J.cast(name, q)
        nested = _NESTED.get(name.rpartition(".")[2])
        if nested:
            for sub in nested(J, q):
                walk(sub)
        elif hasattr(q, "getField"):  # phrases, wildcards, prefixes, fuzzy terms, ranges, regexps
            out.add(str(q.getField()))
        elif hasattr(q, "getTerm"):
            out.add(str(q.getTerm().field()))
        # MatchAllDocsQuery and the like name no field

    walk(query)
    return out
