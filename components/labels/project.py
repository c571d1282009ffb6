"""A labeling project: overlap (how many annotators each pair needs), the queue that hands pairs out
with short reservations, labels checked against the pair's free slots, and progress.

With ``overlap`` K set for a dataset (``settings``), a pair needs K judgments (a skip is no judgment:
the pair only leaves the skipper's queue). ``next_pair`` gives an annotator a pair that still needs
labels and that they have not labelled, those closest to complete first (judgments plus pairs held
by others), else in the dataset's stable shuffled order. Handing a pair out reserves one of its
slots for ``RESERVATION_SECONDS``; a slot counts as taken by the current judgments and the unexpired
reservations of other annotators. Reserving and labelling both run inside ``db.write`` (one
transaction, the one write lock), so two annotators can never both be handed the last open slot,
and a label that would exceed K is refused. A model judge's labels (``simulated``, see
personas.judge) take no slot: K counts people. A label releases its reservation and records the time
from the hand-out to the key press (``seconds`` in its options).

Gold pairs (``gold``) stay open to every annotator whatever K (each annotator's accuracy is measured
on them) and do not count towards the project being done: it is done when every other pair has K
judgments. Without ``overlap``, the queue is what it always was: every annotator labels every pair.

>>> eta_seconds(remaining=30, judgments=11, span_seconds=100.0)
300.0
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from ..schema import judged
from ..store import Database
from ..text import utc_now
from .events import JUDGMENTS, LabelError, add_label, check_annotator, check_label, check_pairs
from .queues import next_row
from .settings import guidelines_version, setting

RESERVATION_SECONDS = 600
"""How long a handed-out pair holds its slot before another annotator may get it."""

GOLD_SQL = """
    SELECT row, label, note FROM (
        SELECT row, label, note, row_number() OVER (PARTITION BY row ORDER BY id DESC) AS _latest
        FROM gold_pairs WHERE dataset = $dataset)
    WHERE _latest = 1 AND label IS NOT NULL
"""
"""The gold pairs of a dataset in effect: the latest mark of each pair, unless it was unmarked."""

_JUDGED = judged()
_HUMAN = "NOT simulated"
"""A model judge's labels (personas.judge) are kept and compared but fill no overlap slot."""

_PAIRS_SQL = f"""
    WITH judged AS (SELECT row, count(*) AS n FROM current_labels
                    WHERE dataset = $dataset AND {_JUDGED} AND {_HUMAN} GROUP BY row),
    held AS (SELECT row, count(*) AS n FROM reservations
             WHERE dataset = $dataset AND annotator <> $annotator AND expires_at > $now GROUP BY row),
    gold AS ({GOLD_SQL})
    SELECT r.row, coalesce(j.n, 0) AS judged, coalesce(h.n, 0) AS held, g.row IS NOT NULL AS gold,
           r.row IN (SELECT row FROM current_labels WHERE dataset = $dataset AND annotator = $annotator) AS mine
    FROM records r LEFT JOIN judged j ON j.row = r.row LEFT JOIN held h ON h.row = r.row
         LEFT JOIN gold g ON g.row = r.row
    WHERE r.dataset = $dataset AND r.rejected IS NOT NULL
"""
"""Every pair with its judgments, the slots others hold, whether it is gold and whether ``annotator``
labelled it."""

_NEXT_SQL = f"""
    SELECT row FROM ({_PAIRS_SQL}) p
    WHERE NOT mine AND (gold OR judged + held < $k)
    ORDER BY CASE WHEN gold THEN 0 ELSE judged + held END DESC, md5($dataset || '/' || row::VARCHAR), row
    LIMIT 1
"""


def overlap(db: Database, dataset: str) -> int | None:
    """How many annotators each pair of ``dataset`` needs (None: every annotator labels every pair)."""
    return setting(db, dataset, "overlap")


def _params(dataset: str, annotator: str, now: datetime, k: int | None = None) -> dict:
    return {"dataset": dataset, "annotator": annotator, "now": now} | ({"k": k} if k is not None else {})


def _open_pairs(cur, dataset: str, k: int, now: datetime) -> int:
    """Pairs (gold left out) still short of ``k`` judgments."""
    return cur.execute(f"SELECT count(*) FROM ({_PAIRS_SQL}) p WHERE NOT gold AND judged < $k",
                       _params(dataset, "", now, k)).fetchone()[0]


