"""A reward model's accuracy by length difference: does it just prefer the longer answer?

For one model that scored the dataset's current version (its stored scores, ``scores.store``), per
bin of the signed length difference (chosen − rejected, in characters: ``bins.DIFF_BUCKETS``):

- against the data: the share of scored pairs where the model scores the chosen side higher
  (margin > 0; a margin of 0 is not a win);
- against people: among the pairs whose majority judgment (``labels.majority_labels``, the one
  majority rule) is ``chosen`` or ``rejected``, the share where the model prefers the side the
  majority picked (ties, both-bad and tied votes have no side and are left out).

A model that only rewards length is right where the chosen side is longer and wrong where it is
shorter. Each bin's key leads to the pairs of that bin the model got wrong (``rows_for``): the
Statistics tab's queue of them, the same predicate that counted them. Labels and scores change
without a new dataset version, so this is computed on each call.
"""

from __future__ import annotations

import json
from typing import Any

import duckdb
import pyarrow as pa

from .. import labels
from ..store import Database
from .bins import DIFF_BUCKETS, bucket_sql

KINDS = {"rm": "against the data's chosen side", "rmh": "against the people's majority"}
"""Key prefixes: the pairs a model got wrong, against the data or against the majority."""

_BIN = bucket_sql("m.chosen_chars - m.rejected_chars", DIFF_BUCKETS)
_WRONG = {
    "rm": "NOT (s.margin > 0)",
    "rmh": "h.majority IN ('chosen', 'rejected') AND NOT ((h.majority = 'chosen' AND s.margin > 0) "
           "OR (h.majority = 'rejected' AND s.margin < 0))",
}


def models(db: Database, name: str) -> list[str]:
    """The models that scored ``name``'s current version."""
    from ..scores.store import scoring_models

    return scoring_models(db, name)


def pick_model(db: Database, name: str, model: str | None = None) -> str | None:
    """``model`` when it scored the dataset, else the first model that did (None: none did)."""
    scored = models(db, name)
    return model if model in scored else (scored[0] if scored else None)


def _connect(db: Database, name: str, table: Any, model: str, majority: bool) -> duckdb.DuckDBPyConnection:
    from ..scores.store import current_scores

    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    con.register("m", table)
    con.register("s", current_scores(db, name, model))
    votes = labels.majority_labels(db, name) if majority else {}
    con.register("h", pa.table({"row": pa.array(list(votes), pa.int64()),
                                "majority": pa.array(list(votes.values()), pa.string())}))
    return con


def _share(n: int, k: int) -> float | None:
    return (k / n) if n else None


def model_accuracy(db: Database, name: str, table: Any, model: str | None = None) -> dict:
    """The accuracy of ``model`` (default: the first that scored ``name``) per length-difference bin;
    ``table`` holds the per-pair measures (``row``, ``chosen_chars``, ``rejected_chars``)."""
    scored = models(db, name)
    model = model if model in scored else (scored[0] if scored else None)
    out: dict = {"models": scored, "model": model}
    if model is None:
        return out
    con = _connect(db, name, table, model, majority=True)
    try:
        got = {b: rest for b, *rest in con.execute(f"""
            SELECT {_BIN} AS b, count(*), count(*) FILTER (s.margin > 0),
                   count(*) FILTER (h.majority IN ('chosen', 'rejected')),
                   count(*) FILTER ((h.majority = 'chosen' AND s.margin > 0)
                                    OR (h.majority = 'rejected' AND s.margin < 0))
            FROM m JOIN s USING (row) LEFT JOIN h USING (row)
            WHERE s.margin IS NOT NULL GROUP BY b""").fetchall()}
    finally:
        con.close()
    n = len(DIFF_BUCKETS)
    cells = [got.get(i, [0, 0, 0, 0]) for i in range(n)]
    scored_n, right, judged, agree = (sum(c[k] for c in cells) for k in range(4))
    key = lambda kind, i: f"{kind}:" + json.dumps([model, i])  # noqa: E731
    out |= {
        "pairs": scored_n, "right": right, "accuracy": _share(scored_n, right),
        "judged": judged, "agree": agree, "majority_accuracy": _share(judged, agree),
        "by_difference": {
            "labels": [b[0] for b in DIFF_BUCKETS],
            "pairs": [c[0] for c in cells], "right": [c[1] for c in cells],
            "accuracy": [_share(c[0], c[1]) for c in cells],
            "judged": [c[2] for c in cells], "agree": [c[3] for c in cells],
            "majority_accuracy": [_share(c[2], c[3]) for c in cells],
            "keys": [key("rm", i) for i in range(n)], "keys_majority": [key("rmh", i) for i in range(n)],
        },
    }
    return out


def rows_for(db: Database, name: str, table: Any, key: str) -> tuple[str, list[int]]:
    """(title, rows) of an accuracy key: the pairs of one bin the model got wrong. KeyError when the
    key is not one of ours."""
    kind, _, arg = str(key).partition(":")
    try:
        model, i = json.loads(arg)
    except (ValueError, TypeError):
        raise KeyError(key) from None
    if kind not in KINDS or not isinstance(model, str) or not isinstance(i, int) or not 0 <= i < len(DIFF_BUCKETS):
        raise KeyError(key)
    if model not in models(db, name):
        raise KeyError(key)
    con = _connect(db, name, table, model, majority=kind == "rmh")
    try:
        rows = [r[0] for r in con.execute(
            f"SELECT m.row FROM m JOIN s USING (row) LEFT JOIN h USING (row) "
            f"WHERE s.margin IS NOT NULL AND {_BIN} = ? AND {_WRONG[kind]} ORDER BY m.row", [i]).fetchall()]
    finally:
        con.close()
    return f"{DIFF_BUCKETS[i][0]} (characters): pairs {model} got wrong {KINDS[kind]}", rows
