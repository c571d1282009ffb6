"""The command line of jobs: the options every job command shares (the selection, the batch size,
where it runs), the progress it prints, and ``app.py jobs`` (list, show, cancel).

Nothing heavy is imported here at module level: app.py builds its parser from these functions on
every start.
"""

from __future__ import annotations

import argparse
import getpass
import json
import re
import sys
import time


def parse_rows(text: str | None) -> list[int] | None:
    """``"0,1,5-7"`` -> ``[0, 1, 5, 6, 7]``; None or empty -> None.

    >>> parse_rows("3, 0-2")
    [3, 0, 1, 2]
    """
    if not text:
        return None
    out: list[int] = []
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m:
            raise ValueError(f"rows: expected numbers or ranges such as 0,1,5-9, got {part[:40]!r}")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if hi < lo or hi - lo > 100_000_000:
            raise ValueError(f"rows: bad range {part[:40]!r}")
        out.extend(range(lo, hi + 1))
    return list(dict.fromkeys(out)) or None


def add_job_arguments(s: argparse.ArgumentParser, batch_default: int = 16) -> None:
    which = s.add_mutually_exclusive_group()
    which.add_argument("--rows", help="rows, e.g. 0,1,2 or 0-99 (default: every row)")
    which.add_argument("--query", metavar="Q", help="the rows this search finds")
    which.add_argument("--queue", metavar="QUEUE", help="the rows of a labeling queue (e.g. uncertain)")
    s.add_argument("--limit", type=int, metavar="N", help="at most N rows")
    s.add_argument("--batch-size", type=int, default=batch_default, metavar="N",
                   help=f"rows per batch: one forward pass each (default {batch_default})")
    s.add_argument("--ray", metavar="auto|ADDRESS",
                   help="run on a Ray cluster: auto (the running one, else a local one) or HOST:PORT "
                        "(default: in this process, or $STUDIO_RAY_ADDRESS when set)")
    s.add_argument("--workers", type=int, default=1, metavar="N", help="Ray actors, one model each (default 1)")
    s.add_argument("--num-gpus", type=float, metavar="G",
                   help="GPUs per Ray actor (default: 1 when the cluster has GPUs, else 0)")
    s.add_argument("--json", action="store_true", help="print one JSON object")


def cli_user() -> str:
    """Who started a job from the command line: the machine's user (who owns the database file)."""
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:
        return "cli"


def run_job_command(db, step, args, noun: str = "rows", what: str = "") -> tuple[int, object]:
    """Run ``step`` as the job ``args`` select, printing progress to stderr; (exit code, JobResult)."""
    from .. import triage
    from .runner import JobError, run, where_from

    try:
        rows = parse_rows(args.rows)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1, None
    where = where_from(args.ray)
    state = {"job": None, "last": 0.0}

    def started(job_id, resumed):
        state["job"] = job_id
        print(f"{'resuming' if resumed else 'started'} job {job_id}: {what} · {where}", file=sys.stderr, flush=True)

    def progress(p):
        now = time.perf_counter()
        if now - state["last"] >= 1.0 or p.done + p.failed >= p.total:
            state["last"] = now
            print(p.describe().replace("rows", noun), file=sys.stderr, flush=True)

    try:
        result = run(db, step, args.name, rows=rows, query=args.query, queue=args.queue, limit=args.limit,
                     started_by=cli_user(), batch_size=args.batch_size, where=where, workers=args.workers,
                     num_gpus=args.num_gpus, on_progress=progress, on_start=started, open_queue=triage.open_queue)
    except JobError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1, None
    except KeyboardInterrupt:
        job = f" job {state['job']}" if state["job"] else ""
        print(f"interrupted: what was written is kept; run the same command again to go on with{job or ' it'}",
              file=sys.stderr)
        return 130, None
    return 0, result


# -- app.py jobs -----------------------------------------------------------------------------------


def add_jobs_arguments(s: argparse.ArgumentParser) -> None:
    s.add_argument("action", nargs="?", choices=["list", "show", "cancel"], default="list")
    s.add_argument("job", nargs="?", metavar="ID", help="the job to show or cancel")
    s.add_argument("--status", choices=["running", "done", "cancelled", "failed", "interrupted"])
    s.add_argument("--limit", type=int, default=50)
    s.add_argument("--json", action="store_true")


def jobs_command(db, args) -> int:
    from . import record
    from .runner import cancel_job

    if args.action in ("show", "cancel") and not args.job:
        print(f"error: jobs {args.action} needs a job ID", file=sys.stderr)
        return 1
    if args.action == "cancel":
        if cancel_job(args.job):
            print(f"cancelling job {args.job}: it stops after the batch in flight")
            return 0
        job = record.get_job(db, args.job)
        print(f"error: job {args.job} is not running here" + (f" (it is {job['status']})" if job else " (no such job)"),
              file=sys.stderr)
        return 1
    if args.action == "show":
        job = record.get_job(db, args.job)
        if job is None:
            print(f"error: no job {args.job[:40]!r}", file=sys.stderr)
            return 1
        errors = record.job_errors(db, job["id"])
        if args.json:
            print(json.dumps(job | {"errors": errors}, default=str))
            return 0
        print(describe(job))
        for e in errors:
            print(f"  row {e['row']}: {e['error']}")
        return 0
    jobs = record.list_jobs(db, status=args.status, limit=args.limit)
    if args.json:
        print(json.dumps(jobs, default=str))
        return 0
    for job in jobs:
        print(describe(job))
    if not jobs:
        print("no jobs yet")
    return 0


def describe(job: dict) -> str:
    model = (job.get("settings") or {}).get("model", "")
    took = ""
    if job.get("finished_at") and job.get("started_at"):
        took = f" · {(job['finished_at'] - job['started_at']).total_seconds():.1f} s"
    return (f"{job['id']}  {job['status']:<11} {job['kind']:<6} {job['dataset']} v{job['dataset_version']}"
            f" {model} · {job['rows_done']}/{job['rows_total']} done, {job['rows_failed']} failed"
            f" · {job['where_run']} · by {job['started_by']}{took}")


def add_commands(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """The ``jobs`` command's parser; it runs as ``run(db, args)``."""
    s = sub.add_parser("jobs", parents=[common], help="model jobs (score, ...): list, show ID, cancel ID")
    add_jobs_arguments(s)
    s.set_defaults(run=jobs_command)
