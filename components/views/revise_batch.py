"""Batch runs and the pending-review list of the Revise tab.

A batch revises a dataset slice or a search's hits with the principles, model and settings of the
form above it; its results wait for review here (or go straight into a dataset). An interrupted
batch resumes where it stopped.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field
from typing import Iterator

import gradio as gr

from .. import revise as rv
from ..access import Identity
from ..store import Database
from ..text import clip, first_line
from .common import acting_name, as_int, chat, chatbot, escape, requires
from .revise_form import RevisionForm, RevisionRequest, accept_result, new_stop, request_stop, session_of
from ..policies import REVISION

PENDING_COLUMNS = ["revision", "dataset", "row", "side", "persona", "violations", "revision text", "model", "job"]
JOB_COLUMNS = ["job", "dataset", "persona", "status", "done", "total", "pending", "failed", "model", "accept into",
               "updated"]


@dataclass
class BatchChoice:
    """Which rows a batch takes, and where its results go."""

    rows: str = ""  # "0-99" or "3,7,9"; empty: from the first row
    query: str = ""  # or the rows a search finds
    limit: int | None = 20
    batch_size: int | None = None  # None: 32 on a GPU, 4 on CPU
    accept_straight: bool = False
    into: str = ""  # the dataset accepted pairs go to (default DATASET-revisions)


@dataclass
class BatchStart:
    job: dict
    backend: rv.Backend
    resumed: bool
    notes: list[str] = field(default_factory=list)

    def headline(self) -> str:
        head = f"{'Resumed' if self.resumed else 'Started'} job `{self.job['id']}` on **{escape(self.job['dataset'])}**"
        return head + (" (" + escape("; ".join(self.notes)) + ")" if self.notes else "")


def start_batch(db: Database, request: RevisionRequest, batch: BatchChoice, who: Identity) -> BatchStart:
    """``who``'s job for this request (an unfinished identical one is resumed); RevisionError in one line."""
    if not request.dataset:
        raise rv.RevisionError("pick a dataset first")
    ps = request.principles.resolve(db)
    settings = request.generation.settings(batch.batch_size)
    backend = request.model.backend(db, who)
    job, resumed, notes = rv.start_batch(
        db, request.dataset, ps, backend, settings, rows=(batch.rows or "").strip() or None,
        query=(batch.query or "").strip() or None, limit=as_int(batch.limit, 0) or None, side=request.side,
        accept=batch.accept_straight, into=batch.into if batch.accept_straight else None,
        persona=request.persona_provenance(db))
    return BatchStart(job, backend, resumed, notes)


def resume_batch(db: Database, job_id: str, who: Identity) -> BatchStart:
    """Resume a stored job: its model must still be in the list, unless ``who`` is an admin."""
    job = rv.get_job(db, (job_id or "").strip())
    if job is None:
        raise rv.RevisionError(f"no job {(job_id or '').strip()!r}")
    if job["status"] == "done":
        raise rv.RevisionError(f"job {job['id']} is already done")
    rv.check_listed(db, who, job["backend"])
    return BatchStart(job, rv.backend_for_job(job), True)


def run_batch(db: Database, start: BatchStart, stop: threading.Event, batch_size: int | None) -> Iterator[
        rv.JobProgress | dict]:
    """Run the job in a worker thread: its progress as it comes, then the finished job (a dict).
    A failure raises RevisionError with one line."""
    updates: queue.Queue = queue.Queue()
    outcome: dict = {}

    def work():
        try:
            outcome["job"] = rv.run_job(db, start.job["id"], start.backend, stop, updates.put, batch_size=batch_size)
        except rv.RevisionError as err:
            outcome["error"] = str(err)
        except Exception as err:  # shown on the page in one line, never as a traceback
            outcome["error"] = f"{type(err).__name__}: {first_line(err)}"
        updates.put(None)

    threading.Thread(target=work, daemon=True, name="revise-batch").start()
    while (p := updates.get()) is not None:
        yield p
    if "error" in outcome:
        raise rv.RevisionError(outcome["error"])
    yield outcome["job"]


def finished_line(head: str, job: dict) -> str:
    word = "stopped; resume it later" if job["stopped"] else "done"
    return (f"{head}: {word} · {job['done']} of {job['total']} rows have a result · {job['pending']} pending "
            f"review · {job['failed']} failed")


