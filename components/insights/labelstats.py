"""Statistics of the current labels of a dataset: labels per annotator, progress over time, how often
annotators pick the longer response, agreement per tag, and the annotator x annotator kappa matrix.

Agreement itself (Cohen's kappa, Krippendorff's alpha) comes from ``components.labels.agreement``.
Computed on every call: labels change without a new dataset version.
"""

from __future__ import annotations

import json
from typing import Any

import duckdb

from .. import labels
from ..store import Database
from .bins import GAP_BUCKETS, bucket_sql

TAGS_SHOWN = 20


def _per_annotator(current: list[tuple[int, str, str]]) -> dict:
    names = sorted({a for _, a, _ in current})
    counts = {lab: [0] * len(names) for lab in labels.LABELS}
    index = {a: i for i, a in enumerate(names)}
    for _, a, lab in current:
        counts[lab][index[a]] += 1
    return {"annotators": names, "labels": list(labels.LABELS), "counts": counts,
            "keys": {lab: ["annot:" + json.dumps([a, lab]) for a in names] for lab in labels.LABELS}}


def _progress(db: Database, name: str) -> dict:
    span = db.one("SELECT min(created_at), max(created_at) FROM current_labels WHERE dataset = ?", [name])
    if span[0] is None:
        return {"unit": None, "times": [], "series": {}}
    unit = "hour" if (span[1] - span[0]).total_seconds() < 3 * 86400 else "day"
    rows = db.rows(
        f"SELECT date_trunc('{unit}', created_at) AS t, annotator, count(*) FROM current_labels WHERE dataset = ? "
        "GROUP BY ALL ORDER BY t", [name])
    times = sorted({r[0] for r in rows})
    series: dict[str, list[int]] = {}
    for t, a, n in rows:
        series.setdefault(a, [0] * len(times))[times.index(t)] += n
    for a, counts in series.items():  # cumulative: labels done by then
        total = 0
        for i, n in enumerate(counts):
            total += n
            counts[i] = total
    return {"unit": unit, "times": [str(t) for t in times], "series": series}


def _longer_picked(db: Database, name: str, table: Any) -> dict:
    """Among current chosen/rejected labels of pairs whose sides differ in length: how often the
    picked response is the longer one, overall and by gap (absolute difference in characters)."""
    picks = db.arrow("SELECT row, label FROM current_labels WHERE dataset = ? AND label IN ('chosen', 'rejected')",
                     [name])
    out = {"judgments": 0, "longer_picked_share": None, "by_gap": [None] * len(GAP_BUCKETS),
           "judgments_by_gap": [0] * len(GAP_BUCKETS)}
    if picks.num_rows == 0:
        return out
    con = duckdb.connect()
    try:
        con.register("m", table)
        con.register("p", picks)
        rows = con.execute(f"""
            SELECT {bucket_sql('abs(m.chosen_chars - m.rejected_chars)', GAP_BUCKETS)} AS b, count(*),
                   count(*) FILTER ((p.label = 'chosen') = (m.chosen_chars > m.rejected_chars))
            FROM p JOIN m USING (row) WHERE m.chosen_chars <> m.rejected_chars GROUP BY b""").fetchall()
    finally:
        con.close()
    n = sum(r[1] for r in rows)
    longer = sum(r[2] for r in rows)
    for b, k, c in rows:
        if b is not None:
            out["judgments_by_gap"][b] = k
            out["by_gap"][b] = c / k
    out["judgments"], out["longer_picked_share"] = n, (longer / n) if n else None
    return out


def _per_tag(db: Database, name: str) -> list[dict]:
    tagged = db.rows(
        "SELECT tag, list(DISTINCT row) FROM (SELECT row, unnest(tags) AS tag FROM current_labels WHERE dataset = ?) "
        "GROUP BY tag ORDER BY count(*) DESC, tag LIMIT ?", [name, TAGS_SHOWN])
    if not tagged:
        return []
    table = labels.judgments(db, name)
    out = []
    for tag, rows in tagged:
        sub = {r: table[r] for r in rows if r in table}
        names = sorted({a for v in sub.values() for a in v})
        items = sum(1 for v in sub.values() if len(v) >= 2)
        out.append({"tag": tag, "rows": len(rows), "items": items,
                    "alpha": labels.krippendorff_alpha(sub, names) if items else None,
                    "key": "tag:" + json.dumps(tag)})
    return out


def _kappa(db: Database, name: str) -> dict:
    agr = labels.agreement(db, name)
    names = sorted({p["a"] for p in agr.pairwise} | {p["b"] for p in agr.pairwise})
    index = {a: i for i, a in enumerate(names)}
    matrix = [[1.0 if i == j else None for j in range(len(names))] for i in range(len(names))]
    shared = [[0] * len(names) for _ in names]
    for p in agr.pairwise:
        i, j = index[p["a"]], index[p["b"]]
        matrix[i][j] = matrix[j][i] = p["kappa"]
        shared[i][j] = shared[j][i] = p["n"]
    return {"annotators": names, "kappa": matrix, "shared": shared, "alpha": agr.alpha, "items": agr.items}


def label_stats(db: Database, name: str, table: Any) -> dict:
    """The labels part of the statistics of ``name``; ``table`` holds its per-pair measures."""
    current = labels.current_labels(db, name)
    if not current:
        return {"labels": 0}
    return {
        "labels": len(current),
        "per_annotator": _per_annotator(current),
        "progress": _progress(db, name),
        "length_bias": _longer_picked(db, name, table),
        "per_tag": _per_tag(db, name),
        "agreement": _kappa(db, name),
    }


def rows_for(db: Database, name: str, key: str) -> tuple[str, list[int]]:
    """(title, rows) of a labels key: ``annot:[annotator, label]`` or ``tag:"TAG"``."""
    kind, _, arg = key.partition(":")
    try:
        value = json.loads(arg)
    except ValueError:
        raise KeyError(key) from None
    if kind == "annot" and isinstance(value, list) and len(value) == 2:
        rows = db.rows("SELECT row FROM current_labels WHERE dataset = ? AND annotator = ? AND label = ? ORDER BY row",
                       [name, str(value[0]), str(value[1])])
        return f"pairs {value[0]} labeled {value[1]}", [r[0] for r in rows]
    if kind == "tag" and isinstance(value, str):
        rows = db.rows("SELECT DISTINCT row FROM current_labels WHERE dataset = ? AND list_contains(tags, ?) "
                       "ORDER BY row", [name, value])
        return f"pairs tagged {value}", [r[0] for r in rows]
    raise KeyError(key)
