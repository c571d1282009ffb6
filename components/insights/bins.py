"""Histogram bins that are SQL expressions, so that a bar and the rows behind it are the same predicate.

A numeric histogram here has ``count`` bins of equal ``width`` starting at ``start``; values at or
above the last edge fall in the last bin (an open "N or more" bar), values below ``start`` in the
first. ``bin_sql`` is the bin number of a value: the counts group by it and a bin's rows filter on
it, so a bar always leads to exactly its rows.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Bins:
    start: float
    width: float
    count: int

    def sql(self, expr: str) -> str:
        """SQL: the bin number (0-based) of ``expr``, NULL when ``expr`` is NULL."""
        return f"least(greatest(floor((({expr}) - {self.start!r}) / {self.width!r}), 0), {self.count - 1})::INTEGER"

    def label(self, i: int, integer: bool = True) -> str:
        """The range of bin ``i`` in words.

        >>> b = Bins(0, 100, 3)
        >>> [b.label(i) for i in range(3)]
        ['0–99', '100–199', '200+']
        >>> Bins(2, 1, 3).label(0)
        '2'
        >>> Bins(-1.0, 0.5, 4).label(1, integer=False)
        '-0.5 to <0'
        """
        lo = self.start + i * self.width
        hi = lo + self.width
        if integer:
            if i == self.count - 1:
                return f"{_num(lo)}+"
            if self.width == 1:
                return _num(lo)
            return f"{_num(lo)}–{_num(math.ceil(hi) - 1)}"
        if i == self.count - 1:
            return f"≥ {_num(lo)}"
        return f"{_num(lo)} to <{_num(hi)}"

    def as_dict(self) -> dict:
        return asdict(self)


def _num(x: float) -> str:
    return f"{int(x):,}" if float(x).is_integer() else f"{x:g}"


def nice_width(span: float, target: int, integer: bool) -> float:
    """A round bin width (1, 2 or 5 times a power of ten) giving about ``target`` bins over ``span``.

    >>> nice_width(1000, 20, True), nice_width(3, 20, True), nice_width(2.0, 10, False)
    (50, 1, 0.2)
    """
    raw = span / max(target, 1)
    if raw <= 0:
        return 1 if integer else 1.0
    power = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if m * power >= raw:
            width = m * power
            break
    if integer:
        return max(1, int(round(width)))
    return float(f"{width:.6g}")


def choose_bins(low: float | None, high: float | None, integer: bool, target: int = 24) -> Bins | None:
    """Bins from ``low`` to ``high`` (e.g. the minimum and the 99th percentile); the last bin is open.

    >>> choose_bins(0, 1000, True)
    Bins(start=0, width=50, count=22)
    >>> choose_bins(-4.0, 6.0, False, target=10)
    Bins(start=-4.0, width=1.0, count=12)
    >>> choose_bins(None, None, True) is None
    True
    """
    if low is None or high is None or math.isnan(low) or math.isnan(high):
        return None
    width = nice_width(high - low, target, integer)
    start = math.floor(low / width) * width
    if integer:
        start = int(start)
    count = int(math.floor((high - start) / width)) + 2  # through ``high``, plus the open bin above it
    return Bins(start=start, width=width, count=max(count, 1))


# Signed difference of characters (chosen minus rejected): the length-bias histogram. Each bucket is
# (label, lower bound inclusive, upper bound exclusive); None is unbounded.
DIFF_BUCKETS: list[tuple[str, float | None, float | None]] = [
    ("chosen shorter by 2000+", None, -1999),
    ("shorter by 500–1999", -1999, -499),
    ("shorter by 200–499", -499, -199),
    ("shorter by 50–199", -199, -49),
    ("shorter by 1–49", -49, 0),
    ("same length", 0, 1),
    ("longer by 1–49", 1, 50),
    ("longer by 50–199", 50, 200),
    ("longer by 200–499", 200, 500),
    ("longer by 500–1999", 500, 2000),
    ("chosen longer by 2000+", 2000, None),
]

# Absolute difference of characters: the "how often is the longer one chosen" buckets.
GAP_BUCKETS: list[tuple[str, float | None, float | None]] = [
    ("1–49", 1, 50), ("50–199", 50, 200), ("200–499", 200, 500), ("500–1999", 500, 2000), ("2000+", 2000, None),
]


def bucket_sql(expr: str, buckets: list[tuple[str, float | None, float | None]]) -> str:
    """SQL: the bucket number of ``expr`` (NULL when it is in none).

    >>> bucket_sql("d", [("neg", None, 0), ("pos", 0, None)])
    'CASE WHEN (d) < 0 THEN 0 WHEN (d) >= 0 THEN 1 END'
    """
    whens = []
    for i, (_, lo, hi) in enumerate(buckets):
        cond = []
        if lo is not None:
            cond.append(f"({expr}) >= {lo!r}")
        if hi is not None:
            cond.append(f"({expr}) < {hi!r}")
        whens.append(f"WHEN {' AND '.join(cond)} THEN {i}")
    return f"CASE {' '.join(whens)} END"
