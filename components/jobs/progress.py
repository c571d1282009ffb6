"""How far a job is: rows done and failed of the total, the rate, and the time left."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class Progress:
    job: str
    total: int           # rows this run has to do (those done before excluded)
    done: int = 0        # rows written in this run
    failed: int = 0      # rows whose step failed in this run
    before: int = 0      # rows done before this run (resumed)
    started: float = field(default_factory=time.perf_counter)

    @property
    def seconds(self) -> float:
        return max(time.perf_counter() - self.started, 1e-9)

    @property
    def rate(self) -> float:
        """Rows per second (done or failed) in this run."""
        return (self.done + self.failed) / self.seconds

    @property
    def left_s(self) -> float | None:
        remaining = self.total - self.done - self.failed
        if remaining <= 0:
            return 0.0
        return remaining / self.rate if self.rate > 0 else None

    @property
    def fraction(self) -> float:
        return 1.0 if self.total == 0 else (self.done + self.failed) / self.total

    def describe(self) -> str:
        """``[120/1000] 118 done, 2 failed · 35.2 rows/s · 25 s left``"""
        left = self.left_s
        when = "" if left is None else f" · {format_seconds(left)} left"
        return (f"[{self.done + self.failed}/{self.total}] {self.done} done, {self.failed} failed"
                f" · {self.rate:.1f} rows/s{when}")

    def as_dict(self) -> dict:
        return {"job": self.job, "total": self.total, "done": self.done, "failed": self.failed,
                "before": self.before, "seconds": round(self.seconds, 3), "rate": round(self.rate, 3),
                "left_s": None if self.left_s is None else round(self.left_s, 1)}


def format_seconds(s: float) -> str:
    """Seconds as a person reads them.

    >>> format_seconds(42), format_seconds(125), format_seconds(7300)
    ('42 s', '2 min 5 s', '2 h 1 min')
    """
    s = int(round(s))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    return f"{s // 3600} h {s % 3600 // 60} min"
