"""Batch jobs: many conversations revised a batch per forward pass, resumable, results pending review
(or accepted straight into a dataset).

A job is keyed by its request (dataset, side, rows, principles, backend, settings, target): starting
the same request again resumes the unfinished job, and only rows without a result are done.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, replace
from typing import Callable, Iterable

from ..store import Database, DatabaseError
from .backends import Backend, Settings, make_backend
from .errors import RevisionError
from .library import Principle
from .prompts import conversation, critique_messages, fit_context, parse_critique, revision_messages
from .results import accept_revisions, add_revisions, pair_of, target_name
from .revision import build_result
from .. import catalogue


def parse_rows(text: str | Iterable[int] | None) -> list[int] | None:
    """``"0,1,5-7"`` -> ``[0, 1, 5, 6, 7]``; None or empty -> None.

    >>> parse_rows("3, 0-2")
    [3, 0, 1, 2]
    """
    if text is None:
        return None
    if not isinstance(text, str):
        return [int(r) for r in text]
    out: list[int] = []
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m:
            raise RevisionError(f"rows: expected numbers or ranges such as 0,1,5-9, got {part!r}")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if hi < lo or hi - lo > 1_000_000:
            raise RevisionError(f"rows: bad range {part!r}")
        out.extend(range(lo, hi + 1))
    return list(dict.fromkeys(out)) or None


def select_rows(db: Database, dataset: str, rows=None, query: str | None = None, limit: int | None = None,
                notes: list[str] | None = None) -> list[int]:
    """The rows a batch revises: given rows (those that exist), a search's hits in rank order, or the
    dataset from its first row -- at most ``limit``. How a query was answered goes to ``notes``."""
    info = catalogue.dataset_of(db, dataset, RevisionError, ("pairs", "conversations"), "nothing to revise")
    if limit is not None and limit < 1:
        raise RevisionError("limit must be at least 1")
    rows = parse_rows(rows)
    if rows is not None and query:
        raise RevisionError("give rows or a query, not both")
    if query and query.strip():
        found = search_rows(db, dataset, query.strip(), limit or 1000, notes if notes is not None else [])
    elif rows is not None:
        present = set(catalogue.existing_rows(db, dataset, rows))
        found = [r for r in rows if r in present]
    else:
        found = catalogue.first_rows(db, dataset, limit or info.row_count)
    found = found[:limit] if limit else found
    if not found:
        raise RevisionError(f"no rows of {dataset} to revise" + (f" match {query!r}" if query else ""))
    return found


def search_rows(db: Database, dataset: str, query: str, limit: int, notes: list[str]) -> list[int]:
    """Rows of ``dataset`` that ``query`` finds (``search.find_rows``: BM25-ranked when the dataset has
    a ready index, else a text match in source order); how they were found goes to ``notes``."""
    from ..search import SearchError, find_rows

    try:
        found = find_rows(db, dataset, query, limit)
    except SearchError as err:
        raise RevisionError(f"search {query!r}: {err}") from None
    notes.append(found.note or f"{len(found.rows)} rows ranked by the search index (BM25)")
    return found.rows


# -- the revision_jobs table ------------------------------------------------------------------------


def create_job(db: Database, job: dict) -> dict:
    db.write(lambda cur: cur.execute(
        """INSERT INTO revision_jobs (id, key, dataset, side, selection, rows, principles, backend, settings,
                                      accept_into, persona, status, message, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'running', NULL, now(), now())""",
        [job["id"], job["key"], job["dataset"], job["side"], json.dumps(job.get("selection") or {}),
         list(job["rows"]), json.dumps(job["principles"]), json.dumps(job["backend"]),
         json.dumps(job["settings"]), job.get("accept_into"),
         json.dumps(job["persona"]) if job.get("persona") else None],
    ))
    return get_job(db, job["id"])


def get_job(db: Database, job_id: str) -> dict | None:
    found = list_jobs(db, job_id=job_id)
    return found[0] if found else None


def list_jobs(db: Database, job_id: str | None = None, key: str | None = None, unfinished: bool = False,
         limit: int = 100) -> list[dict]:
    """Jobs, newest first, each with its counts of results: done, pending review, failed."""
    where, params = ["TRUE"], []
    if job_id:
        where.append("j.id = ?"), params.append(job_id)
    if key:
        where.append("j.key = ?"), params.append(key)
    if unfinished:
        where.append("j.status IN ('running', 'interrupted', 'failed')")
    out = db.dicts(
        f"""SELECT j.*,
                   (SELECT count(*) FROM revisions r WHERE r.job_id = j.id) AS done,
                   (SELECT count(*) FROM revisions r WHERE r.job_id = j.id AND r.status = 'pending') AS pending,
                   (SELECT count(*) FROM revisions r WHERE r.job_id = j.id AND r.status = 'failed') AS failed
            FROM revision_jobs j WHERE {' AND '.join(where)}
            ORDER BY j.created_at DESC LIMIT ?""",
        params + [limit],
    )
    for j in out:
        for k in ("selection", "principles", "backend", "settings", "persona"):
            if isinstance(j.get(k), str):
                j[k] = json.loads(j[k])
        j["total"] = len(j["rows"])
    return out


def set_job_status(db: Database, job_id: str, status: str, message: str | None = None) -> None:
    db.write(lambda cur: cur.execute(
        "UPDATE revision_jobs SET status = ?, message = ?, updated_at = now() WHERE id = ?", [status, message, job_id]))


def done_rows(db: Database, job_id: str) -> set[int]:
    """Rows of the job that have a result (failed ones excepted: a resumed job tries them again)."""
    return {r[0] for r in db.rows("SELECT row FROM revisions WHERE job_id = ? AND status <> 'failed'", [job_id])}


# -- starting and running ----------------------------------------------------------------------------


def job_key(dataset: str, side: str, rows: list[int], ps: list[Principle], backend: Backend, settings: Settings,
            accept_into: str | None, persona: dict | None = None) -> str:
    s = settings.as_dict()
    s.pop("batch_size", None)
    what = {"dataset": dataset, "side": side, "rows": rows, "principles": [p.as_dict() for p in ps],
            "backend": [backend.kind, backend.model, backend.endpoint], "settings": s, "into": accept_into}
    if persona:
        what["persona"] = persona
    return hashlib.sha1(json.dumps(what, sort_keys=True).encode()).hexdigest()


def start_job(db: Database, dataset: str, rows: list[int], ps: list[Principle], backend: Backend,
              settings: Settings, side: str = "chosen", accept_into: str | None = None,
              selection: dict | None = None, persona: dict | None = None) -> tuple[dict, bool]:
    """The job for this request: an unfinished one with the same request is resumed, else a new one.
    ``accept_into``: accept every result straight into that dataset. ``persona`` ({name, version,
    system_message}): every row is revised for that person (one job per persona). Returns (job, resumed)."""
    settings = settings.checked()
    if accept_into is not None:
        accept_into = target_name(accept_into, dataset)
    key = job_key(dataset, side, rows, ps, backend, settings, accept_into, persona)
    old = list_jobs(db, key=key, unfinished=True, limit=1)
    if old:
        return old[0], True
    job = {"id": uuid.uuid4().hex[:12], "key": key, "dataset": dataset, "side": side, "selection": selection or {},
           "rows": rows, "principles": [p.as_dict() | {"template_id": p.id} for p in ps],
           "backend": {"kind": backend.kind, "model": backend.model, "endpoint": backend.endpoint},
           "settings": settings.as_dict(), "accept_into": accept_into, "persona": persona}
    return create_job(db, job), False


def job_principles(job: dict) -> list[Principle]:
    return [Principle(id=p["id"], group=p.get("group", ""), title=p["title"], text=p["text"], version=p.get("version", 1),
                      values=tuple((p.get("values") or {}).items())) for p in job["principles"]]


def job_settings(job: dict) -> Settings:
    return Settings(**{k: v for k, v in job["settings"].items() if k in Settings.__dataclass_fields__})


def backend_for_job(job: dict, device: str | None = None) -> Backend:
    b = job["backend"]
    return make_backend(b["model"], b.get("endpoint"), device)


@dataclass
class JobProgress:
    job_id: str
    done: int
    total: int
    message: str


def start_batch(db: Database, dataset: str, principles: list[Principle], backend: Backend, settings: Settings, *,
                rows: str | None = None, query: str | None = None, limit: int | None = None, side: str = "chosen",
                accept: bool = False, into: str | None = None, persona: dict | None = None
                ) -> tuple[dict, bool, list[str]]:
    """The one way a batch begins, for the page and the command line alike: the rows a range, a
    search or a limit picks (``select_rows``), where accepted pairs go (``into``, with ``accept``:
    NAME-revisions by default) and the job for them (``start_job``: an unfinished identical one is
    resumed). Returns (job, resumed, notes about the selection)."""
    if into and not accept:
        raise RevisionError("--into names the dataset accepted pairs go to: add --accept (without it, results "
                            "wait for review in the Revise tab)")
    notes: list[str] = []
    picked = select_rows(db, dataset, rows or None, query or None, limit or None, notes)
    target = target_name(into, dataset) if accept else None
    job, resumed = start_job(db, dataset, picked, principles, backend, settings, side, target,
                             {"rows": rows or None, "query": query or None, "limit": limit}, persona=persona)
    return job, resumed, notes


def run_job(db: Database, job_id: str, backend: Backend | None = None, stop: threading.Event | None = None,
            progress: Callable[[JobProgress], None] | None = None, batch_size: int | None = None) -> dict:
    """Revise the job's rows that have no result yet, a batch per forward pass, storing each batch as
    it finishes. Stopping (the event, Ctrl-C, a crash) leaves the job resumable: run it again and
    only the remaining rows are done."""
    job = get_job(db, job_id)
    if job is None:
        raise RevisionError(f"no revision job {job_id!r}")
    backend = backend or backend_for_job(job)
    settings = job_settings(job)
    if batch_size:
        settings = replace(settings, batch_size=batch_size)
    ps = job_principles(job)
    stop = stop or threading.Event()
    finished = done_rows(db, job_id)
    todo = [r for r in job["rows"] if r not in finished]
    total = len(job["rows"])
    done = total - len(todo)
    size = backend.batch_size(settings)
    report = progress or (lambda p: None)
    report(JobProgress(job_id, done, total, f"{done} of {total} done; {len(todo)} to go, {size} per batch"))
    set_job_status(db, job_id, "running")
    status, message = "interrupted", None
    try:
        for start in range(0, len(todo), size):
            if stop.is_set():
                break
            chunk = todo[start:start + size]
            stored = _run_chunk(db, job, chunk, ps, backend, settings, stop, seed=settings.seed + job["rows"].index(chunk[0]))
            if stored is None:
                break  # stopped mid-batch: nothing of it stored, a resume redoes it
            done += len(chunk)
            report(JobProgress(job_id, done, total, f"rows {chunk[0]}..{chunk[-1]}: {stored}"))
        else:
            status = "done"
    except RevisionError as err:
        status, message = "failed", str(err)
        raise
    finally:
        set_job_status(db, job_id, status, message)
    out = get_job(db, job_id)
    out["stopped"] = status == "interrupted"
    return out


def _run_chunk(db, job, rows, ps, backend, settings, stop, seed) -> str | None:
    started = time.perf_counter()
    persona = job.get("persona")
    sources, results = [], []
    for row in rows:
        try:
            sources.append(conversation(db, job["dataset"], row, job["side"]))
        except RevisionError as err:
            results.append(_failed(job, row, str(err), backend, settings, ps))
    prompts, notes = [], []
    live = []
    for src in sources:
        try:
            p, n = fit_context(src.prompt, src.final, ps, backend.count, backend.context_length(settings),
                               settings.max_new_tokens, persona)
        except RevisionError as err:
            results.append(_failed(job, src.row, str(err), backend, settings, ps))
            continue
        live.append(src), prompts.append(p), notes.append(n)
    run_settings = replace(settings, seed=seed)
    crits = backend.generate_batch([critique_messages(p, s.final, ps, persona) for p, s in zip(prompts, live)],
                                   run_settings, stop)
    if stop.is_set():
        return None
    revs = backend.generate_batch([revision_messages(p, s.final, ps, c.text, persona)
                                   for p, s, c in zip(prompts, live, crits)], run_settings, stop)
    if stop.is_set():
        return None
    each = (time.perf_counter() - started) / max(1, len(live))
    for src, p, n, c, r in zip(live, prompts, notes, crits, revs):
        res = build_result(src, ps, backend, settings, parse_critique(c.text, [x.id for x in ps]), r.text.strip(),
                           c, r, each, n + ([f"batch of {len(live)}"] if len(live) > 1 else []), job_id=job["id"],
                           seed=seed, persona=persona)
        results.append(res)
    results.sort(key=lambda r: rows.index(r["row"]))
    into = job.get("accept_into")
    good = [r for r in results if r["status"] == "pending"]
    bad = [r for r in results if r["status"] != "pending"]
    try:
        if into and good:
            accept_revisions(db, into, [
                {"revision_id": r["id"], "final_revision": r["revision"], "edited": False, "reviewed_by": None,
                 "new_revision": r, "pair": pair_of(r, r["revision"], False, None)} for r in good])
            if bad:
                add_revisions(db, bad)
        else:
            add_revisions(db, results)
    except DatabaseError as err:  # a read-only database
        raise RevisionError(str(err)) from None
    word = "accepted" if into else "pending review"
    return f"{len(good)} {word}" + (f", {len(bad)} failed" if bad else "")


def _failed(job, row, error, backend, settings, ps) -> dict:
    return {"id": uuid.uuid4().hex, "job_id": job["id"], "dataset": job["dataset"], "row": row, "side": job["side"],
            "status": "failed", "error": error, "principles": [p.as_dict() for p in ps], "model": backend.model,
            "backend": backend.kind, "endpoint": backend.endpoint, "device": backend.device, "dtype": backend.dtype,
            "settings": settings.as_dict(), "seed": settings.seed, "tokens": None, "notes": [],
            "persona": job.get("persona")}
