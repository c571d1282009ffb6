"""Queries: plain words or Lucene syntax, turned into Lucene queries the way Pyserini builds them.

Plain words go through Anserini's bag-of-words generator with Anserini's English analyzer (what
Pyserini's ``LuceneSearcher.search(q)`` runs), except two things people type without thinking of
syntax: a "quoted phrase" is searched as a phrase, and ``chosen:word`` (a known field and a colon)
searches that field; each is one more optional clause, as Lucene syntax would make it. Any other
operator (AND, -word, wild*, ...) is taken as a plain word, and ``ParsedQuery.ignored`` names it so
that the page can offer Lucene syntax. Lucene syntax goes through Lucene's classic ``QueryParser``
with the same analyzer, whose own message explains a query it rejects.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable

from .errors import QuerySyntaxError, SearchError
from .java import java, java_error, locked

FIELDS = {
    "contents": "everything",
    "prompt": "prompt",
    "chosen": "chosen",
    "rejected": "rejected",
    "final": "final turns",
}
"""The searchable fields and how the UI names them."""

MODES = {"words": "plain words", "lucene": "Lucene syntax"}


_STEMS: dict[str, tuple[str, ...]] = {}  # word -> its index terms: the analyzer is a Java call per batch
_SEPARATOR = "qzq0sep0qzq"


@locked
def stems(words: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """{word: the index terms the index's analyzer makes of it} (lower-cased words; cached).

    A stop word gives (); "running" gives ("run",).
    """
    words = set(words)
    missing = [w for w in words if w not in _STEMS]
    if missing:
        J = java()
        if len(_STEMS) > 500_000:
            _STEMS.clear()
        for i in range(0, len(missing), 2000):
            chunk = missing[i:i + 2000]
            tokens = list(J.AnalyzerUtils.analyze(J.analyzer, f" {_SEPARATOR} ".join(chunk)).toArray())
            groups: list[list[str]] = [[]]
            for t in tokens:
                if t == _SEPARATOR:
                    groups.append([])
                else:
                    groups[-1].append(t)
            if len(groups) != len(chunk):  # a word that split oddly (or is the separator): one by one
                groups = [list(J.AnalyzerUtils.analyze(J.analyzer, w).toArray()) for w in chunk]
            for w, g in zip(chunk, groups):
                _STEMS[w] = tuple(g)
    return {w: _STEMS.get(w, ()) for w in words}


@dataclass
class ParsedQuery:
    """A Lucene query and what it was parsed from."""

    lucene: object
    text: str
    field: str
    mode: str
    ignored: list[str] = field(default_factory=list)  # Lucene operators plain words took as words
    expanding: bool = False  # has wildcards, prefixes, fuzzy words, regular expressions or ranges
    terms: list[str] | None = None  # a bag of words: its analyzed words (it matches any of them)

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
def parse_query(text: str, field_name: str = "contents", mode: str = "words", quotes_and_fields: bool = True) -> ParsedQuery:
    """The Lucene query for ``text``: plain words over ``field_name``, or Lucene syntax. Plain words
    read "phrases" and ``field:`` prefixes unless ``quotes_and_fields`` is False (then every word is
    one more word of the bag, exactly as Pyserini's ``LuceneSearcher.search`` takes it)."""
    J = java()
    if field_name not in FIELDS:
        raise SearchError(f"unknown field {field_name!r} (fields: {', '.join(FIELDS)})")
    if mode not in MODES:
        raise SearchError(f"unknown mode {mode!r} (modes: {', '.join(MODES)})")
    text = (text or "").strip()
    if not text:
        raise SearchError("type something to search for")
    if mode == "words":
        try:
            return _plain_words(J, text, field_name, quotes_and_fields)
        except J.JavaException as err:  # more words than Lucene's clause limit
            raise _parse_error(err) from None
    costly = len(costly_parts(text))
    if costly > MAX_COSTLY_PARTS:  # before the parser compiles each one
        raise QuerySyntaxError(f"the query has {costly:,} wildcards, fuzzy words, ranges or regular "
                               f"expressions; at most {MAX_COSTLY_PARTS} are searched at once")
    parser = J.QueryParser(field_name, J.analyzer)  # a parser is not thread-safe: one per query
    # a wildcard, prefix, range or regular expression becomes one clause per term it matches, up to
    # Lucene's limit of 1,024 clauses: past it the query is refused at once (TooManyClauses), without
    # walking the rest of the term dictionary
    parser.setMultiTermRewriteMethod(J.MultiTermQuery.CONSTANT_SCORE_BOOLEAN_REWRITE)
    try:
        query = parser.parse(text)
    except J.JavaException as err:
        raise _parse_error(err) from None
    kinds: set[str] = set()
    unknown = sorted(fields_of(query, kinds) - set(FIELDS))
    if unknown:
        raise QuerySyntaxError(f"unknown field{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} "
                               f"in {text!r} (fields: {', '.join(FIELDS)})")
    return ParsedQuery(query, text, field_name, mode, expanding=bool(kinds & EXPANDING))


EXPANDING = {"WildcardQuery", "PrefixQuery", "RegexpQuery", "FuzzyQuery", "TermRangeQuery", "AutomatonQuery"}
"""Queries that stand for many terms of the index: their term walk gets the search's time budget."""


MAX_COSTLY_PARTS = 64
_COSTLY = re.compile(r'/(?:[^/\\]|\\.)+/|[^\s()"]*(?<!\\)[*?][^\s()"]*|[^\s()"]+~[\d.]*|[\[{][^\]}]* TO [^\]}]*[\]}]')


def costly_parts(text: str) -> list[str]:
    """The parts of a Lucene query that stand for many terms (regular expressions, wildcards, fuzzy
    words, ranges), found in its text before any parsing.

    >>> costly_parts('pyth* AND /.*x.*/ roam~1 year:[2000 TO 2010] "a phrase" plain')
    ['pyth*', '/.*x.*/', 'roam~1', '[2000 TO 2010]']
    """
    return _COSTLY.findall(text or "")


# a piece of plain words: field:"a phrase", field:word, "a phrase" or a word
_PIECE = re.compile(r'(?:(?P<field>[A-Za-z_]+):)?(?:"(?P<phrase>[^"]*)"|(?P<word>[^\s"]+))|(?P<quote>")')
_OPERATORS = re.compile(r'^(AND|OR|NOT|&&|\|\|)$|^[-+!]\w|[*?]|\w~\d*$|\w\^[\d.]+$|^\(|\)$')


def pieces(text: str) -> list[tuple[str | None, str, bool]]:
    """(field or None, words, is a phrase) of plain-words ``text``: quotes and known ``field:``
    prefixes recognised, everything else plain words (an unknown prefix stays part of its word).

    >>> pieces('tea "green leaves" chosen:sorry http://x.org prompt:"how long"')
    [(None, 'tea', False), (None, 'green leaves', True), ('chosen', 'sorry', False), (None, 'http://x.org', False), ('prompt', 'how long', True)]
    """
    out = []
    for m in _PIECE.finditer(text):
        if m.group("quote"):
            continue  # a quote left open: nothing to pair it with
        fld, phrase, word = m.group("field"), m.group("phrase"), m.group("word")
        if fld is not None and fld not in FIELDS:
            if phrase is not None:
                out.append((None, fld, False))
                out.append((None, phrase, True))
            else:
                out.append((None, f"{fld}:{word}", False))
            continue
        if phrase is not None:
            if phrase.strip():
                out.append((fld, phrase.strip(), True))
        elif word:
            out.append((fld, word, False))
    return out


def ignored_operators(text: str) -> list[str]:
    """The Lucene operators in plain-words ``text`` that are searched as words.

    >>> ignored_operators('egg AND -yolk boil* (soft) colour~1 chosen:sorry title:egg')
    ['AND', '-yolk', 'boil*', '(soft)', 'colour~1', 'title:egg']
    """
    outside = re.sub(r'"[^"]*"', " ", text)
    out = []
    for w in outside.split():
        prefix = re.match(r"^([A-Za-z_]+):\w", w)
        if _OPERATORS.search(w) or (prefix and prefix.group(1) not in FIELDS):
            out.append(w)
    return out


def _plain_words(J, text: str, field_name: str, quotes_and_fields: bool = True) -> ParsedQuery:
    found = pieces(text)
    ignored = ignored_operators(text)
    if not quotes_and_fields or all(fld is None and not phrase for fld, _, phrase in found):  # as Pyserini
        # the analyzer never makes one term of two pieces with space between them: each piece is
        # analyzed once per process (the same words' terms mark the snippets)
        spaced = text.split()
        table = stems(spaced)
        terms = list(dict.fromkeys(t for piece in spaced for t in table[piece]))
        if not terms:
            raise SearchError(f"no searchable words in {text!r} (only stop words or punctuation?)")
        return ParsedQuery(J.bag_of_words.buildQuery(field_name, J.analyzer, text), text, field_name, "words", ignored,
                           terms=terms)
    builder = J.BooleanQueryBuilder()
    clauses = 0
    words = " ".join(w for fld, w, phrase in found if fld is None and not phrase)
    if words and not J.AnalyzerUtils.analyze(J.analyzer, words).isEmpty():
        builder.add(J.bag_of_words.buildQuery(field_name, J.analyzer, words), J.occur_SHOULD)
        clauses += 1
    for fld, value, phrase in found:
        if fld is None and not phrase:
            continue
        if J.AnalyzerUtils.analyze(J.analyzer, value).isEmpty():
            continue
        target = fld or field_name
        escaped = J.QueryParser.escape(value)
        source = f'{target}:"{escaped}"' if phrase else f"{target}:({escaped})"
        builder.add(J.QueryParser(target, J.analyzer).parse(source), J.occur_SHOULD)
        clauses += 1
    if not clauses:
        raise SearchError(f"no searchable words in {text!r} (only stop words or punctuation?)")
    return ParsedQuery(builder.build(), text, field_name, "words", ignored)


_CLAUSE = "org.apache.lucene.search.BooleanClause"
_NESTED = {  # queries that hold queries: how to reach them
    "BooleanQuery": lambda J, q: [J.cast(_CLAUSE, c).getQuery() for c in q.clauses().toArray()],
    "BoostQuery": lambda J, q: [q.getQuery()],
    "ConstantScoreQuery": lambda J, q: [q.getQuery()],
    "DisjunctionMaxQuery": lambda J, q: list(q.getDisjuncts().toArray()),
}


@locked
def fields_of(query, kinds: set[str] | None = None) -> set[str]:
    """The fields a parsed Lucene query names (a ``field:`` prefix the parser takes as it is); the
    simple class names of its queries are added to ``kinds`` when given."""
    J = java()
    out: set[str] = set()

    def walk(q) -> None:
        name = q.getClass().getName()
        if kinds is not None:
            kinds.add(name.rpartition(".")[2])
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


def _parse_error(err) -> QuerySyntaxError:
    """The parser's refusal: Lucene's clause limit typed (``TooManyClauses``), else its own message."""
    error = java_error(err)
    return error if isinstance(error, QuerySyntaxError) else QuerySyntaxError(str(error))
