"""The figures a lead needs to trust a labelling run, per annotator: judgments and skips, time per
label, accuracy on gold pairs, and agreement with the other annotators.

Time per label is the ``seconds`` each label event records (from the pair shown, or handed out by
``/next_pair``, to the key press); the median is shown, so a pause for lunch does not skew it.
Agreement is raw pairwise agreement: over the pairs an annotator shares with others, the share of
(their label, another's label) couples that match (a reviewer's label and gold answers are not
labels of an annotator and take no part).

>>> pairwise_agreement({1: {"a": "chosen", "b": "chosen", "c": "tie"}, 2: {"a": "tie"}})
{'a': 0.5, 'b': 0.5, 'c': 0.0}
"""

from __future__ import annotations

from ..store import Database
from .agreement import judgments
from .events import check_pairs
from .gold import gold_accuracy


def pairwise_agreement(table: dict[int, dict[str, str]]) -> dict[str, float | None]:
    """{annotator: share of matching couples with every other annotator on shared pairs}."""
    same: dict[str, int] = {}
    total: dict[str, int] = {}
    for labels in table.values():
        for a, mine in labels.items():
            others = [lab for b, lab in labels.items() if b != a]
            same[a] = same.get(a, 0) + sum(lab == mine for lab in others)
            total[a] = total.get(a, 0) + len(others)
    return {a: (same[a] / total[a] if total[a] else None) for a in sorted(total)}


def annotator_figures(db: Database, dataset: str) -> list[dict]:
    """One row per annotator of ``dataset``: judgments, skips, median and total seconds per label,
    gold pairs judged and accuracy on them, and pairwise agreement with the others."""
    name = check_pairs(db, dataset).name
    counts = db.dicts(
        """SELECT annotator, count(*) FILTER (WHERE label <> 'skip') AS judgments,
                  count(*) FILTER (WHERE label = 'skip') AS skips
           FROM current_labels WHERE dataset = ? GROUP BY annotator ORDER BY annotator""", [name])
    times = {a: (m, n) for a, m, n in db.rows(
        """SELECT annotator, median(s), count(s) FROM (
               SELECT annotator, TRY_CAST(json_extract_string(options, '$.seconds') AS DOUBLE) AS s
               FROM label_events WHERE dataset = ? AND label <> 'undo')
           WHERE s IS NOT NULL GROUP BY annotator""", [name])}
    gold = gold_accuracy(db, name)
    agree = pairwise_agreement(judgments(db, name))
    out = []
    for c in counts:
        a = c["annotator"]
        median, timed = times.get(a, (None, 0))
        g = gold.get(a, {"judged": 0, "correct": 0, "accuracy": None})
        out.append({"annotator": a, "judgments": c["judgments"], "skips": c["skips"],
                    "median_seconds": median, "timed": timed, "gold_judged": g["judged"],
                    "gold_correct": g["correct"], "gold_accuracy": g["accuracy"], "agreement": agree.get(a)})
    return out
