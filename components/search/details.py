"""What a hit card shows besides its score: the record's messages (so that a snippet can say which
side and which speaker it comes from), its ratings and margin, and its label status.

Read, for the rows of one page of hits after Lucene ranked them, from the index's copy of the records
(``cards.arrow``, an Arrow file written with the index and memory-mapped: a handful of rows taken by
position, whatever the size of the dataset) or, for an index built without one, from the database.
Labels are always read from the database, and only for a dataset that has any.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from ..schema import judged
from ..store import Database

CARDS = "cards.arrow"
"""The index folder's copy of its records' card columns (``CARD_COLUMNS``), in Arrow's file format."""
CARD_COLUMNS = ("row", "text", "prompt", "chosen", "rejected", "score_chosen", "score_rejected", "source_id")

SIDES = ("prompt", "chosen", "rejected")


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
                 documents: bool = False, cards: str | Path | None = None) -> dict[int, RecordFacts]:
    """{row: its segments for ``field_name``, ratings and current judgments} for ``rows`` of ``dataset``
    (``documents``: a dataset of documents, whose rows have text and no sides or ratings; ``cards``:
    the index's copy of the records to read them from, when it has one)."""
    rows = sorted(set(int(r) for r in rows))
    if not rows:
        return {}
    out = {}
    copy = open_cards(cards) if cards else None
    if copy is not None:
        for r in copy.take(rows):
            out[r["row"]] = RecordFacts(segments(r, field_name), r["score_chosen"], r["score_rejected"],
                                        source_id=r["source_id"])
        return _with_labels(db, dataset, rows, out)
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
    return _with_labels(db, dataset, rows, out)


def _with_labels(db: Database, dataset: str, rows: list[int], out: dict[int, RecordFacts]) -> dict[int, RecordFacts]:
    if not _has_labels(db, dataset):
        return out  # nothing labelled yet: no need to ask which labels are current
    for row, label, n in db.rows(
        f"""SELECT row, label, count(*) FROM current_labels JOIN (SELECT unnest(?::BIGINT[]) AS row) USING (row)
            WHERE dataset = ? AND {judged()}
            GROUP BY row, label ORDER BY row, count(*) DESC, label""",
        [rows, dataset],
    ):
        if row in out:
            out[row].labels[label] = n
    return out


class Cards:
    """An index's ``cards.arrow``, memory-mapped: rows are found by binary search on the row column
    (the file is in row order) and a page's rows are read as slices, converted at once."""

    def __init__(self, path: Path):
        import numpy as np
        import pyarrow as pa

        reader = pa.ipc.open_file(pa.memory_map(str(path), "r"))
        self.batches = [reader.get_batch(i) for i in range(reader.num_record_batches)]
        sizes = [b.num_rows for b in self.batches]
        self.starts = np.cumsum([0] + sizes[:-1]) if sizes else np.zeros(0, dtype=np.int64)
        rows = np.concatenate([b.column(0).to_numpy() for b in self.batches]) if sizes else np.zeros(0, np.int64)
        self.order = None if len(rows) < 2 or bool(np.all(rows[1:] > rows[:-1])) else np.argsort(rows, kind="stable")
        self.sorted_rows = rows if self.order is None else rows[self.order]

    def take(self, rows: list[int]) -> list[dict]:
        """The records of ``rows`` (those in the copy: a row rejected at ingest is not)."""
        import numpy as np

        wanted = np.asarray(rows, dtype=np.int64)
        found = np.searchsorted(self.sorted_rows, wanted)
        inside = found < len(self.sorted_rows)
        inside[inside] = self.sorted_rows[found[inside]] == wanted[inside]
        at = found[inside] if self.order is None else self.order[found[inside]]
        if not len(at):
            return []
        batch = np.searchsorted(self.starts, at, side="right") - 1
        # a one-row slice of its batch per row (no copy), read to Python at once: a take copies
        # the nested columns and costs four times as much for a page of rows
        import pyarrow as pa
        return pa.Table.from_batches([self.batches[k].slice(int(i - self.starts[k]), 1)
                                      for i, k in zip(at, batch)]).to_pylist()


_CARDS: dict[str, Cards | None] = {}
_CARDS_LOCK = threading.Lock()


def open_cards(path: str | Path) -> Cards | None:
    """The copy at ``path`` (kept open; None when the index has none or it cannot be read)."""
    key = str(path)
    with _CARDS_LOCK:
        if key not in _CARDS:
            if len(_CARDS) > 64:
                _CARDS.clear()
            try:
                _CARDS[key] = Cards(Path(key)) if Path(key).is_file() else None
            except (OSError, ValueError):  # pyarrow's errors are both
                _CARDS[key] = None
        return _CARDS[key]


def forget_cards(folder: str | Path) -> None:
    """Let go of the copies under ``folder`` (before its index is replaced or removed)."""
    prefix = str(folder)
    with _CARDS_LOCK:
        for key in [k for k in _CARDS if k.startswith(prefix)]:
            del _CARDS[key]


def write_cards(db: Database, dataset: str, path: Path, batch_rows: int = 50_000) -> int:
    """Write the records' card columns (``details.CARD_COLUMNS``) of ``dataset`` to ``path`` in Arrow's
    file format, streamed a batch at a time in the table's order (row order); returns the rows."""
    import pyarrow as pa

    cur = db.cursor().cursor()
    written = 0
    try:
        reader = cur.sql(f"SELECT {', '.join(CARD_COLUMNS)} FROM records WHERE dataset = $dataset",
                         params={"dataset": dataset}).to_arrow_reader(batch_rows)
        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, reader.schema) as out:
            for batch in reader:
                out.write_batch(batch)
                written += batch.num_rows
    finally:
        cur.close()
    return written
