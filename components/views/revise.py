"""Revise: critique and rewrite a conversation's final assistant turn against chosen principles.

The critique and the revision stream into the page; Stop ends the generation; the revision can be
edited before it is accepted as a pair (chosen = revision, rejected = original) of NAME-revisions.
Below: batch runs with their pending-review list, and the principle editor.
Deep link: ``?tab=revise&dataset=NAME&row=N`` (``&side=rejected`` for the rejected side of a pair).
"""

from __future__ import annotations

import os
import queue
import threading
import time

import gradio as gr

from .. import revise as rv
from ..store import Database
from .common import Studio, as_int, chat, chatbot, dataset_choices, deep_link, escape, query_params

TAB_ID = "revise"
PENDING_COLUMNS = ["revision", "dataset", "row", "side", "violations", "revision text", "model", "job"]
JOB_COLUMNS = ["job", "dataset", "status", "done", "total", "pending", "failed", "model", "accept into", "updated"]
HISTORY_COLUMNS = ["at", "principle", "version", "action", "author", "title", "text"]
DEFAULT_MODEL = os.environ.get("STUDIO_REVISE_MODEL", "")
STREAM_INTERVAL = 0.05  # seconds between page updates while text streams in
CSS = """
#revise-principles { max-height: 430px; overflow-y: auto; }
#revise-status { min-height: 2.5em; }
"""

_stops: dict[tuple[str, str], threading.Event] = {}
_stops_lock = threading.Lock()


def new_stop(session: str, what: str) -> threading.Event:
    """A fresh stop event for this browser session's ``what`` (revise | batch)."""
    ev = threading.Event()
    with _stops_lock:
        _stops[(session, what)] = ev
    return ev


def request_stop(session: str, what: str) -> bool:
    with _stops_lock:
        ev = _stops.get((session, what))
    if ev is None:
        return False
    ev.set()
    return True


def _session(request: gr.Request | None) -> str:
    return getattr(request, "session_hash", None) or "cli"


# -- plain functions (what the handlers call; tests call them too) -------------------------------


def revisable_datasets(db: Database) -> list[str]:
    return dataset_choices(db, ("pairs", "conversations"))


def principle_choices(db: Database) -> list[tuple[str, str]]:
    return [(f"{p.group} · {p.title}" + (" (template)" if p.template else ""), p.id) for p in rv.principles(db)]


def default_principles(db: Database) -> list[str]:
    return [p.id for p in rv.principles(db) if p.default]


def load_conversation(db: Database, name: str | None, row, side: str) -> tuple[list[dict], str]:
    """The conversation (for the chat view) and a line about it, or an empty chat and the problem."""
    if not name:
        return [], "Pick a dataset and a row."
    try:
        src = rv.conversation(db, name, as_int(row), side or "chosen")
    except rv.RevisionError as err:
        return [], f"⚠️ {escape(err)}"
    turns = len(src.prompt) + 1
    line = (f"**{escape(name)}**, row {src.row}, {src.side} side · {turns} turns · the last assistant turn "
            f"({len(src.final['content']):,} characters) is the one critiqued and revised · "
            f"[link]({deep_link(name, src.row, TAB_ID)}{'&side=rejected' if src.side == 'rejected' else ''})")
    return chat(src.prompt + [src.final]), line


def template_values(avoid: str | None, steer: str | None, other: str | None = None) -> dict:
    """Slot values for templates: the pink elephant's two boxes, plus ``name=value; ...`` for others."""
    values = {}
    for part in (other or "").split(";"):
        k, sep, v = part.partition("=")
        if sep and k.strip():
            values[k.strip()] = v.strip()
    if (avoid or "").strip():
        values["avoid"] = avoid.strip()
    if (steer or "").strip():
        values["steer"] = steer.strip()
    return values


def make_settings(max_new, temperature, top_p, seed, context=None, batch_size=None) -> rv.Settings:
    return rv.Settings(max_new_tokens=as_int(max_new, 256), temperature=float(temperature or 0),
                       top_p=float(top_p or 1.0), seed=as_int(seed, 0),
                       context_tokens=as_int(context, 0) or None, batch_size=as_int(batch_size, 0) or None).checked()


