"""The label vocabulary, the checks every label request passes, and the append-only event log.

Every label is a row appended to ``label_events`` (who, when, which pair, what, with which options);
the ``current_labels`` view gives the latest event of each (pair, annotator) that was not undone. An
undo is an event too: nothing is ever overwritten. All the SQL over those two lives here.

>>> [lab.name for lab in VOCABULARY]
['chosen', 'rejected', 'tie', 'both_bad', 'skip']
>>> check_label("Both bad")
'both_bad'
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Sequence

from ..schema import JUDGMENTS, judged
from ..catalogue import DatasetInfo
from ..store import Database
from ..text import utc_now
from .. import catalogue


@dataclass(frozen=True)
class Label:
    name: str  # what is stored and what the API takes
    title: str  # what the button says
    key: str  # the keyboard key
    help: str


VOCABULARY = [
    Label("chosen", "Chosen is better", "1", "agree with the source's preference"),
    Label("rejected", "Rejected is better", "2", "flip: the export swaps chosen and rejected"),
    Label("tie", "Tie", "3", "equally good; left out of the export unless asked for"),
    Label("both_bad", "Both bad", "4", "neither is acceptable; left out of the export unless asked for"),
    Label("skip", "Skip", "S", "no judgment; the pair leaves your queue"),
]
LABELS = tuple(lab.name for lab in VOCABULARY)
BY_NAME = {lab.name: lab for lab in VOCABULARY}
JUDGED = judged()
"""Labels that are judgments (a skip is not): what agreement and majorities are computed over."""

DEFAULT_TAGS = ["factuality", "helpfulness", "harmlessness", "instruction following", "reasoning", "style",
                "verbosity", "refusal", "formatting", "code"]
MAX_NOTE = 2000
MAX_TAGS = 20
EXTRA_COLUMNS = ("schema_version", "grade", "aspects", "reasons", "rationale", "ranking")
"""What a label carries under a label schema (``label_schema``), in columns of their own."""
_ANNOTATOR = re.compile(r"[^\W_][\w .@+\-]{0,63}")


class LabelError(ValueError):
    """A label request that cannot be carried out, explained in one line."""


# -- checks -----------------------------------------------------------------------------------------


def check_annotator(name: Any) -> str:
    """The annotator name, trimmed; a clear error when it is missing or odd.

    >>> check_annotator("  Ada L. ")
    'Ada L.'
    """
    name = " ".join(str(name or "").split())
    if not name:
        raise LabelError("enter your annotator name first")
    if not _ANNOTATOR.fullmatch(name):
        raise LabelError(
            f"annotator name {name[:70]!r} must be 1-64 letters, digits, spaces or . _ - @ + (starting with a letter or digit)"
        )
    return name


def check_label(label: Any) -> str:
    label = str(label or "").strip().lower().replace("-", "_").replace(" ", "_")
    if label not in LABELS:
        raise LabelError(f"unknown label {label!r}: use one of {', '.join(LABELS)}")
    return label


def check_pairs(db: Database, dataset: Any) -> DatasetInfo:
    """The catalogue entry of ``dataset``, which must exist and hold preference pairs."""
    return catalogue.dataset_of(db, dataset, LabelError, ("pairs",), "there is nothing to compare")


def check_row(db: Database, dataset: str, row: Any) -> int:
    try:
        r = int(row)
        if r != float(row):
            raise ValueError
    except (TypeError, ValueError):
        raise LabelError(f"row must be a whole number, not {row!r}") from None
    if db.one("SELECT 1 FROM records WHERE dataset = ? AND row = ?", [dataset, r]) is None:
        raise LabelError(f"row {r} is not a pair of {dataset!r} (past the end, or rejected at ingest)")
    return r


def clean_tags(tags: Any) -> list[str]:
    """Tags as a list of distinct one-line strings (a comma-separated string is split).

    >>> clean_tags(" style, code ,style")
    ['style', 'code']
    """
    if tags is None:
        return []
    if isinstance(tags, str):
        tags = tags.split(",")
    out: list[str] = []
    for t in tags:
        t = " ".join(str(t).split())[:40]
        if t and t not in out:
            out.append(t)
    if len(out) > MAX_TAGS:
        raise LabelError(f"at most {MAX_TAGS} tags per label")
    return out


def clean_confidence(confidence: Any) -> int | None:
    if confidence in (None, "", 0, "0", "–", "-"):
        return None
    try:
        c = int(confidence)
    except (TypeError, ValueError):
        raise LabelError(f"confidence must be 1, 2 or 3, not {confidence!r}") from None
    if c not in (1, 2, 3):
        raise LabelError(f"confidence must be 1, 2 or 3, not {confidence!r}")
    return c


# -- writing: label and undo ------------------------------------------------------------------------


def add_label(db: Database, dataset: Any, row: Any, label: Any, annotator: Any, confidence: Any = None,
              note: Any = None, tags: Any = None, options: dict | None = None, within=None,
              extra: dict | None = None) -> dict:
    """Record ``annotator``'s ``label`` of pair ``row`` of ``dataset`` (every argument is checked).
    ``within(cur, dataset, row, annotator, label)`` runs first inside the label's transaction (the
    overlap queue checks the pair's free slots there) and may raise LabelError to refuse it.
    ``extra``: the label schema's columns (``label_schema.check_graded`` checks them)."""
    info = check_pairs(db, dataset)
    row = check_row(db, info.name, row)
    label = check_label(label)
    annotator = check_annotator(annotator)
    note = (str(note).strip() if note is not None else "") or None
    if note and len(note) > MAX_NOTE:
        raise LabelError(f"the note is {len(note):,} characters; keep it under {MAX_NOTE:,}")
    opts = {"dataset_version": info.version} | (options or {})
    return add_label_event(db, info.name, row, annotator, label, clean_confidence(confidence), note,
                           clean_tags(tags), opts, within=within, extra=extra)


