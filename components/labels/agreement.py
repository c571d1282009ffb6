"""Agreement between annotators: Cohen's kappa (scikit-learn), Krippendorff's alpha (krippendorff),
raw agreement, confusion tables and the pairs annotators disagree on.

Only judgments count (chosen, rejected, tie, both bad); a skip is a missing value, not a category.
On a dataset whose label schema is a 5- or 7-point scale (``label_schema``) the grades are compared
too, at the ordinal level (``ordinal``): weighted kappa for two annotators (scikit-learn) and
Krippendorff's alpha (``krippendorff``, level ordinal) for two or more.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Iterable, Sequence

from ..store import Database
from .events import JUDGMENTS, check_pairs, current_labels, graded_labels, majority_labels

MAX_PAIRWISE = 20
"""Pairwise kappas (the heatmap) are computed among this many annotators with the most judgments."""


def judgments(db: Database, dataset: str, annotators: Iterable[str] | None = None) -> dict[int, dict[str, str]]:
    """{row: {annotator: label}} of the current judgments (skips left out) in ``dataset``."""
    keep = set(annotators) if annotators else None
    out: dict[int, dict[str, str]] = {}
    for row, annotator, label in current_labels(db, dataset):
        if label in JUDGMENTS and (keep is None or annotator in keep):
            out.setdefault(row, {})[annotator] = label
    return out


@dataclass
class Agreement:
    dataset: str
    annotators: list[str]
    items: int  # pairs judged by two or more of the annotators
    judged: int  # pairs judged by anyone
    kappa: float | None  # Cohen's kappa (exactly two annotators)
    alpha: float | None  # Krippendorff's alpha, nominal (two or more)
    raw: float | None  # observed pairwise agreement
    unanimous: float | None  # share of items where every annotator gave the same label
    pairwise: list[dict] = field(default_factory=list)  # {a, b, n, kappa, raw}, among the busiest MAX_PAIRWISE
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # annotator -> label -> n
    disagreements: list[dict] = field(default_factory=list)
    points: int | None = None  # the label schema's scale (None: binary)
    weighted_kappa: float | None = None  # quadratic-weighted kappa of the grades (exactly two annotators)
    ordinal_alpha: float | None = None  # Krippendorff's alpha of the grades, ordinal level
    graded_items: int = 0  # pairs graded by two or more of the annotators

    def as_dict(self) -> dict:
        return asdict(self)


def _num(x: float | None) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def cohen_kappa(a: Sequence[str], b: Sequence[str]) -> float | None:
    """Cohen's kappa of two annotators' labels of the same items (scikit-learn); None when undefined.

    >>> round(cohen_kappa(["chosen", "chosen", "rejected", "tie"], ["chosen", "rejected", "rejected", "tie"]), 3)
    0.636
    >>> cohen_kappa(["tie", "tie"], ["tie", "tie"]) is None  # one category: chance agreement is 1
    True
    """
    from sklearn.metrics import cohen_kappa_score

    if len(a) == 0:
        return None
    if len(set(a) | set(b)) == 1:
        return None  # one category only: kappa is 0/0
    return _num(cohen_kappa_score(list(a), list(b), labels=list(JUDGMENTS)))


def krippendorff_alpha(table: dict[int, dict[str, str]], annotators: Sequence[str]) -> float | None:
    """Krippendorff's alpha (nominal) of {row: {annotator: label}} with missing values (``krippendorff``)."""
    import krippendorff
    import numpy as np

    rows = [r for r, v in table.items() if len(v) >= 2]
    if not rows or len(annotators) < 2:
        return None
    code = {lab: i for i, lab in enumerate(JUDGMENTS)}
    data = np.full((len(annotators), len(rows)), np.nan)
    for j, r in enumerate(rows):
        for i, a in enumerate(annotators):
            if a in table[r]:
                data[i, j] = code[table[r][a]]
    if len(set(data[~np.isnan(data)].tolist())) < 2:
        return None  # one category only: alpha is undefined
    return _num(krippendorff.alpha(reliability_data=data, level_of_measurement="nominal"))


def _raw_agreement(shared: dict[int, dict[str, str]]) -> tuple[float | None, float | None]:
    """(share of agreeing ordered annotator pairs over all items, share of unanimous items)."""
    if not shared:
        return None, None
    agree = total = 0
    for v in shared.values():
        n = len(v)
        agree += sum(k * (k - 1) for k in Counter(v.values()).values())
        total += n * (n - 1)
    unanimous = sum(1 for v in shared.values() if len(set(v.values())) == 1) / len(shared)
    return agree / total, unanimous


