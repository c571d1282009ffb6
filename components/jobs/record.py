"""The jobs and job_errors tables: what ran, on what, where, for whom, how far, and which rows failed.

A job is keyed by its kind, dataset version, step identity and selection: starting the same job
again while it is unfinished (interrupted, cancelled, failed, or left running by a crash) takes up
that job again, under the same id.
"""

from __future__ import annotations

import json
import uuid

import pyarrow as pa

from ..store import Database, despite_interrupt

STATUSES = ("running", "done", "cancelled", "failed", "interrupted")
FINISHED = ("done", "cancelled", "failed", "interrupted")


def _json(value) -> str:
    return json.dumps(value or {}, sort_keys=True, default=str)


def open_job(db: Database, *, kind: str, dataset: str, version: int, settings: dict, selection: dict,
             where_run: str, started_by: str | None, rows_total: int, rows_done: int) -> tuple[str, bool]:
    """The id of the job to run (an unfinished one with the same key, taken up again, or a new one),
    and whether it was taken up again. The job is marked running."""
    settings_json, selection_json = _json(settings), _json(selection)

    def run(cur):
        found = cur.execute(
            """SELECT id FROM jobs WHERE kind = ? AND dataset = ? AND dataset_version = ?
               AND CAST(settings AS VARCHAR) = ? AND CAST(selection AS VARCHAR) = ? AND status <> 'done'
               ORDER BY started_at DESC LIMIT 1""",
            [kind, dataset, version, settings_json, selection_json]).fetchone()
        if found:
            cur.execute(
                """UPDATE jobs SET status = 'running', where_run = ?, started_by = ?, finished_at = NULL,
                   rows_total = ?, rows_done = ?, rows_failed = 0, message = NULL WHERE id = ?""",
                [where_run, started_by, rows_total, rows_done, found[0]])
            cur.execute("DELETE FROM job_errors WHERE job = ?", [found[0]])
            return found[0], True
        job_id = uuid.uuid4().hex[:12]
        cur.execute(
            """INSERT INTO jobs (id, kind, dataset, dataset_version, settings, selection, status, where_run,
                                 started_by, started_at, rows_total, rows_done, rows_failed)
               VALUES (?, ?, ?, ?, ?, ?, 'running', ?, ?, now(), ?, ?, 0)""",
            [job_id, kind, dataset, version, settings_json, selection_json, where_run, started_by,
             rows_total, rows_done])
        return job_id, False

    return db.write(run)


def record_batch(db: Database, job_id: str, written: int, errors: pa.Table | None) -> None:
    """Count one written batch and keep its rows' errors (one short transaction)."""
    def run(cur):
        failed = 0
        if errors is not None and errors.num_rows:
            failed = errors.num_rows
            cur.register("_job_errors", errors.select(["row", "error"]))
            try:
                cur.execute("INSERT INTO job_errors SELECT ?, row, error, now() FROM _job_errors", [job_id])
            finally:
                cur.unregister("_job_errors")
        cur.execute("UPDATE jobs SET rows_done = rows_done + ?, rows_failed = rows_failed + ? WHERE id = ?",
                    [written, failed, job_id])

    db.write(run)


def finish(db: Database, job_id: str, status: str, message: str | None = None) -> None:
    if status not in STATUSES:
        raise ValueError(f"unknown job status {status!r}")
    # after Ctrl-C the watcher's interrupt can land on this very write: it is done again
    despite_interrupt(lambda: db.write(lambda cur: cur.execute(
        "UPDATE jobs SET status = ?, message = ?, finished_at = now() WHERE id = ?", [status, message, job_id])))


def get_job(db: Database, job_id: str) -> dict | None:
    found = list_jobs(db, job_id=job_id)
    return found[0] if found else None


def list_jobs(db: Database, job_id: str | None = None, status: str | None = None, kind: str | None = None,
              limit: int = 50) -> list[dict]:
    """Jobs, running ones first, then newest first."""
    where, params = ["TRUE"], []
    if job_id:
        where.append("id = ?"), params.append(job_id)
    if status:
        where.append("status = ?"), params.append(status)
    if kind:
        where.append("kind = ?"), params.append(kind)
    out = db.dicts(
        f"""SELECT * FROM jobs WHERE {' AND '.join(where)}
            ORDER BY status = 'running' DESC, started_at DESC LIMIT ?""", params + [int(limit)])
    for j in out:
        for key in ("settings", "selection"):
            if isinstance(j.get(key), str):
                j[key] = json.loads(j[key])
    return out


def job_errors(db: Database, job_id: str, limit: int = 100) -> list[dict]:
    return db.dicts('SELECT row, error, "at" FROM job_errors WHERE job = ? ORDER BY row LIMIT ?', [job_id, limit])