def next_pair(db: Database, dataset: Any, annotator: Any, reserve: bool = True, now: datetime | None = None,
              ttl: float = RESERVATION_SECONDS) -> int | None:
    """The pair ``annotator`` should label next in ``dataset`` (None: nothing left for them).

    With overlap set and ``reserve``, the pair is reserved for them for ``ttl`` seconds (asking again
    before labelling gives the same pair, its reservation renewed); ``reserve=False`` only looks.
    Without overlap, the next pair of the shuffled queue (``queues.next_row``)."""
    info = check_pairs(db, dataset)
    annotator = check_annotator(annotator)
    k = overlap(db, info.name)
    if k is None:
        return next_row(db, info.name, annotator)
    now = now or utc_now()
    params = _params(info.name, annotator, now, k)

    def pick(cur):
        if not _open_pairs(cur, info.name, k, now):
            return None  # the project is done
        held = cur.execute(
            """SELECT row FROM reservations WHERE dataset = $dataset AND annotator = $annotator
                 AND expires_at > $now AND row NOT IN (SELECT row FROM current_labels
                                                      WHERE dataset = $dataset AND annotator = $annotator)
               ORDER BY reserved_at DESC LIMIT 1""", _params(info.name, annotator, now)).fetchone()
        if held is not None:
            return held[0]
        found = cur.execute(_NEXT_SQL, params).fetchone()
        return None if found is None else found[0]

    if not reserve:
        return pick(db.cursor())

    def run(cur):
        cur.execute("DELETE FROM reservations WHERE expires_at <= ?", [now])
        row = pick(cur)
        until = now + timedelta(seconds=ttl)
        if row is None:
            cur.execute("DELETE FROM reservations WHERE dataset = ? AND annotator = ?", [info.name, annotator])
            return None
        kept = cur.execute("UPDATE reservations SET expires_at = ? WHERE dataset = ? AND annotator = ? AND row = ? "
                           "RETURNING row", [until, info.name, annotator, row]).fetchall()
        cur.execute("DELETE FROM reservations WHERE dataset = ? AND annotator = ? AND row <> ?",
                    [info.name, annotator, row])  # one pair at a time: an earlier one is given back
        if not kept:
            cur.execute("INSERT INTO reservations VALUES (?, ?, ?, ?, ?)", [info.name, row, annotator, now, until])
        return row

    return db.write(run)


def release(db: Database, dataset: str, annotator: str) -> int:
    """Give back ``annotator``'s reservations in ``dataset`` (they stopped); how many there were."""
    return len(db.write(lambda cur: cur.execute(
        "DELETE FROM reservations WHERE dataset = ? AND annotator = ? RETURNING row", [dataset, annotator]).fetchall()))


def slot_check(k: int, now: datetime | None = None):
    """The check a label passes inside its transaction when the dataset's overlap is ``k``: a new
    judgment of a pair whose slots are all taken by others (judgments and unexpired reservations) is
    refused. Gold pairs, skips and a change of one's own judgment always pass."""

    def check(cur, dataset: str, row: int, annotator: str, label: str) -> None:
        if label not in JUDGMENTS:
            return
        when = now or utc_now()
        p = cur.execute(f"SELECT judged, held, gold, mine FROM ({_PAIRS_SQL}) p WHERE row = $row",
                        _params(dataset, annotator, when) | {"row": row}).fetchone()
        if p is None:
            return
        judged, held, gold, mine = p
        if gold:
            return
        if mine:
            own = cur.execute(f"SELECT count(*) FROM current_labels WHERE dataset = ? AND row = ? AND annotator = ? "
                              f"AND {_JUDGED}", [dataset, row, annotator]).fetchone()[0]
            judged -= own
            if own:
                return
        if judged + held >= k:
            raise LabelError(f"pair {row} already has the {k} annotator{'s' if k != 1 else ''} it needs "
                             f"(overlap {k}): ask for the next pair instead")

    return check


def submit(db: Database, dataset: Any, row: Any, label: Any, annotator: Any, confidence: Any = None,
           note: Any = None, tags: Any = None, options: dict | None = None, seconds: float | None = None,
           grade: Any = None, aspects: Any = None, reasons: Any = None, rationale: Any = None,
           ranking: Any = None) -> dict:
    """Record a label as an annotator gives it in a project: checked against the pair's free slots
    when the dataset has an overlap, with the guidelines' version (when there are guidelines) and
    ``seconds`` (the time from the pair shown to the key press; else the time since it was handed out).

    Under the dataset's label schema (``label_schema``) the label also takes a ``grade``, ``aspects``,
    ``reasons`` and a ``rationale``, checked there; it records the schema's version. A ``ranking``
    of the responses of an N-response pair (``ranking``) gives the label itself."""
    from .label_schema import check_graded
    from .settings import label_schema
    from .ranking import check_ranking

    info = check_pairs(db, dataset)
    schema = label_schema(db, info.name)
    if ranking not in (None, "", []):
        ranked, label = check_ranking(db, info.name, row, ranking)
        grade = None
    else:
        ranked = None
        label = "tie" if label in (None, "") and grade not in (None, "") else check_label(label)
    label, extra = check_graded(schema, label, grade, aspects, reasons, rationale)
    extra["ranking"] = ranked
    opts = dict(options or {})
    if setting(db, info.name, "guidelines"):
        opts["guidelines_version"] = guidelines_version(db, info.name)
    if seconds is not None:
        opts["seconds"] = round(max(0.0, float(seconds)), 3)
    k = overlap(db, info.name)
    return add_label(db, info.name, row, label, annotator, confidence, note, tags, opts,
                     within=slot_check(k) if k else None, extra=extra)