def _pairwise(names: list[str], table: dict[int, dict[str, str]]) -> list[dict]:
    by_annotator: dict[str, dict[int, str]] = {a: {} for a in names}
    for r, v in table.items():
        for a, lab in v.items():
            if a in by_annotator:
                by_annotator[a][r] = lab
    busiest = set(sorted(names, key=lambda a: (-len(by_annotator[a]), a))[:MAX_PAIRWISE])
    out = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            if a not in busiest or b not in busiest:
                continue
            both = sorted(by_annotator[a].keys() & by_annotator[b].keys())
            la = [by_annotator[a][r] for r in both]
            lb = [by_annotator[b][r] for r in both]
            out.append({"a": a, "b": b, "n": len(both), "kappa": cohen_kappa(la, lb),
                        "raw": (sum(x == y for x, y in zip(la, lb)) / len(both)) if both else None})
    return out


def agreement(db: Database, dataset: str, annotators: Sequence[str] | None = None) -> Agreement:
    """Agreement between ``annotators`` (default: everyone who labeled) on ``dataset``'s pairs."""
    info = check_pairs(db, dataset)
    table = judgments(db, info.name, annotators)
    names = sorted({a for v in table.values() for a in v})
    if annotators:
        names = [a for a in annotators if a in names]
    shared = {r: v for r, v in table.items() if len(v) >= 2}
    raw, unanimous = _raw_agreement(shared)
    pairwise = _pairwise(names, table)
    ordinal = _ordinal(db, info.name, names)
    return Agreement(
        dataset=info.name, annotators=names, items=len(shared), judged=len(table),
        kappa=pairwise[0]["kappa"] if len(names) == 2 else None,
        alpha=krippendorff_alpha(table, names), raw=raw, unanimous=unanimous, pairwise=pairwise,
        counts={a: dict(Counter(v[a] for v in table.values() if a in v)) for a in names},
        disagreements=_disagreements(db, info.name, table, annotators), **ordinal,
    )


def grade_table(db: Database, dataset: str, annotators: Sequence[str] | None = None) -> dict[int, dict[str, int]]:
    """{row: {annotator: grade}} of the current graded labels of ``dataset``."""
    keep = set(annotators) if annotators else None
    out: dict[int, dict[str, int]] = {}
    for r in graded_labels(db, dataset):
        if r["grade"] is not None and (keep is None or r["annotator"] in keep):
            out.setdefault(r["row"], {})[r["annotator"]] = r["grade"]
    return out


def _ordinal(db: Database, dataset: str, names: list[str]) -> dict:
    """The ordinal figures of a graded dataset (nothing for a binary one)."""
    from .settings import label_schema
    from .ordinal import ordinal_alpha, weighted_kappa

    points = label_schema(db, dataset).get("points")
    if not points:
        return {}
    grades = grade_table(db, dataset, names)
    graders = sorted({a for v in grades.values() for a in v})
    kappa = None
    if len(graders) == 2:
        a, b = graders
        both = sorted(r for r, v in grades.items() if a in v and b in v)
        kappa = weighted_kappa([grades[r][a] for r in both], [grades[r][b] for r in both], points)
    return {"points": points, "weighted_kappa": kappa, "ordinal_alpha": ordinal_alpha(grades, graders),
            "graded_items": sum(1 for v in grades.values() if len(v) >= 2)}


def _disagreements(db: Database, dataset: str, table: dict[int, dict[str, str]],
                   annotators: Sequence[str] | None) -> list[dict]:
    split = [row for row in sorted(table) if len(table[row]) >= 2 and len(set(table[row].values())) > 1]
    if not split:
        return []
    top = majority_labels(db, dataset, annotators)
    return [{"row": row, "labels": dict(sorted(table[row].items())), "majority": top.get(row)} for row in split]


def disagreements(db: Database, dataset: str, annotators: Sequence[str] | None = None) -> list[dict]:
    """Pairs on which two or more annotators gave different judgments, in source order."""
    name = check_pairs(db, dataset).name
    return _disagreements(db, name, judgments(db, name, annotators), annotators)


def confusion(db: Database, dataset: str, a: str, b: str) -> tuple[list[str], list[list[int]]]:
    """Counts of (``a``'s label, ``b``'s label) over the pairs both judged: rows ``a``, columns ``b``."""
    table = judgments(db, check_pairs(db, dataset).name, [a, b])
    idx = {lab: i for i, lab in enumerate(JUDGMENTS)}
    m = [[0] * len(JUDGMENTS) for _ in JUDGMENTS]
    for v in table.values():
        if a in v and b in v:
            m[idx[v[a]]][idx[v[b]]] += 1
    return list(JUDGMENTS), m


def busiest_pair(agr: Agreement) -> tuple[str, str] | None:
    """The two annotators who judged the most pairs in common."""
    if not agr.pairwise:
        return None
    best = max(agr.pairwise, key=lambda p: p["n"])
    return best["a"], best["b"]
