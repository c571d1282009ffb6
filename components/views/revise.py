"""Revise: critique and rewrite a conversation's final assistant turn against chosen principles.

The critique and the revision stream into the page; Stop ends the generation; the revision can be
edited before it is accepted as a pair (chosen = revision, rejected = original) of NAME-revisions.
Below: batch runs with their pending-review list (``revise_batch``), and the principle editor
(``principles``). The controls' meaning lives in ``revise_form``. The model is picked from the model
list (``revise.models``); only admins type another model or endpoint, or add and remove entries --
the server decides, whatever the page sends.
Deep link: ``?tab=revise&dataset=NAME&row=N`` (``&side=rejected`` for the rejected side of a pair).
"""

from __future__ import annotations

import time
from typing import Iterator

import gradio as gr

from .. import personas as pz
from .. import revise as rv
from ..access import Identity
from ..store import Database
from ..policies import DATASET, MODEL, PAGE, PERSONA, PRINCIPLE, REVISION
from . import principles as principle_editor
from . import revise_batch
from .common import (
    Studio, acting_name, as_int, chat, chatbot, dataset_change, dataset_choices, deep_link, escape, query_params, requires,
)
from .principles import default_principles, principle_choices
from .revise_form import (
    ModelChoice, RevisionForm, RevisionRequest, accept_result, new_stop, request_stop, session_of, with_template,
)

TAB_ID = "revise"
STREAM_INTERVAL = 0.05  # seconds between page updates while text streams in
CSS = """
#revise-principles { max-height: 430px; overflow-y: auto; }
#revise-status { min-height: 2.5em; }
"""

__all__ = ["accept_result", "add_model", "build", "device_line", "load_conversation", "model_choices", "remove_model",
           "revise_updates", "status_line"]


# -- plain functions (what the handlers call; tests call them too) -------------------------------


def revisable_datasets(db: Database) -> list[str]:
    return dataset_choices(db, ("pairs", "conversations"))


NO_PERSONA = ("no persona", "")


def persona_choices(db: Database) -> list[tuple[str, str]]:
    """The persona list of the form: no persona first, then every persona of the library."""
    return [NO_PERSONA] + [(p.name, p.name) for p in pz.personas(db)]


def persona_card(db: Database, name: str | None) -> str:
    """The card of persona ``name`` (escaped HTML), or '' for none or an unknown one."""
    return pz.card_html(pz.persona(db, name)) if name else ""


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


def model_choices(db: Database) -> list[tuple[str, str]]:
    """The model list of the form: (what it shows, the entry's id)."""
    return [(m.label(), m.id) for m in rv.models(db)]


def default_pick(db: Database) -> str | None:
    entry = rv.default_model(db)
    return entry.id if entry else None


def add_model(db: Database, kind: str | None, model: str | None, endpoint: str | None,
              who: Identity) -> tuple[str, str | None]:
    """List the typed model (the caller is an admin: the handler checked); a line, and the entry's id."""
    try:
        entry, new = rv.add_model(db, kind or "local", model or "", endpoint if kind == "endpoint" else None,
                                  author=who.name, origin="page")
    except rv.RevisionError as err:
        return f"⚠️ {escape(err)}", None
    said = "Added" if new else "Already listed:"
    return f"✅ {said} `{escape(entry.label())}` (id `{entry.id}`): annotators can pick it now.", entry.id


def remove_model(db: Database, pick: str | None, who: Identity) -> str:
    try:
        entry = rv.remove_model(db, pick or "", author=who.name)
    except rv.RevisionError as err:
        return f"⚠️ {escape(err)}"
    return f"Removed `{escape(entry.label())}` from the list (its history is kept)."