# -- progress ---------------------------------------------------------------------------------------


def eta_seconds(remaining: int, judgments: int, span_seconds: float | None) -> float | None:
    """Seconds left at the pace so far: ``judgments`` made over ``span_seconds`` (first to last)."""
    if not remaining:
        return 0.0
    if judgments < 2 or not span_seconds or span_seconds < 1:  # labels made at one instant give no pace
        return None
    return remaining * span_seconds / (judgments - 1)


def progress(db: Database, dataset: Any, now: datetime | None = None) -> dict:
    """Where ``dataset``'s labeling stands: pairs complete (K judgments; with no overlap, one),
    in progress and untouched (gold pairs counted apart), judgments still needed, each annotator's
    judgments, skips and held pairs, and an estimate of the time left from the pace so far."""
    info = check_pairs(db, dataset)
    k = overlap(db, info.name)
    need = k or 1
    now = now or utc_now()
    complete, in_progress, untouched, gold, remaining = db.one(
        f"""SELECT count(*) FILTER (WHERE NOT gold AND judged >= $k),
                   count(*) FILTER (WHERE NOT gold AND judged < $k AND judged + held > 0),
                   count(*) FILTER (WHERE NOT gold AND judged + held = 0),
                   count(*) FILTER (WHERE gold),
                   coalesce(sum(greatest($k - judged, 0)) FILTER (WHERE NOT gold), 0)
            FROM ({_PAIRS_SQL}) p""", _params(info.name, "", now, need))
    people = db.dicts(
        f"""SELECT annotator, count(*) FILTER (WHERE {_JUDGED}) AS judgments,
                   count(*) FILTER (WHERE label = 'skip') AS skips
            FROM current_labels WHERE dataset = ? GROUP BY annotator ORDER BY annotator""", [info.name])
    holding = dict(db.rows("SELECT annotator, count(*) FROM reservations WHERE dataset = ? AND expires_at > ? "
                           "GROUP BY annotator", [info.name, now]))
    for p in people:
        p["holding"] = holding.pop(p["annotator"], 0)
    people += [{"annotator": a, "judgments": 0, "skips": 0, "holding": n} for a, n in sorted(holding.items())]
    judgments, first, last = db.one(f"SELECT count(*), min(created_at), max(created_at) FROM current_labels "
                                    f"WHERE dataset = ? AND {_JUDGED} AND {_HUMAN}", [info.name])
    span = (last - first).total_seconds() if first is not None else None
    pairs = complete + in_progress + untouched
    return {"dataset": info.name, "overlap": k, "pairs": pairs, "complete": complete, "in_progress": in_progress,
            "untouched": untouched, "gold": gold, "remaining": int(remaining), "judgments": judgments,
            "done": bool(k) and pairs > 0 and not remaining, "annotators": people,
            "eta_seconds": eta_seconds(int(remaining), judgments, span)}


def duration(seconds: float | None) -> str:
    """A duration as a person reads it.

    >>> duration(42), duration(3 * 60 + 5), duration(2 * 3600 + 60 * 7), duration(None)
    ('42 s', '3 min', '2 h 7 min', 'unknown')
    """
    if seconds is None:
        return "unknown"
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min"
    return f"{s // 3600} h {s % 3600 // 60} min"


def progress_line(p: dict) -> str:
    """One line of ``progress``: the project's state, for the page and the CLI."""
    if p["done"]:
        return (f"The project is done: all {p['pairs']:,} pairs have their {p['overlap']} labels "
                f"({p['judgments']:,} judgments).")
    need = f"overlap {p['overlap']}" if p["overlap"] else "one label each"
    text = (f"{p['complete']:,} of {p['pairs']:,} pairs complete ({need}) · {p['in_progress']:,} in progress · "
            f"{p['untouched']:,} untouched")
    if p["gold"]:
        text += f" · {p['gold']:,} gold"
    if p["overlap"]:
        text += f" · {p['remaining']:,} labels to go, about {duration(p['eta_seconds'])} left at this pace"
    return text

