"""Search filters: number ranges and label statuses, as Lucene filter clauses.

A filter is a clause of the search's Lucene query, so it applies to the whole ranked list and the
total counts what passes (not a cut of the top hits).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

from ..formats import EMPTY_SIDE_SQL
from ..schema import judged
from ..store import Database
from . import numbers
from .errors import SearchError
from .java import java, locked

LABEL_STATUSES = ("any", "unlabeled", "labeled", "flipped", "empty_side")
"""``empty_side`` is not a label but a flag set at ingest (formats.EMPTY_SIDE_SQL): pairs one of whose
responses is empty, kept and searchable on their own."""


@dataclass
class Filters:
    """What a search keeps: every filter applies to the whole ranked list (and to the total).

    ``ranges`` maps a filter name -- ``length``, ``score_chosen``, ``score_rejected``, ``margin``, or
    ``meta:COLUMN`` for a numeric metadata column -- to ``(low, high)``, either end None for open;
    a row without that number does not pass. ``split`` keeps datasets of that split; ``label`` is
    one of LABEL_STATUSES.
    """

    split: str | None = None
    ranges: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    label: str = "any"

    def active(self) -> bool:
        return bool(self.split or any(lo is not None or hi is not None for lo, hi in self.ranges.values())
                    or self.label not in ("any", None, ""))


def label_rows(db: Database, dataset: str, status: str) -> list[int]:
    """Rows of ``dataset`` with a current judgment (``labeled``: chosen, rejected, tie or both
    bad; skips do not count), whose majority judgment is ``rejected`` (``flipped``), or with an
    empty side (``empty_side``)."""
    if status == "empty_side":
        return [r[0] for r in db.rows(f"SELECT row FROM records WHERE dataset = ? AND {EMPTY_SIDE_SQL} ORDER BY row",
                                      [dataset])]
    if status == "flipped":
        from ..labels.events import majority_rows  # the one majority rule (labels imports search: no cycle at import)

        return majority_rows(db, dataset, "rejected")
    if status != "labeled":
        raise SearchError(f"unknown label status {status!r}")
    return [r[0] for r in db.rows(
        f"""SELECT DISTINCT row FROM current_labels
           WHERE dataset = ? AND {judged()} ORDER BY row""",
        [dataset],
    )]


def number_field(name: str) -> str:
    """The Lucene field of range filter ``name``."""
    if name in numbers.BUILTIN:
        return numbers.BUILTIN[name]
    if name.startswith("meta:") and len(name) > 5:
        return numbers.metadata_field(name[5:])
    raise SearchError(f"unknown range filter {name!r} (use {', '.join(numbers.BUILTIN)} or meta:COLUMN)")


def _bound(name: str, v) -> float | None:
    if v is None or v == "":
        return None
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise SearchError(f"the {name} bound {v!r} is not a number") from None
    if math.isnan(x):
        raise SearchError(f"the {name} bound is not a number")
    if math.isinf(x) or abs(x) > 4e12:  # 1e309 reads as infinity
        raise SearchError(f"the {name} bound {v} is out of range: use a number between -4e12 and 4e12, "
                          "or leave that end empty")
    return x


_CLAUSES: dict[tuple, object] = {}  # Lucene filter queries by what they filter (a label set costs SQL and many Java calls)


def _cached(key: tuple, build: Callable[[], object]):
    clause = _CLAUSES.get(key)
    if clause is None:
        if len(_CLAUSES) > 256:
            _CLAUSES.clear()
        clause = _CLAUSES[key] = build()
    return clause


@locked
def filter_clauses(db: Database, datasets: Sequence[str], filters: Filters) -> list[tuple[str, object]]:
    """(occur, query) clauses that implement ``filters`` (besides the split) over ``datasets``."""
    J = java()
    clauses = []
    for name, (lo, hi) in (filters.ranges or {}).items():
        lo, hi = _bound(name, lo), _bound(name, hi)
        if lo is None and hi is None:
            continue
        if lo is not None and hi is not None and lo > hi:
            raise SearchError(f"the {name} range is empty: {lo:g} is more than {hi:g}")
        low = numbers.encode_number(lo) if lo is not None else numbers.LOWEST
        high = numbers.encode_number(hi) if hi is not None else numbers.HIGHEST
        lucene_field = number_field(name)
        clauses.append(("FILTER", _cached(
            ("range", lucene_field, low, high),
            lambda: J.TermRangeQuery.newStringRange(lucene_field, low, high, True, True))))
    label = filters.label or "any"
    if label not in LABEL_STATUSES:
        raise SearchError(f"unknown label status {label!r} (use {', '.join(LABEL_STATUSES)})")
    if label != "any":
        status = "labeled" if label == "unlabeled" else label

        def labeled():
            ids = J.ArrayList()
            for dataset in datasets:  # the labels in the database now, joined to the index by the id
                for row in label_rows(db, dataset, status):
                    ids.add(J.BytesRef(f"{dataset}/{row:012d}".encode()))
            return J.TermInSetQuery("id", J.cast("java.util.Collection", ids))

        key = ("labels", id(db), db.generation, status, tuple(datasets))
        clauses.append(("MUST_NOT" if label == "unlabeled" else "FILTER", _cached(key, labeled)))
    return clauses


@locked
def combine(query, clauses: list[tuple[str, object]]):
    """``query`` with the filter ``clauses`` added."""
    if not clauses:
        return query
    J = java()
    builder = J.BooleanQueryBuilder()
    builder.add(query, J.occur_MUST)
    for occur, q in clauses:
        builder.add(q, getattr(J, "occur_" + occur))
    return builder.build()