def device_line(backend: rv.Backend | None) -> str:
    if backend is None:
        return ("Model not loaded yet. A local model runs on the GPU (CUDA, bfloat16) when one is present, "
                "else on the CPU (float32); it is loaded once and kept.")
    if backend.kind == "endpoint":
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
        if r.get("persona"):
            text += f"<br>Written for persona **{escape(r['persona']['name'])}** (version {r['persona']['version']})"
        if r["status"] == "pending":
            text += "<br>Edit the revision if you like, then **Accept** to store it as a pair."
        else:
            text += f"<br>⚠️ {escape(r['error'])}"
    for n in u.notes:
        text += f"<br>ℹ️ {escape(n)}"
    return text


def revise_updates(db: Database, request: RevisionRequest, stop, who: Identity) -> Iterator[
        tuple[str, str, str, dict | None, str]]:
    """One revision for ``who``: (status, critique, revision, result, device line) as the text streams,
    a page update at most every ``STREAM_INTERVAL`` seconds; problems come as a one-line status. The
    model is decided here, on the server, from the model list (``revise.choose``)."""
    try:
        if not request.dataset:
            raise rv.RevisionError("pick a dataset and a row first")
        source = rv.conversation(db, request.dataset, request.row, request.side)
        ps = request.principles.resolve(db)
        persona = request.persona_provenance(db)
        settings = request.generation.settings()
        if request.model.needs_loading(db):
            yield "⏳ Loading the model (once; it stays loaded)…", "", "", None, ""
        backend = request.model.backend(db, who)
    except rv.RevisionError as err:
        yield f"⚠️ {escape(err)}", "", "", None, ""
        return
    started = time.perf_counter()  # generation time, not model loading
    last_push = 0.0
    u = None
    try:
        for u in rv.revise_stream(source, ps, backend, settings, stop, persona):
            now = time.perf_counter()
            if u.result is None and now - last_push < STREAM_INTERVAL:
                continue
            last_push = now
            yield status_line(u, started), u.critique, u.revision, u.result, device_line(backend)
    except rv.RevisionError as err:
        yield f"⚠️ {escape(err)}", u.critique if u else "", u.revision if u else "", None, device_line(backend)


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
            studio.follow(dataset, lambda: revisable_datasets(db))
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
                persona = gr.Dropdown(label="Persona: revise for this person (optional)", choices=persona_choices(db),
                                      value="", elem_id="revise-persona",
                                      info="the critique and revision are written for them; the pair's prompt "
                                           "starts with their system message")
                persona_html = gr.HTML(elem_id="revise-persona-card")
        with gr.Accordion("Model and settings", open=True):
            with gr.Row():
                pick = gr.Dropdown(label="Model", choices=model_choices(db), value=default_pick(db), scale=3,
                                   elem_id="revise-model-pick", info="the models an admin listed for this app")
                load_model = gr.Button("Load model", scale=0, elem_id="revise-load-model")
            # typed models are for admins (the server refuses them to everyone else); the local
            # single-user tool's one user is an admin, so there the box shows from the start
            with gr.Column(visible=studio.mode == "open", elem_id="revise-model-admin") as admin_box:
                with gr.Row():
                    kind = gr.Radio(["local", "endpoint"], value="local", label="Backend", scale=1,
                                    elem_id="revise-kind",
                                    info="local: transformers in this process · endpoint: OpenAI-compatible server")
                    model = gr.Textbox(label="Another model (admins): Hub id or local folder; for an endpoint, the "
                                             "served name. Used instead of the list while it has text",
                                       placeholder="Qwen/Qwen2.5-0.5B-Instruct", scale=3, elem_id="revise-model")
                    endpoint = gr.Textbox(label="Endpoint URL", placeholder="http://localhost:8000/v1", scale=2,
                                          visible=False, elem_id="revise-endpoint")
                with gr.Row():
                    add_btn = gr.Button("Add it to the list", size="sm", scale=0, elem_id="revise-model-add")
                    remove_btn = gr.Button("Remove the picked model from the list", size="sm", scale=0,
                                           elem_id="revise-model-remove")
                    models_note = gr.Markdown(elem_id="revise-models-note")
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

        form = RevisionForm(dataset=dataset, row=row, side=side, picks=picks, avoid=avoid, steer=steer, kind=kind,
                            model=model, endpoint=endpoint, pick=pick, max_new=max_new, temperature=temperature,
                            top_p=top_p, seed=seed, context=context, persona=persona)
        pending, jobs = revise_batch.build(db, form, into, who)
        principle_editor.build(db, picks, who)

        # -- handlers ---------------------------------------------------------------------------

        @requires(DATASET.read)
        def open_row(name, r, sd):
            messages, line = load_conversation(db, name, r, sd)
            return messages, line, name and rv.default_into(name) or ""

        @requires(DATASET.read)
        def open_dataset(name, sd):
            return *open_row(name, 0, sd), 0

        load.click(open_row, [dataset, row, side], [convo, about, into])
        row.submit(open_row, [dataset, row, side], [convo, about, into])
        dataset.input(open_dataset, [dataset, side], [convo, about, into, row])
        side.input(open_row, [dataset, row, side], [convo, about, into])

        @requires(MODEL.choose)
        def show_endpoint(k):
            return gr.update(visible=k == "endpoint")

        kind.change(show_endpoint, kind, endpoint)

        @requires(PERSONA.read)
        def show_persona(name):
            return persona_card(db, name)

        persona.change(show_persona, persona, persona_html)
        @requires(PRINCIPLE.read)
        def on_template_text(selected, avoid_text, steer_text):
            return with_template(selected, avoid_text, steer_text)

        avoid.input(on_template_text, [picks, avoid, steer], picks)
        steer.input(on_template_text, [picks, avoid, steer], picks)

        @requires(MODEL.load)
        def on_load_model(k, m, ep, chosen, *, who):
            try:
                return device_line(ModelChoice(k, m or "", ep or "", chosen).backend(db, who))
            except rv.RevisionError as err:
                return f"⚠️ {escape(err)}"

        load_model.click(on_load_model, [kind, model, endpoint, pick], device)

        @requires(MODEL.add)
        def on_add_model(k, m, ep, *, who):
            line, added = add_model(db, k, m, ep, who)
            choices = model_choices(db)
            return line, gr.update(choices=choices, value=added) if added else gr.update(choices=choices)

        add_btn.click(on_add_model, [kind, model, endpoint], [models_note, pick])

        @requires(MODEL.remove)
        def on_remove_model(chosen, *, who):
            line = remove_model(db, chosen, who)
            return line, gr.update(choices=model_choices(db), value=default_pick(db))

        remove_btn.click(on_remove_model, pick, [models_note, pick])

        @requires(REVISION.run)
        def on_run(values: dict, request: gr.Request, *, who):
            stop_ev = new_stop(session_of(request), "revise")
            for status_text, crit, rev, res, dev in revise_updates(db, form.read(values), stop_ev, who):
                yield status_text, crit, rev, res, dev or gr.update()

        go.click(on_run, form.components(), [status, critique, revision, result, device],
                 concurrency_limit=4, concurrency_id="revise-generate")

        @requires(REVISION.stop)
        def on_stop(request: gr.Request):
            request_stop(session_of(request), "revise")

        stop.click(on_stop, None, None, concurrency_limit=None)

        @requires(REVISION.accept)
        def on_accept(res, text, name, target, *, who):
            msg = accept_result(db, res, text, acting_name(name, who), target)
            done = msg.startswith("✅")  # a new dataset of revisions joins every list
            return msg, (None if done else res), (dataset_change("added") if done else gr.update())

        accept_btn.click(on_accept, [result, revision, who, into], [accepted, result, studio.datasets_changed])

        # deep link ?tab=revise&dataset=NAME&row=N[&side=rejected]

        @requires(PAGE.open)
        def on_load(request: gr.Request, *, who):
            params = query_params(request)
            choices = revisable_datasets(db)
            rest = (*revise_batch.refreshed(db), revise_batch.jobs_table(db), gr.update(choices=persona_choices(db)),
                    gr.update(choices=model_choices(db)), gr.update(visible=who.can("admin")))
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
                                         *pending.outputs(), jobs, persona, pick, admin_box]))
