"""Word-level diff of two texts, as HTML that is safe to show (every piece of text is escaped).

>>> a, b = word_diff("The sky is blue.", "The sky is <b>green</b>.")
>>> a
'The sky is <del class="wd-del">blue.</del>'
>>> b
'The sky is <ins class="wd-ins">&lt;b&gt;green&lt;/b&gt;.</ins>'
"""

from __future__ import annotations

import html
import re
from difflib import SequenceMatcher

_TOKEN = re.compile(r"\S+\s*|\s+")
MAX_TOKENS = 6000
"""Above this many words on a side, the diff compares lines instead (word diffs get slow and noisy)."""


def tokens(text: str) -> list[str]:
    """Words with the whitespace that follows them (joined back they give the text)."""
    return _TOKEN.findall(text or "")


def lines(text: str) -> list[str]:
    return (text or "").splitlines(keepends=True)


def _mark(pieces: list[str], tag: str) -> str:
    body = "".join(pieces)
    if not body:
        return ""
    # keep the trailing whitespace outside the mark so that marks hug the words
    core = body.rstrip()
    tail = body[len(core):]
    if not core:
        return html.escape(body)
    return f'<{tag} class="wd-{tag}">{html.escape(core)}</{tag}>{html.escape(tail)}'


def word_diff(a: str, b: str) -> tuple[str, str]:
    """HTML of ``a`` with the words missing from ``b`` in ``<del>``, and of ``b`` with its new words in ``<ins>``.

    Words are compared without their trailing whitespace, so re-wrapping does not count as a change.
    """
    ta, tb = tokens(a), tokens(b)
    if max(len(ta), len(tb)) > MAX_TOKENS:
        ta, tb = lines(a), lines(b)
    ka = [t.strip() for t in ta]
    kb = [t.strip() for t in tb]
    out_a: list[str] = []
    out_b: list[str] = []
    for op, i1, i2, j1, j2 in SequenceMatcher(None, ka, kb, autojunk=False).get_opcodes():
        if op == "equal":
            out_a.append(html.escape("".join(ta[i1:i2])))
            out_b.append(html.escape("".join(tb[j1:j2])))
        else:
            out_a.append(_mark(ta[i1:i2], "del"))
            out_b.append(_mark(tb[j1:j2], "ins"))
    return "".join(out_a), "".join(out_b)


def similarity(a: str, b: str) -> float:
    """Share of words the two texts have in common (0..1), the ratio ``word_diff`` is built on."""
    ka = [t.strip() for t in tokens(a)]
    kb = [t.strip() for t in tokens(b)]
    if not ka and not kb:
        return 1.0
    if max(len(ka), len(kb)) > MAX_TOKENS:
        ka, kb = lines(a), lines(b)
    return SequenceMatcher(None, ka, kb, autojunk=False).ratio()


def counts(text: str) -> tuple[int, int]:
    """(characters, words) of ``text``."""
    text = text or ""
    return len(text), len(text.split())