def pending_table(db: Database, limit: int = 200) -> tuple[list[list], list[str]]:
    rows = rv.pending(db, limit=limit)
    table = [[r["id"][:8], r["dataset"], r["row"], r["side"], (r.get("persona") or {}).get("name") or "—",
              ", ".join(r["violations"] or []) or "—",
              clip(r["revision"], 140), r["model"], (r["job_id"] or "")[:12]] for r in rows]
    return table, [r["id"] for r in rows]


def pending_count(ids: list[str]) -> str:
    return f"{len(ids):,} revisions pending review" if ids else "Nothing pending review."


def jobs_table(db: Database) -> list[list]:
    return [[j["id"], j["dataset"], (j.get("persona") or {}).get("name") or "—", j["status"], j["done"], j["total"],
             j["pending"], j["failed"],
             j["backend"].get("model"), j["accept_into"] or "(review)", str(j["updated_at"])[:19]]
            for j in rv.list_jobs(db, limit=50)]


def review_item(db: Database, rid: str | None) -> dict:
    r = rv.get_revision(db, rid) if rid else None
    if r is None:
        return {"found": False, "title": "Pick a pending revision in the table.", "chat": [], "critique": "",
                "revision": "", "result": None}
    crit = rv.Critique(r["critique"] or "", r["violations"] or [], bool(r["critique_parsed"]), False)
    return {
        "found": True,
        "title": (f"**{escape(r['dataset'])}**, row {r['row']} ({r['side']}) · model `{escape(r['model'])}` · "
                  + (f"for persona **{escape(r['persona']['name'])}** · " if r.get("persona") else "")
                  + f"{escape(crit.summary() if r['violations'] or not r['critique_parsed'] else 'no principle violated')}"),
        "chat": chat((r["prompt"] or []) + (r["original"] or [])),
        "critique": r["critique"] or "",
        "revision": r["revision"] or "",
        "result": r,
    }


@dataclass
class PendingList:
    """The components the pending-review list is drawn into (refreshed after a batch and on load)."""

    table: gr.Dataframe
    ids: gr.State
    count: gr.Markdown

    def outputs(self) -> list:
        return [self.table, self.ids, self.count]


def refreshed(db: Database) -> tuple[list[list], list[str], str]:
    table, ids = pending_table(db)
    return table, ids, pending_count(ids)


