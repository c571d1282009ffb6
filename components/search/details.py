"""What a hit card shows besides its score: the record's messages (so that a snippet can say which
side and which speaker it comes from), its ratings and margin, and its label status.

Read from the database for the rows of one page of hits, one query each, after Lucene ranked them.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Iterable

from ..store import Database

SIDES = ("prompt", "chosen", "rejected")
JUDGMENTS = ("chosen", "rejected", "tie", "both_bad")
"""The labels that count as a judgment (a skip does not)."""


@dataclass
class Segment:
    """One piece of a record a snippet may come from: a message of a side, or a document's text."""

    side: str  # prompt | chosen | rejected | text
    speaker: str  # the message's role ('' for a document's text)
    turn: int | None  # 1 for the side's first message (None for a document's text)
    text: str


@dataclass
class RecordFacts:
    segments: list[Segment]
    score_chosen: float | None = None
    score_rejected: float | None = None
    labels: dict[str, int] = field(default_factory=dict)  # current judgments: {label: how many}
    source_id: str | None = None  # the record's id in its source


def segments(record: dict, field_name: str = "contents") -> list[Segment]:
    """The pieces of ``record`` that searching ``field_name`` looks at, message by message.

    >>> rec = {"prompt": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yes?"},
    ...                   {"role": "user", "content": "Tea?"}],
    ...        "chosen": [{"role": "assistant", "content": "Green."}], "rejected": None, "text": None}
    >>> [(s.side, s.speaker, s.turn, s.text) for s in segments(rec, "final")]
    [('prompt', 'user', 3, 'Tea?'), ('chosen', 'assistant', 1, 'Green.')]
    >>> [s.side for s in segments({"text": "A note.", "prompt": None, "chosen": None, "rejected": None})]
    ['text']
    """
    out: list[Segment] = []
    if field_name == "contents" and record.get("text"):
        out.append(Segment("text", "", None, record["text"]))
    for side in SIDES:
        if field_name not in ("contents", "final", side):
            continue
        messages = list(enumerate(record.get(side) or [], start=1))
        if field_name == "final":  # the last user turn of the prompt, the last turn of each response
            messages = [m for m in messages if side != "prompt" or (m[1].get("role") or "") == "user"][-1:]
        for turn, m in messages:
            if m.get("content"):
                out.append(Segment(side, m.get("role") or "", turn, m["content"]))
    return out


_LABELLED: "weakref.WeakKeyDictionary[Database, dict[str, tuple[int, bool]]]" = weakref.WeakKeyDictionary()
"""Per database, dataset -> (db.generation when asked, whether it has any label event)."""


def _has_labels(db: Database, dataset: str) -> bool:
    """Whether ``dataset`` has any label event (asked again only after a write to the database)."""
    known = _LABELLED.setdefault(db, {})
    seen = known.get(dataset)
    if seen is None or seen[0] != db.generation:
        generation = db.generation
        seen = known[dataset] = (generation, bool(db.scalar(
            "SELECT EXISTS (SELECT 1 FROM label_events WHERE dataset = ?)", [dataset])))
    return seen[1]


def record_facts(db: Database, dataset: str, rows: Iterable[int], field_name: str = "contents",
                 documents: bool = False) -> dict[int, RecordFacts]:
    """{row: its segments for ``field_name``, ratings and current judgments} for ``rows`` of ``dataset``
    (``documents``: a dataset of documents, whose rows have text and no sides or ratings)."""
    rows = sorted(set(int(r) for r in rows))
    if not rows:
        return {}
    out = {}
    # the page's rows picked by a semi-join (a third faster than a join at ten million rows)
    # (a document's empty sides are not read: their columns cost a third of the lookup)
    columns = ("row, text, NULL AS prompt, NULL AS chosen, NULL AS rejected, NULL AS score_chosen, "
               "NULL AS score_rejected, source_id") if documents else \
        "row, text, prompt, chosen, rejected, score_chosen, score_rejected, source_id"
    for r in db.dicts(
        f"SELECT {columns} FROM records WHERE dataset = ? AND row IN (SELECT unnest(?::BIGINT[]))",
        [dataset, rows],
    ):
        out[r["row"]] = RecordFacts(segments(r, field_name), r["score_chosen"], r["score_rejected"],
                                  source_id=r["source_id"])
    if not _has_labels(db, dataset):
        return out  # nothing labelled yet: no need to ask which labels are current
    for row, label, n in db.rows(
        f"""SELECT row, label, count(*) FROM current_labels JOIN (SELECT unnest(?::BIGINT[]) AS row) USING (row)
            WHERE dataset = ? AND label IN ({', '.join("'" + j + "'" for j in JUDGMENTS)})
            GROUP BY row, label ORDER BY row, count(*) DESC, label""",
        [rows, dataset],
    ):
        if row in out:
            out[row].labels[label] = n
    return out
