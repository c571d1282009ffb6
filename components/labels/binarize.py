"""Rated or ranked responses into preference pairs: the UltraFeedback and Tulu recipes, as pure functions.

A prompt with N responses, each with a score (a rating, or a rank turned into a score by
``scores_from_ranking``), becomes pairs of (chosen, rejected, margin) by a recipe:

- ``best-worst``: the best response against the worst one (one pair per prompt);
- ``best-random``: the best response against one of the others drawn at random (seeded);
- ``all-pairs``: every two responses with different scores.

Ties make no pair: two responses with the same score say nothing about which is preferred. When the
best (or the worst) score is shared, the first response with it, in the given order, is taken, so the
result never depends on the order of a hash or a sort that is not stable. The margin is the score
difference (chosen minus rejected), the column TRL's ``RewardTrainer`` reads.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Sequence

RECIPES = ("best-worst", "best-random", "all-pairs")


class BinarizeError(ValueError):
    """A recipe or its input that cannot be used; the message says which."""


@dataclass(frozen=True)
class Pair:
    chosen: int  # index of the chosen response
    rejected: int  # index of the rejected response
    margin: float  # score of chosen minus score of rejected (> 0)


def _usable(scores: Sequence[float | None]) -> list[int]:
    """Indexes of the responses that have a score (None and NaN are left out).

    >>> _usable([1.0, None, float("nan"), 2])
    [0, 3]
    """
    return [i for i, s in enumerate(scores) if s is not None and s == s]


def binarize(scores: Sequence[float | None], recipe: str, rng: random.Random | None = None) -> list[Pair]:
    """The pairs ``recipe`` makes of responses with these ``scores`` (higher is better).

    >>> binarize([7, 3, 9, 3], "best-worst")
    [Pair(chosen=2, rejected=1, margin=6.0)]
    >>> [(p.chosen, p.rejected) for p in binarize([7, 3, 9, 3], "all-pairs")]
    [(0, 1), (0, 3), (2, 0), (2, 1), (2, 3)]
    >>> binarize([5, 5, 5], "best-worst")  # all tied: no pair
    []
    >>> len(binarize([8, 2, 5], "best-random", random.Random(0)))
    1
    """
    if recipe not in RECIPES:
        raise BinarizeError(f"unknown recipe {recipe!r}: use one of {', '.join(RECIPES)}")
    idx = _usable(scores)
    if len(idx) < 2:
        return []
    s = {i: float(scores[i]) for i in idx}
    if recipe == "all-pairs":
        out = []
        for n, a in enumerate(idx):
            for b in idx[n + 1:]:
                if s[a] != s[b]:
                    hi, lo = (a, b) if s[a] > s[b] else (b, a)
                    out.append(Pair(hi, lo, s[hi] - s[lo]))
        return sorted(out, key=lambda p: (p.chosen, p.rejected))
    best = max(idx, key=lambda i: (s[i], -i))  # the first of the best
    if recipe == "best-worst":
        worst = min(idx, key=lambda i: (s[i], i))  # the first of the worst
        return [] if s[best] == s[worst] else [Pair(best, worst, s[best] - s[worst])]
    # best-random: one of the others with a lower score, drawn with the caller's generator
    others = [i for i in idx if s[i] < s[best]]
    if not others:
        return []
    pick = (rng or random.Random(0)).choice(others)
    return [Pair(best, pick, s[best] - s[pick])]


def scores_from_ranking(ranking: Sequence[int], n: int) -> list[float | None]:
    """A ranking (response indexes, best first) as scores: the best gets ``len(ranking)``, the next one
    less; a response left out of the ranking gets None (no pair is made with it).

    >>> scores_from_ranking([2, 0, 1], 4)
    [2.0, 1.0, 3.0, None]
    """
    if len(set(ranking)) != len(ranking):
        raise BinarizeError("a ranking names each response at most once")
    if any(not 0 <= r < n for r in ranking):
        raise BinarizeError(f"a ranking names responses 0 to {n - 1}")
    out: list[float | None] = [None] * n
    for place, r in enumerate(ranking):
        out[r] = float(len(ranking) - place)
    return out


def binarize_rows(rows: Sequence[dict], recipe: str, seed: int = 0) -> list[dict]:
    """Rows of ``{"prompt", "responses": [...], "scores": [...]}`` into pair rows
    ``{"prompt", "chosen", "rejected", "margin", "source_row", "recipe", "seed"}``.

    One generator seeded with ``seed`` draws for the whole list, so the same rows, recipe and seed give
    the same pairs.

    >>> rows = [{"prompt": "p", "responses": ["a", "b", "c"], "scores": [1, 3, 2]}]
    >>> [(r["chosen"], r["rejected"], r["margin"]) for r in binarize_rows(rows, "best-worst")]
    [('b', 'a', 2.0)]
    """
    rng = random.Random(seed)
    out = []
    for n, row in enumerate(rows):
        responses, scores = row.get("responses"), row.get("scores")
        if not isinstance(responses, (list, tuple)) or not isinstance(scores, (list, tuple)):
            raise BinarizeError(f"row {n}: expected lists 'responses' and 'scores', found keys {sorted(row)}")
        if len(responses) != len(scores):
            raise BinarizeError(f"row {n}: {len(responses)} responses but {len(scores)} scores")
        for p in binarize(scores, recipe, rng):
            out.append({"prompt": row.get("prompt"), "chosen": responses[p.chosen],
                        "rejected": responses[p.rejected], "margin": p.margin, "source_row": n,
                        "recipe": recipe, "seed": seed})
    return out


def _text(item) -> str | None:
    if isinstance(item, str):
        return item
    if isinstance(item, dict):
        for key in ("response", "text", "content"):
            if isinstance(item.get(key), str):
                return item[key]
    return None


def _score(item):
    if isinstance(item, dict):
        for key in ("overall_score", "score", "rating"):
            value = item.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value)
    return None


def responses_of(row: dict) -> dict:
    """One source row with N responses as ``{"prompt", "responses", "scores"}``.

    Two shapes are read: UltraFeedback's raw rows (``instruction`` and ``completions``, each completion
    with ``response`` and ``overall_score``), and any row with ``prompt`` and ``responses`` (strings,
    or objects with ``text``/``response``/``content`` and an optional ``score``/``rating``), with an
    optional parallel ``scores`` list. A response without a score gets None.

    >>> responses_of({"instruction": "Hi", "completions": [{"response": "a", "overall_score": 7}, {"response": "b"}]})
    {'prompt': 'Hi', 'responses': ['a', 'b'], 'scores': [7.0, None]}
    >>> responses_of({"prompt": "Hi", "responses": ["a", "b"], "scores": [1, 2]})["scores"]
    [1.0, 2.0]
    """
    if "completions" in row and "instruction" in row:
        prompt, items = row["instruction"], row["completions"]
    elif "responses" in row and "prompt" in row:
        prompt, items = row["prompt"], row["responses"]
    else:
        raise BinarizeError("expected UltraFeedback's 'instruction' and 'completions', or 'prompt' and "
                            f"'responses'; found keys {sorted(row)}")
    if not isinstance(prompt, str) or not isinstance(items, list):
        raise BinarizeError("the prompt must be text and the responses a list")
    texts = [_text(i) for i in items]
    if any(t is None for t in texts):
        raise BinarizeError("every response must be text, or an object with 'response', 'text' or 'content'")
    scores = [_score(i) for i in items]
    given = row.get("scores")
    if given is not None:
        if not isinstance(given, list) or len(given) != len(items):
            raise BinarizeError("'scores' must be a list as long as 'responses'")
        scores = [None if s is None or isinstance(s, bool) or not isinstance(s, (int, float)) else float(s)
                  for s in given]
    return {"prompt": prompt, "responses": texts, "scores": scores}


def binarize_file(source: str, out: str, recipe: str, seed: int = 0) -> dict:
    """A JSON-lines file of N-response rows into a JSON-lines file of pairs (TRL's standard preference
    format with ``margin``); rows that cannot be read are counted by reason, not dropped silently.
    Written through a ``.part`` file, so a failure leaves no half-written output. Returns a summary."""
    import gzip
    import json
    import os
    from collections import Counter

    if recipe not in RECIPES:
        raise BinarizeError(f"unknown recipe {recipe!r}: use one of {', '.join(RECIPES)}")
    opener = gzip.open if str(source).endswith(".gz") else open
    rows, bad = [], Counter()
    with opener(source, "rt", encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                if not isinstance(row, dict):
                    raise BinarizeError("a row must be a JSON object")
                rows.append(responses_of(row))
            except json.JSONDecodeError:
                bad["not JSON"] += 1
            except BinarizeError as e:
                bad[str(e)] += 1
    pairs = binarize_rows(rows, recipe, seed)
    part = f"{out}.part"
    try:
        with open(part, "w", encoding="utf-8") as f:
            for p in pairs:
                f.write(json.dumps(p, ensure_ascii=False) + "\n")
        os.replace(part, out)
    finally:
        if os.path.exists(part):
            os.remove(part)
    return {"prompts": len(rows), "pairs": len(pairs), "recipe": recipe, "seed": seed,
            "rejected": sum(bad.values()), "rejected_reasons": dict(bad), "out": str(out)}