def undo(db: Database, dataset: Any, annotator: Any, options: dict | None = None) -> dict | None:
    """Undo ``annotator``'s latest label in ``dataset`` still in effect (an undo event); None if none."""
    info = check_pairs(db, dataset)
    return undo_last_label(db, info.name, check_annotator(annotator), options)


def add_label_event(db: Database, dataset: str, row: int, annotator: str, label: str,
                    confidence: int | None = None, note: str | None = None,
                    tags: Sequence[str] | None = None, options: dict | None = None, within=None,
                    extra: dict | None = None) -> dict:
    """Append one label event as given (unchecked: ``add_label`` checks); return it with its id.

    In the same transaction the annotator's reservation of the pair (``labels.project``) is released;
    when the options give no ``seconds``, the time from the pair's hand-out to this label is recorded.
    ``extra`` gives the label schema's columns (``EXTRA_COLUMNS``; None or missing ones stay NULL)."""
    created = utc_now()
    more = {k: v for k, v in (extra or {}).items() if k in EXTRA_COLUMNS and v is not None}
    more = {k: json.dumps(v) if k == "aspects" else v for k, v in more.items()}
    names = "".join(f", {k}" for k in more)
    marks = ", ?" * len(more)

    def run(cur):
        if within is not None:
            within(cur, dataset, row, annotator, label)
        handed = cur.execute("DELETE FROM reservations WHERE dataset = ? AND row = ? AND annotator = ? "
                             "RETURNING reserved_at", [dataset, row, annotator]).fetchall()
        opts = dict(options or {})
        if handed and opts.get("seconds") is None:
            opts["seconds"] = round(max(0.0, (created - max(h[0] for h in handed)).total_seconds()), 3)
        event_id = cur.execute(
            f"""INSERT INTO label_events (dataset, row, annotator, label, confidence, note, tags, options,
                                          created_at{names})
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?{marks}) RETURNING id""",
            [dataset, row, annotator, label, confidence, note, list(tags or []), json.dumps(opts), created,
             *more.values()],
        ).fetchone()[0]
        return event_id, opts

    event_id, opts = db.write(run)
    return {"id": event_id, "dataset": dataset, "row": row, "annotator": annotator, "label": label,
            "confidence": confidence, "note": note, "tags": list(tags or []), "created_at": created,
            "seconds": opts.get("seconds"), "guidelines_version": opts.get("guidelines_version")} | {
                k: (extra or {}).get(k) for k in EXTRA_COLUMNS}