def backend_from(kind: str, model: str | None, endpoint: str | None) -> rv.Backend:
    if kind == "endpoint":
        return rv.EndpointBackend(endpoint or "", model or "")
    return rv.local_backend(model or "")


def device_line(backend: rv.Backend | None) -> str:
    if backend is None:
        return ("Model not loaded yet. A local model runs on the GPU (CUDA, bfloat16) when one is present, "
                "else on the CPU (float32); it is loaded once and kept.")
    if isinstance(backend, rv.EndpointBackend):
        return f"Endpoint **{escape(backend.endpoint)}**, model `{escape(backend.model)}` (device and dtype are the server's)."
    return (f"Model `{escape(backend.model)}` · device **{backend.device}** · dtype **{backend.dtype}** · "
            f"{backend.parameters / 1e6:,.1f}M parameters · context {backend.max_context or '?'} tokens · "
            f"loaded in {backend.load_seconds:.1f} s")


def status_line(u: rv.Update, started: float) -> str:
    secs = time.perf_counter() - started
    rate = f" · {u.tokens / secs:,.1f} tokens/s" if u.tokens and secs > 0 else ""
    phase = {"critique": "✍️ Writing the critique…", "revision": "✍️ Writing the revision…",
             "done": "✅ Done", "stopped": "⏹️ Stopped"}[u.phase]
    text = f"{phase} · {u.tokens:,} tokens · {secs:.1f} s{rate}"
    if u.result:
        r = u.result
        crit = rv.Critique(r["critique"], r["violations"], r["critique_parsed"], not r["violations"] and r["critique_parsed"])
        text += f"<br>Critique: {escape(crit.summary())}"
        if r["status"] == "pending":
            text += "<br>Edit the revision if you like, then **Accept** to store it as a pair."
        else:
            text += f"<br>⚠️ {escape(r['error'])}"
    for n in u.notes:
        text += f"<br>ℹ️ {escape(n)}"
    return text


def accept_result(db: Database, result: dict | None, text: str | None, who: str | None, into: str | None,
                  stored: bool = False) -> str:
    if not result:
        return "⚠️ Nothing to accept: run a revision first."
    try:
        name, row = rv.accept(db, result, text, who, into, stored=stored)
    except rv.RevisionError as err:
        return f"⚠️ {escape(err)}"
    edited = " (edited)" if (text or "").strip() != (result.get("revision") or "").strip() else ""
    return (f"✅ Accepted{edited} as row {row} of **{escape(name)}** · "
            f"[open it]({deep_link(name, row)})")


def pending_table(db: Database, limit: int = 200) -> tuple[list[list], list[str]]:
    rows = rv.pending(db, limit=limit)
    table = [[r["id"][:8], r["dataset"], r["row"], r["side"], ", ".join(r["violations"] or []) or "—",
              _clip(r["revision"]), r["model"], (r["job_id"] or "")[:12]] for r in rows]
    return table, [r["id"] for r in rows]


def jobs_table(db: Database) -> list[list]:
    return [[j["id"], j["dataset"], j["status"], j["done"], j["total"], j["pending"], j["failed"],
             j["backend"].get("model"), j["accept_into"] or "(review)", str(j["updated_at"])[:19]]
            for j in db.revision_jobs(limit=50)]


def history_table(db: Database, pid: str | None = None) -> list[list]:
    return [[str(h["at"])[:19], h["id"], h["version"], h["action"], h["author"] or "", h["title"], _clip(h["text"], 120)]
            for h in db.principle_history(pid or None, limit=100)]


def _clip(text: str | None, n: int = 140) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= n else text[: n - 1] + "…"


def review_item(db: Database, rid: str | None) -> dict:
    r = db.revision(rid) if rid else None
    if r is None:
        return {"found": False, "title": "Pick a pending revision in the table.", "chat": [], "critique": "",
                "revision": "", "result": None}
    crit = rv.Critique(r["critique"] or "", r["violations"] or [], bool(r["critique_parsed"]), False)
    return {
        "found": True,
        "title": (f"**{escape(r['dataset'])}**, row {r['row']} ({r['side']}) · model `{escape(r['model'])}` · "
                  f"{escape(crit.summary() if r['violations'] or not r['critique_parsed'] else 'no principle violated')}"),
        "chat": chat((r["prompt"] or []) + (r["original"] or [])),
        "critique": r["critique"] or "",
        "revision": r["revision"] or "",
        "result": r,
    }