def build(db: Database, form: RevisionForm, into: gr.Textbox, who: gr.Textbox) -> tuple[PendingList, gr.Dataframe]:
    """The batch and pending-review sections; returns what the page refreshes on load."""
    with gr.Accordion("Batch: revise many rows", open=False):
        gr.Markdown("Revise a dataset slice or the rows matching a search, with the principles, model and "
                    "settings above. Results wait in the review list below (or go straight into the "
                    "dataset). An interrupted batch resumes where it stopped: start the same batch again, "
                    "or pick it and press Resume.")
        with gr.Row():
            rows = gr.Textbox(label="Rows (e.g. 0-99 or 3,7,9; empty = from the first)", scale=2,
                              elem_id="revise-batch-rows")
            query = gr.Textbox(label="…or the rows matching a search", scale=2, elem_id="revise-batch-query")
            limit = gr.Number(label="Limit", value=20, precision=0, minimum=1, scale=1, elem_id="revise-batch-limit")
            size = gr.Number(label="Batch size (0 = auto: 32 on GPU, 4 on CPU)", value=0, precision=0,
                             minimum=0, scale=1, elem_id="revise-batch-size")
            straight = gr.Checkbox(label="Accept straight into the dataset", value=False, scale=1)
        with gr.Row():
            go = gr.Button("Start batch", variant="primary", elem_id="revise-batch-go")
            job_box = gr.Textbox(label="Job to resume", placeholder="job id from the table", scale=1,
                                 elem_id="revise-batch-job")
            resume = gr.Button("Resume job", elem_id="revise-batch-resume")
            stop = gr.Button("Stop batch", variant="stop", elem_id="revise-batch-stop")
        status = gr.Markdown(elem_id="revise-batch-status")
        jobs = gr.Dataframe(headers=JOB_COLUMNS, value=jobs_table(db), interactive=False, elem_id="revise-jobs")

    with gr.Accordion("Pending review", open=False):
        with gr.Row():
            refresh = gr.Button("↻ Refresh list", size="sm", scale=0, elem_id="revise-pending-refresh")
            count = gr.Markdown()
        pending = PendingList(gr.Dataframe(headers=PENDING_COLUMNS, interactive=False, wrap=True,
                                           elem_id="revise-pending"), gr.State([]), count)
        title = gr.Markdown()
        with gr.Row():
            convo = chatbot(label="Conversation", height=320, scale=3)
            with gr.Column(scale=2):
                critique = gr.Textbox(label="Critique", lines=6, interactive=False)
                revision = gr.Textbox(label="Revision (editable)", lines=6, interactive=True,
                                      elem_id="revise-pending-revision")
        with gr.Row():
            accept = gr.Button("Accept", variant="primary", elem_id="revise-pending-accept")
            reject = gr.Button("Reject", elem_id="revise-pending-reject")
        result = gr.Markdown()
        current = gr.State(None)

    def follow(start: BatchStart, request: gr.Request, progress: gr.Progress, size_value):
        stop_ev = new_stop(session_of(request), "batch")
        head = start.headline()
        try:
            for p in run_batch(db, start, stop_ev, as_int(size_value, 0) or None):
                if isinstance(p, dict):
                    yield finished_line(head, p), jobs_table(db)
                    return
                progress((p.done, p.total), desc=f"{p.done} of {p.total} rows")
                yield f"{head}: {p.done} of {p.total} rows · {escape(p.message)}", gr.update()
        except rv.RevisionError as err:
            yield f"⚠️ {head}: {escape(err)}", jobs_table(db)

    batch_inputs = form.components() | {rows, query, limit, size, straight, into}

    @requires(REVISION.batch)
    def on_start(values: dict, request: gr.Request, progress=gr.Progress(), *, who):
        choice = BatchChoice(values[rows] or "", values[query] or "", values[limit], values[size],
                             bool(values[straight]), values[into] or "")
        try:
            start = start_batch(db, form.read(values), choice, who)
        except rv.RevisionError as err:
            yield f"⚠️ {escape(err)}", gr.update()
            return
        yield from follow(start, request, progress, values[size])

    @requires(REVISION.batch)
    def on_resume(job_id, size_value, request: gr.Request, progress=gr.Progress(), *, who):
        if not (job_id or "").strip():
            yield "⚠️ Pick a job in the table (or type its id) to resume it.", gr.update()
            return
        try:
            start = resume_batch(db, job_id, who)
        except rv.RevisionError as err:
            yield f"⚠️ {escape(err)}", gr.update()
            return
        yield from follow(start, request, progress, size_value)

    @requires(REVISION.stop)
    def on_stop(request: gr.Request):
        request_stop(session_of(request), "batch")

    started = go.click(on_start, batch_inputs, [status, jobs], concurrency_limit=4, concurrency_id="revise-generate")
    resumed = resume.click(on_resume, [job_box, size], [status, jobs], concurrency_limit=4,
                           concurrency_id="revise-generate")
    stop.click(on_stop, None, None, concurrency_limit=None)

    @requires(REVISION.read)
    def pick_job(evt: gr.SelectData):
        return str((evt.row_value or [""])[0])

    jobs.select(pick_job, None, job_box)

    @requires(REVISION.read)
    def on_refresh():
        return refreshed(db)

    refresh.click(on_refresh, None, pending.outputs())
    started.then(on_refresh, None, pending.outputs())
    resumed.then(on_refresh, None, pending.outputs())

    @requires(REVISION.read)
    def pick_pending(ids, evt: gr.SelectData):
        i = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        rid = ids[i] if ids and i is not None and 0 <= i < len(ids) else None
        item = review_item(db, rid)
        return item["title"], item["chat"], item["critique"], item["revision"], item["result"], ""

    pending.table.select(pick_pending, pending.ids, [title, convo, critique, revision, current, result])

    @requires(REVISION.accept)
    def on_accept(res, text, name, *, who):
        if not res:
            return "⚠️ Pick a pending revision first.", res, *refreshed(db)
        return accept_result(db, res, text, acting_name(name, who), None, stored=True), None, *refreshed(db)

    accept.click(on_accept, [current, revision, who], [result, current, *pending.outputs()])

    @requires(REVISION.reject)
    def on_reject(res, name):
        if not res:
            return "⚠️ Pick a pending revision first.", res, *refreshed(db)
        rv.reject(db, res["id"], name)
        return f"Rejected revision {res['id'][:8]}.", None, *refreshed(db)

    reject.click(on_reject, [current, who], [result, current, *pending.outputs()])
    return pending, jobs
