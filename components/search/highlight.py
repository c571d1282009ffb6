"""Snippets with the matched words marked (the Anserini jar has no highlighter).

Which words to mark is Lucene's decision, not ours: the query is rewritten against the searched
index, so that a wildcard, prefix, fuzzy term, regular expression or range becomes the index terms
it matches there, and Lucene's term collector gives the terms of its positive clauses. A word of the
text is marked when the index's analyzer turns it into one of those terms (so "running" is marked
for "run", and "calm" for ``clam~1``). The text is HTML-escaped before the marks are put in.
"""

from __future__ import annotations

import html
import re
from typing import Iterable

from .java import java, locked
from .query import FIELDS, ParsedQuery, stems

SNIPPET_CHARS = 280
EXPANSIONS = 256
"""At most this many index terms are marked for one wildcard, prefix, range or regular expression."""

_WORD = re.compile(r"\w+(?:['’.]\w+)*")


def matched_terms(searcher, query: ParsedQuery, fields: Iterable[str] = FIELDS) -> set[str]:
    """The index terms of ``fields`` that ``query`` matches in the indexes of ``searcher``."""
    fields = set(fields)
    return {text for field, text in matched_fields_and_terms(searcher, query) if field in fields}


@locked
def matched_fields_and_terms(searcher, query: ParsedQuery) -> set[tuple[str, str]]:
    """(field, index term) of each term ``query`` matches in the indexes of ``searcher`` (its
    positive clauses: a prohibited word is not a match)."""
    if query.terms is not None:  # a bag of words matches its own analyzed words
        return {(query.field, t) for t in query.terms}
    J = java()
    lucene = query.lucene
    if query.mode != "words":  # plain words are term queries already
        try:
            lucene = searcher.rewrite(query.expanded(J.TopTermsRewrite(EXPANSIONS)))
        except J.JavaException:  # more clauses than Lucene allows in all: the query's own terms
            pass
    found = J.HashSet()
    lucene.visit(J.QueryVisitor.termCollector(found))
    terms = (J.cast("org.apache.lucene.index.Term", t) for t in found.toArray())
    return {(t.field(), t.text()) for t in terms}


class Marker:
    """Decides which words of a text to mark: those the analyzer turns into one of ``terms``."""

    def __init__(self, terms: Iterable[str]):
        self.terms = set(terms)
        # Porter stemming only rewrites the end of a word (at most the last two letters of its stem
        # differ from the word's), so a word of ASCII letters and digits (one token) can stem to a
        # term only if it starts with that term less its last two letters: other such words are
        # not looked up. Words the analyzer may split (dots, apostrophes, CJK) always are.
        self.candidate = None
        if 0 < len(self.terms) <= 2000:
            heads = tuple(sorted({t[:max(1, len(t) - 2)] for t in self.terms}, key=len))
            self.candidate = lambda word: word.startswith(heads)  # nothing to compile per search

    def __bool__(self) -> bool:
        return bool(self.terms)

    def candidates(self, text: str) -> list[tuple[int, int, str]]:
        """(start, end, lower-cased word) of the words of ``text`` that may match."""
        if not self:
            return []
        candidate = self.candidate
        found = []
        for m in _WORD.finditer(text):
            word = m.group().lower()
            if candidate is None or candidate(word) or not (word.isascii() and word.isalnum()):
                found.append((m.start(), m.end(), word))
        return found

    def matches(self, text: str, found: list[tuple[int, int, str]] | None = None) -> list[tuple[int, int, str]]:
        """(start, end, term) of each matched word of ``text`` (``found``: its candidates, if known)."""
        found = self.candidates(text) if found is None else found
        if not found:
            return []
        table = stems(w for _, _, w in found)
        out = []
        for start, end, word in found:
            term = next((s for s in table[word] if s in self.terms), None)
            if term is not None:
                out.append((start, end, term))
        return out


def highlight(text: str, marker: Marker, width: int = SNIPPET_CHARS,
              found: list[tuple[int, int, str]] | None = None) -> tuple[str, int]:
    """An HTML snippet of ``text`` around its best run of matches: the text escaped, matched
    words in <mark>. Returns (html, number of distinct terms matched in the snippet)."""
    text = text or ""
    matches = marker.matches(text, found)
    start, end = _window(text, matches, width)
    parts, pos, seen = [], start, set()
    if start > 0:
        parts.append("… ")
    for s, e, term in matches:
        if s < start or e > end:
            continue
        parts.append(html.escape(text[pos:s]))
        parts.append(f"<mark>{html.escape(text[s:e])}</mark>")
        seen.add(term)
        pos = e
    parts.append(html.escape(text[pos:end]))
    if end < len(text):
        parts.append(" …")
    return "".join(parts), len(seen)


def _window(text: str, matches: list[tuple[int, int, str]], width: int) -> tuple[int, int]:
    """The part of ``text`` (at most ``width`` characters, cut at spaces) with the most distinct
    matched terms, then the most matches."""
    if len(text) <= width:
        return 0, len(text)
    best, best_key = 0, (-1, -1)
    j = 0
    for i, (s, _, _) in enumerate(matches):
        while j < len(matches) and matches[j][1] <= s + width:
            j += 1
        inside = matches[i:j]
        key = (len({m[2] for m in inside}), len(inside))
        if key > best_key:
            best, best_key = s, key
    start = 0 if not matches else max(0, best - width // 5)
    if start > 0:
        space = text.rfind(" ", 0, start)
        start = space + 1 if space >= start - 30 and space >= 0 else start
    end = min(len(text), start + width)
    if end < len(text):
        space = text.rfind(" ", start + width // 2, end)
        end = space if space > 0 else end
    return start, end
