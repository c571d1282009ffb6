"""Pairs of N responses: what a record of an N-response dataset holds, and a ranking as a label.

An N-response source (UltraFeedback's raw rows, or any ``prompt`` + ``responses`` list; see
``formats_multi``) is stored as ordinary pairs, so that every queue, majority and export works: the
pair's chosen side is the best-scored response and its rejected side the worst (the first and the
second when there are no scores), and the record's metadata keeps every response:

* ``responses`` -- ``[{"content", "score", "aspects": {aspect: rating}}, ...]`` in source order;
* ``chosen_index`` / ``rejected_index`` -- which of them the pair's two sides are.

An annotator ranks the responses (indexes, best first; every response once). The ranking is stored
on the label (``label_events.ranking``) and the label itself follows from it: ``chosen`` when the
pair's chosen response is ranked above its rejected one, else ``rejected``. Export turns rankings
into pairs with ``binarize`` (``export_binarized``).

>>> ranking_label([2, 0, 1, 3], chosen_index=0, rejected_index=3)
'chosen'
>>> ranking_label([3, 2, 1, 0], chosen_index=0, rejected_index=3)
'rejected'
"""

from __future__ import annotations

import json
from typing import Any

from ..store import Database
from .events import LabelError, check_row

MAX_RESPONSES = 9
"""Responses a record may hold for ranking from the keyboard (keys 1 to 9)."""


def record_responses(metadata: Any) -> list[dict] | None:
    """The responses of a record's metadata (None when it is a plain pair of two)."""
    if isinstance(metadata, str):
        try:
            metadata = json.loads(metadata)
        except json.JSONDecodeError:
            return None
    items = (metadata or {}).get("responses") if isinstance(metadata, dict) else None
    if not isinstance(items, list) or len(items) < 2:
        return None
    out = []
    for item in items:
        if isinstance(item, dict):
            out.append({"content": str(item.get("content") or ""), "score": item.get("score"),
                        "aspects": _ratings(item.get("aspects"))})
        else:
            out.append({"content": str(item), "score": None, "aspects": {}})
    return out


def _ratings(aspects: Any) -> dict:
    """Per-aspect ratings; UltraFeedback's ``{"helpfulness": {"Rating": "4", "Rationale": ...}}`` gives
    ``{"helpfulness": 4}`` ("N/A" and the like stay as written).

    >>> _ratings({"helpfulness": {"Rating": "4", "Rationale": "clear"}, "honesty": {"Rating": "N/A"}, "x": 2})
    {'helpfulness': 4.0, 'honesty': 'N/A', 'x': 2}
    """
    if not isinstance(aspects, dict):
        return {}
    out = {}
    for name, value in aspects.items():
        if isinstance(value, dict):
            value = value.get("Rating", value.get("rating"))
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                pass
        out[name] = value
    return out


def ranking_label(ranking: list[int], chosen_index: int, rejected_index: int) -> str:
    """The pair's label a ranking implies."""
    place = {r: i for i, r in enumerate(ranking)}
    return "chosen" if place.get(chosen_index, len(ranking)) < place.get(rejected_index, len(ranking)) else "rejected"


def clean_ranking(ranking: Any, n: int) -> list[int]:
    """A ranking of ``n`` responses as a list of 0-based indexes, best first; every response once.
    A string of digits is 1-based keys as pressed ("3142").

    >>> clean_ranking("3142", 4), clean_ranking([1, 0], 2)
    ([2, 0, 3, 1], [1, 0])
    """
    if isinstance(ranking, str):
        text = ranking.replace(",", "").replace(" ", "")
        if not text.isdigit():
            raise LabelError(f"a ranking is the response numbers in order, best first, not {ranking!r}")
        ranking = [int(c) - 1 for c in text]
    try:
        out = [int(r) for r in ranking]
    except (TypeError, ValueError):
        raise LabelError(f"a ranking is a list of response indexes, not {ranking!r}") from None
    if sorted(out) != list(range(n)):
        raise LabelError(f"a ranking names each of the {n} responses once, best first")
    return out


def check_ranking(db: Database, dataset: str, row: Any, ranking: Any) -> tuple[list[int], str]:
    """(the ranking, the label it implies) of pair ``row``, which must hold N responses."""
    row = check_row(db, dataset, row)
    meta = db.scalar("SELECT metadata FROM records WHERE dataset = ? AND row = ?", [dataset, row])
    responses = record_responses(meta)
    if responses is None:
        raise LabelError(f"row {row} of {dataset!r} is a pair of two responses: label it, do not rank it")
    meta = json.loads(meta) if isinstance(meta, str) else meta
    out = clean_ranking(ranking, len(responses))
    return out, ranking_label(out, int(meta.get("chosen_index", 0)), int(meta.get("rejected_index", 1)))
