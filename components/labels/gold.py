"""Gold pairs: pairs with a known answer, marked by admins (one by one or from a file), mixed into the
queues unmarked, and each annotator's accuracy on them.

Every mark is a row of ``gold_pairs``; the latest of each pair is in effect (an unmark is a row with
no label), so the history is kept. A gold answer is not a vote: majorities and agreement count the
annotators' labels only (the annotators' own labels of a gold pair count there like any other). The
export prefers a reviewer's final label, then the gold answer, then the majority (``export``).

>>> accuracy(correct=3, judged=4), accuracy(correct=0, judged=0)
(0.75, None)
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from ..schema import judged
from ..store import Database
from ..text import utc_now
from .events import JUDGMENTS, LabelError, check_label, check_pairs, check_row
from .project import GOLD_SQL


def accuracy(correct: int, judged: int) -> float | None:
    return correct / judged if judged else None


def gold_labels(db: Database, dataset: str) -> dict[int, str]:
    """{row: known answer} of ``dataset``'s gold pairs."""
    return {row: label for row, label, _note in db.rows(GOLD_SQL + " ORDER BY row", {"dataset": dataset})}


def _check_answer(label: Any) -> str:
    label = check_label(label)
    if label not in JUDGMENTS:
        raise LabelError(f"a gold answer is a judgment ({', '.join(JUDGMENTS)}), not {label!r}")
    return label


def mark_gold(db: Database, dataset: Any, marks: list[tuple[Any, Any]] | list[tuple[Any, Any, Any]],
              by: str | None) -> int:
    """Mark pairs of ``dataset`` as gold: ``marks`` holds (row, answer[, note]); an answer of None
    unmarks the pair. Every mark is checked before any is written (one transaction); returns how many."""
    info = check_pairs(db, dataset)
    rows = []
    for mark in marks:
        row, label, note = (tuple(mark) + (None,))[:3]
        rows.append([info.name, check_row(db, info.name, row), None if label is None else _check_answer(label),
                     (str(note).strip() or None) if note is not None else None])
    now = utc_now()

    def run(cur):
        for r in rows:
            cur.execute("INSERT INTO gold_pairs (dataset, row, label, note, set_by, set_at) VALUES (?, ?, ?, ?, ?, ?)",
                        [*r, by, now])
        return len(rows)

    return db.write(run)


def read_gold_file(path: str | Path) -> list[tuple[int, str, str | None]]:
    """(row, answer, note) from a file of gold pairs: JSON lines or CSV with the columns ``row`` and
    ``label`` (``note`` optional). A bad line is one error naming the line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise LabelError(f"cannot read {path.name}: {getattr(err, 'strerror', None) or err}") from None
    if path.suffix.lower() == ".csv":
        records = list(csv.DictReader(text.splitlines()))
        where = [f"line {i + 2}" for i in range(len(records))]
    else:
        records, where = [], []
        for i, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise LabelError(f"{path.name} line {i}: not JSON ({err.msg})") from None
            where.append(f"line {i}")
    out = []
    for rec, at in zip(records, where):
        if not isinstance(rec, dict) or "row" not in rec or "label" not in rec:
            raise LabelError(f"{path.name} {at}: each gold pair needs 'row' and 'label'")
        try:
            out.append((int(rec["row"]), _check_answer(rec["label"]), rec.get("note")))
        except (TypeError, ValueError) as err:
            raise LabelError(f"{path.name} {at}: {err}") from None
    if not out:
        raise LabelError(f"{path.name} holds no gold pairs")
    return out


def import_gold(db: Database, dataset: Any, path: str | Path, by: str | None) -> int:
    """Mark the gold pairs listed in a file (``read_gold_file``); returns how many."""
    return mark_gold(db, dataset, read_gold_file(path), by)


def gold_accuracy(db: Database, dataset: str) -> dict[str, dict]:
    """{annotator: {judged, correct, accuracy}} over the gold pairs each judged (skips left out)."""
    found = db.rows(
        f"""SELECT c.annotator, count(*), count(*) FILTER (WHERE c.label = g.label)
            FROM current_labels c JOIN ({GOLD_SQL}) g ON g.row = c.row
            WHERE c.dataset = $dataset AND {judged("c.label")}
            GROUP BY c.annotator ORDER BY c.annotator""", {"dataset": dataset})
    return {a: {"judged": n, "correct": ok, "accuracy": accuracy(ok, n)} for a, n, ok in found}