_UNDONE = ("SELECT TRY_CAST(json_extract_string(options, '$.undoes') AS BIGINT) AS id "
           "FROM label_events WHERE label = 'undo'")


def undo_last_label(db: Database, dataset: str, annotator: str, options: dict | None = None) -> dict | None:
    """Append an undo of ``annotator``'s latest label in ``dataset`` that is still in effect.

    Returns the event undone (id, row, label, confidence), or None when there is nothing left to undo.
    """
    created = utc_now()

    def run(cur):
        last = cur.execute(
            f"""SELECT id, row, label, confidence FROM label_events
                WHERE dataset = ? AND annotator = ? AND label <> 'undo'
                  AND id NOT IN (SELECT id FROM ({_UNDONE}) WHERE id IS NOT NULL)
                ORDER BY id DESC LIMIT 1""",
            [dataset, annotator],
        ).fetchone()
        if last is None:
            return None
        cur.execute(
            """INSERT INTO label_events (dataset, row, annotator, label, options, created_at)
               VALUES (?, ?, ?, 'undo', ?, ?)""",
            [dataset, last[1], annotator, json.dumps((options or {}) | {"undoes": last[0]}), created],
        )
        return {"id": last[0], "row": last[1], "label": last[2], "confidence": last[3]}

    return db.write(run)


# -- reading ----------------------------------------------------------------------------------------


def label_log(db: Database, dataset: str | None = None):
    """The raw event log (undo events included) in the order it was written, as Arrow."""
    where = "WHERE dataset = ?" if dataset else ""
    return db.arrow(
        f"""SELECT id, dataset, row, annotator, label, confidence, note, tags, options::VARCHAR AS options,
                   created_at, schema_version, grade, aspects::VARCHAR AS aspects, reasons, rationale, ranking
            FROM label_events {where} ORDER BY id""",
        [dataset] if dataset else None,
    )


def label_event_count(db: Database, dataset: str | None = None) -> int:
    if dataset:
        return db.scalar("SELECT count(*) FROM label_events WHERE dataset = ?", [dataset])
    return db.scalar("SELECT count(*) FROM label_events")


def current_label(db: Database, dataset: str, row: int, annotator: str) -> dict | None:
    """``annotator``'s label of one pair now in effect (None when there is none)."""
    found = db.dicts("SELECT * FROM current_labels WHERE dataset = ? AND row = ? AND annotator = ?",
                     [dataset, row, annotator])
    return found[0] if found else None


def pair_labels(db: Database, dataset: str, row: int) -> list[dict]:
    """Every annotator's current label of one pair."""
    return db.dicts(
        "SELECT annotator, label, confidence, note, tags, created_at FROM current_labels "
        "WHERE dataset = ? AND row = ? ORDER BY annotator",
        [dataset, row],
    )


def graded_labels(db: Database, dataset: str) -> list[dict]:
    """Every current judgment of ``dataset`` with its grade, aspect choices ({aspect: label}) and
    ranking, in (row, annotator) order."""
    rows = db.dicts(
        "SELECT row, annotator, label, grade, aspects::VARCHAR AS aspects, ranking, schema_version FROM current_labels "
        f"WHERE dataset = ? AND {judged()} ORDER BY row, annotator",
        [dataset])
    for r in rows:
        r["aspects"] = json.loads(r["aspects"]) if r["aspects"] else {}
    return rows


