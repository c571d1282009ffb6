"""Indexing in the background: one worker thread builds the indexes it is given, one at a time, in
the order asked, and keeps each build's progress (fraction, rows per second, time left) where a
page can read it.

    index_in_background(db, ["new-data"])     # after an ingest: returns at once
    background_status(db)                     # [IndexJob(dataset='new-data', state='running', ...)]

Searches go on meanwhile: a build holds the Java lock one batch at a time.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, replace
from typing import Callable, Iterable

from ..store import Database
from .errors import SearchError
from .index import DEFAULT_B, DEFAULT_K1, build_index
from .. import catalogue

BATCH_ROWS = 5_000
"""Rows per indexer call in the background: a search waits at most one such batch."""


@dataclass
class IndexJob:
    """One background build: queued, running, done or failed."""

    dataset: str
    database: str  # the database file it belongs to
    state: str = "queued"
    fraction: float = 0.0
    message: str = "waiting to be indexed"
    rows: int = 0
    queued_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    error: str | None = None

    @property
    def pending(self) -> bool:
        return self.state in ("queued", "running")

    @property
    def rate(self) -> float | None:
        """Rows indexed per second so far (None before the first batch)."""
        if self.state != "running" or not self.started_at or self.fraction <= 0:
            return None
        return self.rows * self.fraction / max(1e-6, time.monotonic() - self.started_at)

    @property
    def seconds_left(self) -> float | None:
        """A guess at the time left, from the rate so far."""
        rate = self.rate
        if not rate:
            return None
        return self.rows * (1 - self.fraction) / rate

    def describe(self) -> str:
        """One line for the page.

        >>> IndexJob("notes", "db", rows=2000).describe()
        'notes: waiting to be indexed'
        >>> IndexJob("notes", "db", state="failed", error="no dataset named 'notes'").describe()
        "notes: indexing failed: no dataset named 'notes'"
        """
        if self.state == "queued":
            return f"{self.dataset}: waiting to be indexed"
        if self.state == "failed":
            return f"{self.dataset}: indexing failed: {self.error}"
        if self.state == "done":
            took = (self.finished_at or 0) - (self.started_at or 0)
            return f"{self.dataset}: indexed {self.rows:,} rows in {took:.1f} s"
        line = f"{self.dataset}: indexing, {self.fraction:.0%} of {self.rows:,} rows"
        if self.rate:
            line += f" ({self.rate:,.0f} rows/s, about {self.seconds_left:.0f} s left)"
        return line


_LOCK = threading.Condition()
_JOBS: dict[tuple[str, str], IndexJob] = {}  # the latest job of each (database, dataset)
_QUEUE: "queue.Queue[tuple[Database, IndexJob, float, float, Callable | None]]" = queue.Queue()
_WORKER: threading.Thread | None = None


def _key(db: Database, dataset: str) -> tuple[str, str]:
    return (str(db.path.resolve()), dataset)


def index_in_background(db: Database, names: Iterable[str], on_progress: Callable[[IndexJob], None] | None = None,
                        k1: float = DEFAULT_K1, b: float = DEFAULT_B) -> list[IndexJob]:
    """Queue an index build for each of ``names`` (one already waiting is not queued twice) and
    return at once. ``on_progress(job)`` is called from the worker thread as each build moves on."""
    global _WORKER
    out = []
    with _LOCK:
        for name in dict.fromkeys(names):
            key = _key(db, name)
            job = _JOBS.get(key)
            if job is None or job.state != "queued":
                info = catalogue.dataset(db, name)
                job = IndexJob(name, key[0], rows=info.row_count if info else 0, queued_at=time.monotonic())
                _JOBS[key] = job
                _QUEUE.put((db, job, k1, b, on_progress))
            out.append(replace(job))
        if _WORKER is None or not _WORKER.is_alive():
            _WORKER = threading.Thread(target=_work, name="search-indexer", daemon=True)
            _WORKER.start()
    return out


def _work() -> None:
    while True:
        db, job, k1, b, on_progress = _QUEUE.get()
        try:
            _run(db, job, k1, b, on_progress)
        finally:
            _QUEUE.task_done()


def _run(db: Database, job: IndexJob, k1: float, b: float, on_progress) -> None:
    def update(**changes) -> None:
        with _LOCK:
            for name, value in changes.items():
                setattr(job, name, value)
            _LOCK.notify_all()
        if on_progress is not None:
            try:
                on_progress(replace(job))
            except Exception:  # noqa: BLE001  (a watcher's mistake must not stop the builds)
                pass

    update(state="running", started_at=time.monotonic(), message="starting")
    try:
        build_index(db, job.dataset, k1=k1, b=b, batch_rows=BATCH_ROWS,
                    progress=lambda frac, desc: update(fraction=frac, message=desc))
    except SearchError as err:
        update(state="failed", error=str(err), finished_at=time.monotonic())
    except Exception as err:  # noqa: BLE001  (any failure is reported on the page, the worker goes on)
        update(state="failed", error=f"{type(err).__name__}: {err}", finished_at=time.monotonic())
    else:
        update(state="done", fraction=1.0, message="done", finished_at=time.monotonic())


def background_status(db: Database | None = None) -> list[IndexJob]:
    """Copies of the background jobs (of ``db``, or of every database), the latest first."""
    where = str(db.path.resolve()) if db is not None else None
    with _LOCK:
        jobs = [replace(j) for j in _JOBS.values() if where is None or j.database == where]
    return sorted(jobs, key=lambda j: j.queued_at, reverse=True)


def job_of(db: Database, dataset: str) -> IndexJob | None:
    """A copy of the latest background job of ``dataset``, if there was one."""
    with _LOCK:
        job = _JOBS.get(_key(db, dataset))
        return replace(job) if job else None


def describe_pending(db: Database, dataset: str) -> str | None:
    """Why ``dataset`` cannot be searched yet when its index is being built ('' otherwise: None)."""
    job = job_of(db, dataset)
    if job is None or not job.pending:
        return None
    if job.state == "queued":
        return f"{dataset} has no search index yet: it is waiting to be indexed"
    left = f", about {job.seconds_left:.0f} s left" if job.seconds_left else ""
    return f"{dataset} has no search index yet: indexing it now ({job.fraction:.0%}{left})"


def wait_for_background(timeout: float | None = None) -> bool:
    """Wait until no job is queued or running; False when ``timeout`` seconds passed first."""
    deadline = None if timeout is None else time.monotonic() + timeout
    with _LOCK:
        while any(j.pending for j in _JOBS.values()):
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            _LOCK.wait(left)
    return True
