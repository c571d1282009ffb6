"""Running a step over a selection of a dataset's rows: in this process, or on a Ray cluster.

The server reads the rows not yet done (``step.done_rows``) from DuckDB as Arrow batches, hands them
to the step (here, or to an actor pool on Ray, components/jobs/ray_run.py), and writes each batch of
results through ``step.write`` in one short transaction, with the job's counts and the rows' errors in
another. Stopping at any point (Ctrl-C, Cancel, a crash) loses at most the batches in flight: starting
the same job again takes it up under the same id and does only the rows without a result.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

import pyarrow as pa
import pyarrow.compute as pc

from ..store import Database
from . import record
from .progress import Progress
from .step import JobError, Step, ok_rows, run_step
from .. import catalogue


_LIVE: dict[str, threading.Event] = {}
"""The cancel switch of each job running in this process, by id."""


def cancel_job(job_id: str) -> bool:
    """Ask a job running in this process to stop after the batch in flight; False when none is."""
    event = _LIVE.get(job_id)
    if event is None:
        return False
    event.set()
    return True


def running_here() -> list[str]:
    return list(_LIVE)


@dataclass
class JobResult:
    job: str
    status: str          # done | cancelled | interrupted | failed
    total: int           # rows selected
    before: int          # rows done before this run
    done: int            # rows written in this run
    failed: int          # rows whose step failed in this run
    seconds: float
    rate: float
    where: str
    resumed: bool

    def as_dict(self) -> dict:
        return dict(self.__dict__)

    def describe(self) -> str:
        again = f", {self.before} done before" if self.before else ""
        return (f"job {self.job} {self.status}: {self.done} rows done, {self.failed} failed of {self.total}{again}"
                f" · {self.rate:.1f} rows/s · {self.seconds:.1f} s · {self.where}")


def where_from(ray: str | None = None, env: dict | None = None) -> str:
    """Where a job runs: ``--ray auto|ADDRESS`` when given, else $STUDIO_RAY_ADDRESS when set (the
    server's setting), else in this process."""
    env = os.environ if env is None else env
    value = (ray or env.get("STUDIO_RAY_ADDRESS") or "").strip()
    return f"ray:{value}" if value else "process"


def select_rows(db: Database, dataset: str, rows=None, query: str | None = None, queue: str | None = None,
                limit: int | None = None, open_queue: Callable | None = None) -> tuple[list[int] | None, dict]:
    """The rows a job works on (None: every row of the dataset) and the selection as it is recorded.
    ``open_queue(db, dataset, queue)`` gives a labeling queue's rows (``triage.open_queue``, handed
    in by the caller: triage stands above the concepts whose jobs run here)."""
    given = [x for x in (rows is not None, bool(query), bool(queue)) if x]
    if len(given) > 1:
        raise JobError("give rows, a query or a queue, not more than one")
    if limit is not None and int(limit) < 1:
        raise JobError("limit must be at least 1")
    if rows is not None:
        wanted = [int(r) for r in rows]
        present = set(catalogue.existing_rows(db, dataset, wanted))
        chosen, selection = [r for r in wanted if r in present], {"rows": wanted}
    elif query:
        from ..search import SearchError, find_rows

        try:
            chosen = find_rows(db, dataset, query, limit or 10**7).rows
        except SearchError as err:
            raise JobError(f"search {query!r}: {err}") from None
        selection = {"query": query}
    elif queue:
        from ..labels import LabelError

        if open_queue is None:
            raise JobError("a job over a queue needs the queues (triage.open_queue)")
        try:
            chosen = list(open_queue(db, dataset, queue).rows)
        except LabelError as err:
            raise JobError(str(err)) from None
        selection = {"queue": queue}
    else:
        chosen, selection = None, {}
    if limit:
        selection["limit"] = int(limit)
        if chosen is None:
            chosen = catalogue.first_rows(db, dataset, int(limit))
        chosen = chosen[: int(limit)]
    if chosen is not None and not chosen:
        raise JobError(f"no rows of {dataset} selected")
    return chosen, selection


def run(db: Database, step: Step, dataset: str, *, rows=None, query: str | None = None, queue: str | None = None,
        limit: int | None = None, started_by: str, batch_size: int = 32, where: str = "process", workers: int = 1,
        num_gpus: float | None = None, on_progress: Callable[[Progress], None] | None = None,
        cancel: threading.Event | None = None, on_start: Callable[[str, bool], None] | None = None,
        open_queue: Callable | None = None) -> JobResult:
    """Run ``step`` over the selected rows of ``dataset`` that it has not done; see the module text.

    ``where``: "process", "ray:auto" or "ray:ADDRESS". ``num_gpus``: per Ray actor (None: 1 when the
    cluster has GPUs). A KeyboardInterrupt (Ctrl-C, or raised by ``on_progress``) marks the job
    interrupted and propagates; ``cancel`` set stops it between batches (status cancelled).
    """
    info = catalogue.dataset(db, dataset)
    if info is None:
        raise JobError(f"no dataset named {str(dataset)[:100]!r}")
    if batch_size is None or int(batch_size) < 1:
        raise JobError("batch size must be at least 1")
    batch_size = int(batch_size)
    if where != "process" and not where.startswith("ray:"):
        raise JobError(f"where a job runs: 'process' or 'ray:auto|ADDRESS', not {where!r}")
    chosen, selection = select_rows(db, dataset, rows, query, queue, limit, open_queue)
    cancel = cancel or threading.Event()

    cur = db.cursor().cursor()  # the reads of this job, on a connection of their own
    try:
        todo_sql, params, total, before = _plan(db, cur, step, info.name, info.version, chosen)
        job_id, resumed = record.open_job(
            db, kind=step.kind, dataset=info.name, version=info.version, settings=step.identity(),
            selection=selection, where_run=where.split(":")[0], started_by=started_by, rows_total=total,
            rows_done=before)
        _LIVE[job_id] = cancel
        if on_start is not None:
            on_start(job_id, resumed)
        progress = Progress(job_id, total=total - before, before=before)
        status, message = "done", None
        try:
            batches = _batches(cur.sql(todo_sql, params=params).fetch_record_batch(batch_size), batch_size)
            if where == "process":
                results = _in_process(step, batches, cancel)
            else:
                from . import ray_run

                results = ray_run.results(step, batches, address=where.split(":", 1)[1], workers=workers,
                                          num_gpus=num_gpus, batch_size=batch_size, cancel=cancel)
            for out in results:
                _write(db, step, job_id, started_by, info.name, info.version, out, progress)
                if on_progress is not None:
                    on_progress(progress)
                if cancel.is_set():
                    break
            if cancel.is_set():
                status, message = "cancelled", "stopped by cancel"
            elif on_progress is not None:
                on_progress(progress)
        except KeyboardInterrupt:
            record.finish(db, job_id, "interrupted", "interrupted (Ctrl-C or the database stopped the query)")
            raise
        except JobError as err:
            record.finish(db, job_id, "failed", str(err))
            raise
        except Exception as err:  # a step or cluster failure: kept on the job, told in one line
            message = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"[:500]
            record.finish(db, job_id, "failed", message)
            raise JobError(message) from err
        record.finish(db, job_id, status, message)
        _LIVE.pop(job_id, None)
        return JobResult(job_id, status, total, before, progress.done, progress.failed, round(progress.seconds, 3),
                         round(progress.rate, 3), where, resumed)
    finally:
        if "job_id" in locals():
            _LIVE.pop(job_id, None)
        cur.close()


def _plan(db: Database, cur, step: Step, dataset: str, version: int, chosen: list[int] | None):
    """The query of the rows to do, its parameters, the rows selected and those done before."""
    params = {"dataset": dataset}
    if chosen is not None:
        cur.register("_job_rows", pa.table({"row": pa.array(chosen, pa.int64())}))
        selected = "SELECT row FROM _job_rows"
    else:
        selected = "SELECT row FROM records WHERE dataset = $dataset"
    done = step.done_rows(db, dataset, version)
    if isinstance(done, str):
        done_sql = done
    else:
        cur.register("_job_done", pa.table({"row": pa.array(sorted(int(r) for r in done), pa.int64())}))
        done_sql = "SELECT row FROM _job_done"
    columns = "".join(f", r.{c}" for c in step.columns())
    base = f"FROM records r WHERE r.dataset = $dataset AND r.row IN ({selected})"
    total, before = cur.execute(
        f"SELECT count(*), count(*) FILTER (WHERE r.row IN ({done_sql})) {base}", params).fetchall()[0]
    todo = f"SELECT r.row{columns} {base} AND r.row NOT IN ({done_sql}) ORDER BY r.row"
    return todo, params, int(total), int(before)


def _batches(reader: pa.RecordBatchReader, size: int) -> Iterator[pa.Table]:
    """Tables of ``size`` rows (the last one shorter) from an Arrow reader."""
    pending: list[pa.RecordBatch] = []
    count = 0
    for rb in reader:
        pending.append(rb)
        count += rb.num_rows
        while count >= size:
            table = pa.Table.from_batches(pending).combine_chunks()
            yield table.slice(0, size)
            rest = table.slice(size)
            pending, count = (rest.to_batches() if rest.num_rows else []), rest.num_rows
    if count:
        yield pa.Table.from_batches(pending).combine_chunks()


def _in_process(step: Step, batches: Iterable[pa.Table], cancel: threading.Event) -> Iterator[pa.Table]:
    try:
        step.load()
    except Exception as err:
        raise JobError(f"cannot load the step's model: {type(err).__name__}: {err}") from err
    for batch in batches:
        if cancel.is_set():
            return
        yield run_step(step, batch)


def _write(db: Database, step: Step, job_id: str, started_by: str, dataset: str, version: int, out: pa.Table,
           progress: Progress) -> None:
    good = ok_rows(out)
    errors = out.filter(pc.is_valid(out["error"])) if "error" in out.column_names else None
    written = step.write(db, job_id, started_by, dataset, version, good) if good.num_rows else 0
    record.record_batch(db, job_id, written, errors)
    progress.done += written
    progress.failed += 0 if errors is None else errors.num_rows