def current_labels(db: Database, dataset: str) -> list[tuple[int, str, str]]:
    """(row, annotator, label) of every current label in ``dataset``."""
    return db.rows(
        "SELECT row, annotator, label FROM current_labels WHERE dataset = ? ORDER BY row, annotator", [dataset]
    )


def labeled_rows(db: Database, dataset: str, annotator: str) -> dict[int, str]:
    """{row: label} of ``annotator``'s current labels in ``dataset``."""
    return dict(db.rows("SELECT row, label FROM current_labels WHERE dataset = ? AND annotator = ?",
                        [dataset, annotator]))


def label_annotators(db: Database, dataset: str) -> list[str]:
    return [r[0] for r in db.rows("SELECT DISTINCT annotator FROM current_labels WHERE dataset = ? ORDER BY 1",
                                  [dataset])]


def label_tags(db: Database, dataset: str, limit: int = 50) -> list[str]:
    """The tags used in ``dataset``, most used first."""
    return [r[0] for r in db.rows(
        """SELECT tag FROM (SELECT unnest(tags) AS tag FROM current_labels WHERE dataset = ?)
           GROUP BY tag ORDER BY count(*) DESC, tag LIMIT ?""",
        [dataset, limit],
    )]


def label_progress(db: Database, dataset: str, annotator: str | None, rows: Sequence[int] | None = None) -> dict:
    """Counts over the pairs of ``dataset`` (or only ``rows``): total, labeled by ``annotator``
    (skips among them), labeled (not skipped) by anyone, and how many annotators."""
    annotator = annotator or ""
    if rows is None:
        total = db.scalar("SELECT count(*) FROM records WHERE dataset = ? AND rejected IS NOT NULL", [dataset])
        in_rows, params = "", [annotator, annotator, dataset]
    else:
        total = len(set(rows))
        in_rows, params = "AND list_contains(?, row)", [annotator, annotator, dataset, list(rows)]
    mine, skipped, anyone, annotators = db.one(
        f"""SELECT count(DISTINCT row) FILTER (WHERE annotator = ?),
                   count(DISTINCT row) FILTER (WHERE annotator = ? AND label = 'skip'),
                   count(DISTINCT row) FILTER (WHERE label <> 'skip'),
                   count(DISTINCT annotator)
            FROM current_labels WHERE dataset = ? {in_rows}""",
        params,
    )
    return {"total": total, "mine": mine, "skipped": skipped, "anyone": anyone, "annotators": annotators}


# -- the majority rule: written once, here ----------------------------------------------------------

MAJORITY_SQL = f"""
    WITH votes AS (
        SELECT row, label, count(*) AS n FROM current_labels
        WHERE dataset = $dataset AND {JUDGED}
          AND ($annotators IS NULL OR list_contains($annotators, annotator))
        GROUP BY row, label),
    top AS (SELECT row, label, rank() OVER (PARTITION BY row ORDER BY n DESC) AS place FROM votes)
    SELECT row, CASE WHEN count(*) = 1 THEN any_value(label) END AS majority
    FROM top WHERE place = 1 GROUP BY row ORDER BY row
"""
"""The majority judgment of each judged pair: the label with strictly more current votes than any
other (skips do not vote), NULL where two or more labels tie at the top."""


def majority_labels(db: Database, dataset: str, annotators: Sequence[str] | None = None) -> dict[int, str | None]:
    """{row: majority judgment, or None when the top labels tie} over the pairs of ``dataset`` that
    ``annotators`` (default: everyone) judged."""
    return dict(db.rows(MAJORITY_SQL, {"dataset": dataset, "annotators": list(annotators) if annotators else None}))


def majority_rows(db: Database, dataset: str, label: str) -> list[int]:
    """Rows of ``dataset`` whose majority judgment is ``label`` (``rejected``: the flipped pairs)."""
    return [row for row, top in majority_labels(db, dataset).items() if top == check_label(label)]