# -- the view -------------------------------------------------------------------------------------


def build(studio: Studio) -> None:
    db = studio.db
    with gr.Tab("Revise", id=TAB_ID):
        gr.Markdown(
            "A model **critiques** the final assistant turn of a conversation against the principles you "
            "choose, then **rewrites** it. Accepted rewrites become preference pairs (chosen = revision, "
            "rejected = original) in `DATASET-revisions`, with their provenance."
        )
        with gr.Row():
            dataset = gr.Dropdown(label="Dataset", choices=revisable_datasets(db), value=None, scale=3,
                                  elem_id="revise-dataset")
            row = gr.Number(label="Row", value=0, precision=0, minimum=0, scale=1, elem_id="revise-row")
            side = gr.Radio(["chosen", "rejected"], value="chosen", label="Side of a pair", scale=1,
                            elem_id="revise-side")
            load = gr.Button("Open row", scale=0, elem_id="revise-open")
        about = gr.Markdown(elem_id="revise-about")
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                convo = chatbot(label="Conversation (its last assistant turn is revised)", height=420,
                                   elem_id="revise-chat")
            with gr.Column(scale=2):
                picks = gr.CheckboxGroup(label="Principles", choices=principle_choices(db),
                                         value=default_principles(db), elem_id="revise-principles")
                with gr.Row():
                    avoid = gr.Textbox(label="Pink elephant: avoid topic", placeholder="e.g. cryptocurrency",
                                       elem_id="revise-avoid")
                    steer = gr.Textbox(label="…and steer to topic", placeholder="e.g. index funds",
                                       elem_id="revise-steer")
        with gr.Accordion("Model and settings", open=True):
            with gr.Row():
                kind = gr.Radio(["local", "endpoint"], value="local", label="Backend", scale=1, elem_id="revise-kind",
                                info="local: transformers in this process · endpoint: OpenAI-compatible server")
                model = gr.Textbox(label="Model (Hub id or local folder; for an endpoint, the served name)",
                                   value=DEFAULT_MODEL, placeholder="Qwen/Qwen2.5-0.5B-Instruct", scale=3,
                                   elem_id="revise-model")
                endpoint = gr.Textbox(label="Endpoint URL", placeholder="http://localhost:8000/v1", scale=2,
                                      visible=False, elem_id="revise-endpoint")
                load_model = gr.Button("Load model", scale=0, elem_id="revise-load-model")
            with gr.Row():
                max_new = gr.Slider(8, 4096, value=256, step=8, label="Max new tokens", elem_id="revise-max-new")
                temperature = gr.Slider(0, 2, value=0.7, step=0.05, label="Temperature (0 = greedy)",
                                        elem_id="revise-temperature")
                top_p = gr.Slider(0.05, 1, value=0.95, step=0.05, label="Top-p", elem_id="revise-top-p")
                seed = gr.Number(label="Seed", value=0, precision=0, elem_id="revise-seed")
                context = gr.Number(label="Context limit (tokens, 0 = the model's)", value=0, precision=0,
                                    elem_id="revise-context")
            device = gr.Markdown(device_line(None), elem_id="revise-device")
        with gr.Row():
            go = gr.Button("Critique and revise", variant="primary", elem_id="revise-go")
            stop = gr.Button("Stop", variant="stop", elem_id="revise-stop")
        status = gr.Markdown(elem_id="revise-status")
        with gr.Row():
            critique = gr.Textbox(label="Critique (streams in)", lines=10, max_lines=20, interactive=False,
                                  elem_id="revise-critique")
            revision = gr.Textbox(label="Revision (streams in; edit it before accepting)", lines=10, max_lines=20,
                                  interactive=True, elem_id="revise-revision")
        with gr.Row():
            who = gr.Textbox(label="Accepted by", placeholder="your name", scale=1, elem_id="revise-who")
            into = gr.Textbox(label="Into dataset", placeholder="DATASET-revisions", scale=2, elem_id="revise-into")
            accept_btn = gr.Button("Accept as a pair", variant="primary", scale=0, elem_id="revise-accept")
        accepted = gr.Markdown(elem_id="revise-accepted")
        result = gr.State(None)

        with gr.Accordion("Batch: revise many rows", open=False):
            gr.Markdown("Revise a dataset slice or the rows matching a search, with the principles, model and "
                        "settings above. Results wait in the review list below (or go straight into the "
                        "dataset). An interrupted batch resumes where it stopped: start the same batch again, "
                        "or pick it and press Resume.")
            with gr.Row():
                b_rows = gr.Textbox(label="Rows (e.g. 0-99 or 3,7,9; empty = from the first)", scale=2,
                                    elem_id="revise-batch-rows")
                b_query = gr.Textbox(label="…or the rows matching a search", scale=2, elem_id="revise-batch-query")
                b_limit = gr.Number(label="Limit", value=20, precision=0, minimum=1, scale=1,
                                    elem_id="revise-batch-limit")
                b_size = gr.Number(label="Batch size (0 = auto: 32 on GPU, 4 on CPU)", value=0, precision=0,
                                   minimum=0, scale=1, elem_id="revise-batch-size")
                b_accept = gr.Checkbox(label="Accept straight into the dataset", value=False, scale=1)
            with gr.Row():
                b_go = gr.Button("Start batch", variant="primary", elem_id="revise-batch-go")
                b_job = gr.Textbox(label="Job to resume", placeholder="job id from the table", scale=1,
                                   elem_id="revise-batch-job")
                b_resume = gr.Button("Resume job", elem_id="revise-batch-resume")
                b_stop = gr.Button("Stop batch", variant="stop", elem_id="revise-batch-stop")
            b_status = gr.Markdown(elem_id="revise-batch-status")
            jobs = gr.Dataframe(headers=JOB_COLUMNS, value=jobs_table(db), interactive=False,
                                elem_id="revise-jobs")

        with gr.Accordion("Pending review", open=False):
            with gr.Row():
                p_refresh = gr.Button("↻ Refresh list", size="sm", scale=0, elem_id="revise-pending-refresh")
                p_count = gr.Markdown()
            p_table = gr.Dataframe(headers=PENDING_COLUMNS, interactive=False, wrap=True, elem_id="revise-pending")
            p_ids = gr.State([])
            p_title = gr.Markdown()
            with gr.Row():
                p_chat = chatbot(label="Conversation", height=320, scale=3)
                with gr.Column(scale=2):
                    p_critique = gr.Textbox(label="Critique", lines=6, interactive=False)
                    p_revision = gr.Textbox(label="Revision (editable)", lines=6, interactive=True,
                                            elem_id="revise-pending-revision")
            with gr.Row():
                p_accept = gr.Button("Accept", variant="primary", elem_id="revise-pending-accept")
                p_reject = gr.Button("Reject", elem_id="revise-pending-reject")
            p_result = gr.Markdown()
            p_current = gr.State(None)

        with gr.Accordion("Principle editor", open=False):
            gr.Markdown("Add or change principles. Every version is kept (history below); a principle with "
                        "`{slots}` in its text is a template whose slots are filled when it is used.")
            with gr.Row():
                e_pick = gr.Dropdown(label="Principle", choices=["(new)"] + [c[1] for c in principle_choices(db)],
                                     value="(new)", scale=2, elem_id="revise-edit-pick")
                e_id = gr.Textbox(label="Id", placeholder="lower-case-with-dashes", scale=2, elem_id="revise-edit-id")
                e_group = gr.Textbox(label="Group", placeholder="harmlessness, honesty, …", scale=2,
                                     elem_id="revise-edit-group")
                e_title = gr.Textbox(label="Title", scale=3, elem_id="revise-edit-title")
            e_text = gr.Textbox(label="Text the model reads", lines=3, elem_id="revise-edit-text")
            with gr.Row():
                e_default = gr.Checkbox(label="Used by default", value=False)
                e_save = gr.Button("Save principle", variant="primary", elem_id="revise-edit-save")
                e_delete = gr.Button("Delete", variant="stop")
            e_result = gr.Markdown(elem_id="revise-edit-result")
            e_history = gr.Dataframe(headers=HISTORY_COLUMNS, value=history_table(db), interactive=False, wrap=True,
                                     column_widths=["13%", "15%", "7%", "8%", "8%", "17%", "32%"])

        # -- handlers ---------------------------------------------------------------------------

        def open_row(name, r, sd):
            messages, line = load_conversation(db, name, r, sd)
            return messages, line, name and rv.default_into(name) or ""

        load.click(open_row, [dataset, row, side], [convo, about, into])
        row.submit(open_row, [dataset, row, side], [convo, about, into])
        dataset.input(lambda n, sd: open_row(n, 0, sd) + (0,), [dataset, side], [convo, about, into, row])
        side.input(open_row, [dataset, row, side], [convo, about, into])
        kind.change(lambda k: gr.update(visible=k == "endpoint"), kind, endpoint)

        def do_load_model(k, m, ep):
            try:
                b = backend_from(k, m, ep)
            except rv.RevisionError as err:
                return f"⚠️ {escape(err)}"
            return device_line(b)

        load_model.click(do_load_model, [kind, model, endpoint], device)

        def run(name, r, sd, ids, av, st, k, m, ep, ctx, mx, temp, tp, sd_seed, request: gr.Request):
            stop_ev = new_stop(_session(request), "revise")
            started = time.perf_counter()
            try:
                source = rv.conversation(db, name, as_int(r), sd or "chosen") if name else None
                if source is None:
                    raise rv.RevisionError("pick a dataset and a row first")
                ps = rv.resolve_principles(db, ids or [], template_values(av, st))
                settings = make_settings(mx, temp, tp, sd_seed, ctx)
                if k != "endpoint" and (m or "").strip() and not _is_loaded(m):
                    yield "⏳ Loading the model (once; it stays loaded)…", "", "", None, gr.update()
                backend = backend_from(k, m, ep)
            except rv.RevisionError as err:
                yield f"⚠️ {escape(err)}", "", "", None, gr.update()
                return
            started = time.perf_counter()  # generation time, not model loading
            last_push = 0.0
            u = None
            try:
                for u in rv.revise_stream(source, ps, backend, settings, stop_ev):
                    now = time.perf_counter()
                    if u.result is None and now - last_push < STREAM_INTERVAL:
                        continue
                    last_push = now
                    yield (status_line(u, started), u.critique, u.revision, u.result, device_line(backend))
            except rv.RevisionError as err:
                yield (f"⚠️ {escape(err)}", u.critique if u else "", u.revision if u else "", None,
                       device_line(backend))

        go.click(run, [dataset, row, side, picks, avoid, steer, kind, model, endpoint, context, max_new, temperature,
                       top_p, seed], [status, critique, revision, result, device],
                 concurrency_limit=4, concurrency_id="revise-generate")

        def do_stop(request: gr.Request):
            request_stop(_session(request), "revise")

        stop.click(do_stop, None, None, concurrency_limit=None)

        def do_accept(res, text, name, target):
            msg = accept_result(db, res, text, name, target)
            return msg, (None if msg.startswith("✅") else res)

        accept_btn.click(do_accept, [result, revision, who, into], [accepted, result])

        # batch

        def batch(job_id, request, progress, name, sd, ids, av, st, k, m, ep, ctx, mx, temp, tp, sd_seed, rows_text, q,
                  limit, size, straight, target):
            stop_ev = new_stop(_session(request), "batch")
            try:
                if job_id:
                    job = db.revision_job(job_id.strip())
                    if job is None:
                        raise rv.RevisionError(f"no job {job_id.strip()!r}")
                    if job["status"] == "done":
                        raise rv.RevisionError(f"job {job['id']} is already done")
                    backend = rv.backend_for_job(job)
                    resumed = True
                else:
                    if not name:
                        raise rv.RevisionError("pick a dataset first")
                    ps = rv.resolve_principles(db, ids or [], template_values(av, st))
                    settings = make_settings(mx, temp, tp, sd_seed, ctx, size)
                    notes: list[str] = []
                    rows = rv.select_rows(db, name, (rows_text or "").strip() or None, (q or "").strip() or None,
                                          as_int(limit, 0) or None, notes)
                    backend = backend_from(k, m, ep)
                    accept_into = ((target or "").strip() or rv.default_into(name)) if straight else None
                    job, resumed = rv.start_job(db, name, rows, ps, backend, settings, sd or "chosen", accept_into,
                                                {"rows": rows_text or None, "query": q or None, "limit": limit})
            except rv.RevisionError as err:
                yield f"⚠️ {escape(err)}", gr.update()
                return
            updates: queue.Queue = queue.Queue()
            outcome: dict = {}

            def work():
                try:
                    outcome["job"] = rv.run_job(db, job["id"], backend, stop_ev, updates.put,
                                                batch_size=as_int(size, 0) or None)
                except Exception as err:  # shown on the page in one line
                    outcome["error"] = err
                updates.put(None)

            threading.Thread(target=work, daemon=True, name="revise-batch").start()
            head = f"{'Resumed' if resumed else 'Started'} job `{job['id']}` on **{escape(job['dataset'])}**"
            if not job_id and notes:
                head += " (" + escape("; ".join(notes)) + ")"
            while True:
                p = updates.get()
                if p is None:
                    break
                progress((p.done, p.total), desc=f"{p.done} of {p.total} rows")
                yield f"{head}: {p.done} of {p.total} rows · {escape(p.message)}", gr.update()
            if "error" in outcome:
                err = outcome["error"]
                msg = str(err) if isinstance(err, rv.RevisionError) else f"{type(err).__name__}: {err}"
                yield f"⚠️ {head}: {escape(msg)}", jobs_table(db)
                return
            j = outcome["job"]
            word = "stopped; resume it later" if j["stopped"] else "done"
            yield (f"{head}: {word} · {j['done']} of {j['total']} rows have a result · {j['pending']} pending "
                   f"review · {j['failed']} failed"), jobs_table(db)

        batch_inputs = [dataset, side, picks, avoid, steer, kind, model, endpoint, context, max_new, temperature, top_p,
                        seed, b_rows, b_query, b_limit, b_size, b_accept, into]
        def start_batch(name, sd, ids, av, st, k, m, ep, ctx, mx, temp, tp, sd_seed, rows_text, q, limit, size,
                        straight, target, request: gr.Request, progress=gr.Progress()):
            yield from batch(None, request, progress, name, sd, ids, av, st, k, m, ep, ctx, mx, temp, tp, sd_seed,
                             rows_text, q, limit, size, straight, target)

        def resume_batch(job_id, size, request: gr.Request, progress=gr.Progress()):
            if not (job_id or "").strip():
                yield "⚠️ Pick a job in the table (or type its id) to resume it.", gr.update()
                return
            yield from batch(job_id, request, progress, *([None] * 16), size, None, None)

        def stop_batch(request: gr.Request):
            request_stop(_session(request), "batch")

        batch_started = b_go.click(start_batch, batch_inputs, [b_status, jobs], concurrency_limit=4,
                                   concurrency_id="revise-generate")
        batch_resumed = b_resume.click(resume_batch, [b_job, b_size], [b_status, jobs], concurrency_limit=4,
                       concurrency_id="revise-generate")
        b_stop.click(stop_batch, None, None, concurrency_limit=None)

        def pick_job(evt: gr.SelectData):
            return str((evt.row_value or [""])[0])

        jobs.select(pick_job, None, b_job)

        # pending review

        def refresh_pending():
            table, ids = pending_table(db)
            return table, ids, f"{len(ids):,} revisions pending review" if ids else "Nothing pending review."

        p_refresh.click(refresh_pending, None, [p_table, p_ids, p_count])
        batch_started.then(refresh_pending, None, [p_table, p_ids, p_count])
        batch_resumed.then(refresh_pending, None, [p_table, p_ids, p_count])

        def pick_pending(ids, evt: gr.SelectData):
            i = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
            rid = ids[i] if ids and i is not None and 0 <= i < len(ids) else None
            item = review_item(db, rid)
            return item["title"], item["chat"], item["critique"], item["revision"], item["result"], ""

        p_table.select(pick_pending, p_ids, [p_title, p_chat, p_critique, p_revision, p_current, p_result])

        def accept_pending(res, text, name):
            if not res:
                return "⚠️ Pick a pending revision first.", res, *refresh_pending()
            msg = accept_result(db, res, text, name, None, stored=True)
            return msg, None, *refresh_pending()

        p_accept.click(accept_pending, [p_current, p_revision, who], [p_result, p_current, p_table, p_ids, p_count])

        def reject_pending(res, name):
            if not res:
                return "⚠️ Pick a pending revision first.", res, *refresh_pending()
            rv.reject(db, res["id"], name)
            return f"Rejected revision {res['id'][:8]}.", None, *refresh_pending()

        p_reject.click(reject_pending, [p_current, who], [p_result, p_current, p_table, p_ids, p_count])

        # principle editor

        def edit_pick(pid):
            p = db.principle(pid) if pid and pid != "(new)" else None
            if p is None:
                return "", "", "", "", False, history_table(db)
            return p["id"], p["grp"], p["title"], p["text"], bool(p["is_default"]), history_table(db, p["id"])

        e_pick.input(edit_pick, e_pick, [e_id, e_group, e_title, e_text, e_default, e_history])

        def refreshed_choices(selected, pid):
            choices = principle_choices(db)
            ids = {c[1] for c in choices}
            return (gr.update(choices=choices, value=[s for s in (selected or []) if s in ids]),
                    gr.update(choices=["(new)"] + [c[1] for c in choices], value=pid if pid in ids else "(new)"))

        def edit_save(pid, grp, title, text, is_default, author, selected):
            try:
                p = rv.save_principle(db, {"id": pid, "group": grp or "other", "title": title, "text": text,
                                           "default": bool(is_default)}, (author or "").strip() or None)
            except rv.RevisionError as err:
                return (f"⚠️ {escape(err)}", gr.update(), gr.update(), gr.update())
            return (f"✅ Saved **{escape(p.id)}** (version {p.version}).", *refreshed_choices(selected, p.id),
                    history_table(db, p.id))

        e_save.click(edit_save, [e_id, e_group, e_title, e_text, e_default, who, picks],
                     [e_result, picks, e_pick, e_history])

        def edit_delete(pid, author, selected):
            if not pid or not db.delete_principle(pid.strip(), (author or "").strip() or None):
                return f"⚠️ No principle {escape(pid)!s} to delete.", gr.update(), gr.update(), gr.update()
            return (f"Deleted **{escape(pid)}** (its history is kept).", *refreshed_choices(selected, None),
                    history_table(db, pid))

        e_delete.click(edit_delete, [e_id, who, picks], [e_result, picks, e_pick, e_history])

        # deep link ?tab=revise&dataset=NAME&row=N[&side=rejected]

        def on_load(request: gr.Request):
            params = query_params(request)
            choices = revisable_datasets(db)
            table, ids = pending_table(db)
            pending_count = f"{len(ids):,} revisions pending review" if ids else "Nothing pending review."
            rest = (table, ids, pending_count, jobs_table(db))
            name = params.get("dataset")
            here = params.get("tab") == TAB_ID
            if not here or name not in choices:
                tab = gr.update(selected=TAB_ID) if here else gr.update()
                line = f"⚠️ No dataset named **{escape(name)}** to revise." if here and name else gr.update()
                return (gr.update(choices=choices), tab, gr.update(), gr.update(), gr.update(), line,
                        gr.update(), gr.update(), *rest)
            r = as_int(params.get("row"), 0)
            sd = "rejected" if params.get("side") == "rejected" else "chosen"
            messages, line, target = open_row(name, r, sd)
            return (gr.update(choices=choices, value=name), gr.update(selected=TAB_ID), r, sd, messages, line,
                    target, gr.update(), *rest)

        studio.on_load.append((on_load, [dataset, studio.tabs, row, side, convo, about, into, accepted,
                                         p_table, p_ids, p_count, jobs]))


def _is_loaded(model: str) -> bool:
    return any(d.startswith(model.strip() + " ·") for d in rv.loaded_models())
