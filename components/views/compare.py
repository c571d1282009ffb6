"""Compare: one pair side by side, labeled from the keyboard; agreement between annotators; reviews;
the labeling project; export.

The tab puts five screens together under one row of queue controls: ``views.label`` (the labeling
screen), ``views.agreement``, ``views.review`` (reviewers), ``views.project`` (admins: settings, gold
pairs, progress and per-annotator figures) and ``views.export``. The keys are handled in the browser by
``static/compare.js``, passed to the page in ``HEAD``.

Deep links: ``?tab=compare&dataset=NAME&row=N`` opens a pair (``&q=WORDS`` starts a queue of search
hits, its words marked; ``&queue=disagreements`` the disagreements; ``&queue=uncertain&model=M`` a
queue ordered by a reward model's stored scores, ``&model2=M2`` the second model of ``models_disagree``). A click on such a link anywhere in
the page (a search hit) opens it here without reloading the page (``static/compare.js`` hands it to a
hidden button). Scripting API on the running server: ``/label`` (dataset, row, label, annotator; when
people sign in, the annotator is always the caller) and ``/next_pair`` (dataset, annotator), which in
a project with an overlap reserves the pair it gives (``labels.project``); given a ``queue`` (and
``model``), the first pair of that queue the annotator has not labeled.

A reward model's stored scores of the pair on screen show beside it as a suggestion (which side the
model prefers, by how much), accepted with ``A``; blind labeling hides them, and viewers see the
scores without the suggestion.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qsl

import gradio as gr

from .. import labels
from ..labels import LabelError
from .. import triage
from ..policies import DATASET, LABEL, PAGE
from . import agreement, export, project, review
from . import label as label_screen
from .common import READONLY_CSS, Studio, as_int, escape, query_params, requires, resolve_dataset
from .guard import caller
from .label import (Controls, LabelScreen, annotator_for, current_row, name_or_none, new_queue, pair_datasets, resume,
                    signed_in)

TAB_ID = "compare"
ANNOTATOR_KEY = "preference-studio-annotator"
"""The browser's localStorage key that remembers the annotator's name."""

_KEYS = json.dumps({"buttons": label_screen.BUTTON_KEYS, "labelKeys": label_screen.LABEL_KEYS})
HEAD = (f"<script>window.__studioCompareConfig = {_KEYS};</script>\n"
        f"<script>\n{(Path(__file__).parent / 'static' / 'compare.js').read_text(encoding='utf-8')}</script>\n")

CSS = READONLY_CSS + """
#cmp-controls { gap: 8px; }
#cmp-controls > div { min-width: 0; }
#cmp-keys { gap: 6px; }
#cmp-keys .cmp-legend { font-size: 0.8em; color: var(--body-text-color-subdued); line-height: 1.8; }
#cmp-keys .cmp-legend kbd, #cmp-help kbd {
  border: 1px solid var(--border-color-primary); border-bottom-width: 2px; border-radius: 4px;
  padding: 0 4px; font-family: var(--font-mono); font-size: 0.9em; background: var(--background-fill-secondary);
}
#cmp-main, #cmp-panes, #cmp-side { gap: 6px; }
/* the panes scroll inside themselves: the buttons, the form and the confirmation stay in view */
#cmp-chosen, #cmp-rejected { height: clamp(150px, calc(100vh - 540px), 700px) !important; }
#cmp-prompt { min-height: 0 !important; }
#cmp-prompt .message-row { padding: 28px 12px 4px; }
#cmp-prompt .message-wrap { margin-bottom: 0; }
#cmp-keys .cmp-pane .message-row { padding: 30px 12px 8px; }
#cmp-keys .cmp-pane, #cmp-keys .cmp-pane .message-row { background: var(--background-fill-secondary); }
#cmp-diff .wd-cols { display: grid; grid-template-columns: 1fr 1fr; gap: 12px; }
#cmp-diff .wd-side { white-space: pre-wrap; overflow-wrap: anywhere; font-size: 0.92em; line-height: 1.5;
  border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 10px;
  height: clamp(170px, calc(100vh - 520px), 720px); overflow: auto; color: var(--body-text-color);
  background: var(--background-fill-primary); }
#cmp-diff .wd-side h4 { margin: 0 0 6px 0; font-size: 0.85em; color: var(--body-text-color-subdued); }
#cmp-diff del.wd-del { background: rgba(239, 68, 68, 0.22); color: #991b1b; text-decoration: line-through; }
#cmp-diff ins.wd-ins { background: rgba(34, 197, 94, 0.25); color: #166534; text-decoration: none; }
.dark #cmp-diff del.wd-del { background: rgba(248, 113, 113, 0.28); color: #fecaca; }
.dark #cmp-diff ins.wd-ins { background: rgba(74, 222, 128, 0.25); color: #bbf7d0; }
#cmp-labels { gap: 6px; flex-wrap: nowrap; }
#cmp-labels button { min-width: 0; white-space: nowrap; padding-left: 8px; padding-right: 8px; }
#cmp-start { align-self: center; }
#cmp-head { min-height: 0; }
#cmp-title p, #cmp-progress p, #cmp-mine p, #cmp-status p { margin: 0; }
#cmp-progress { text-align: right; }
#cmp-side .block { padding: 6px 8px; }
#cmp-side textarea { min-height: 0; }
#cmp-status, #cmp-mine { font-size: 0.9em; }
#cmp-confidence .wrap { gap: 4px; flex-wrap: nowrap; }
#cmp-tags input::placeholder { color: var(--body-text-color-subdued); }
#cmp-confidence label { padding: 2px 6px; }
#cmp-guidelines { max-height: 260px; overflow: auto; font-size: 0.9em; }
#cmp-guidelines h1, #cmp-guidelines h2, #cmp-guidelines h3 { font-size: 1em; margin: 4px 0; }
.cmp-len p { margin: 0; font-size: 0.8em; color: var(--body-text-color-subdued); }
#cmp-suggestion .cmp-suggest { font-size: 0.9em; padding: 6px 8px; border-radius: 6px;
  border: 1px dashed var(--border-color-primary); background: var(--background-fill-secondary); }
#cmp-suggestion kbd { border: 1px solid var(--border-color-primary); border-radius: 4px; padding: 0 4px; }
#cmp-graded-panel { font-size: 0.9em; display: flex; flex-direction: column; gap: 4px; }
#cmp-graded-panel kbd { border: 1px solid var(--border-color-primary); border-radius: 4px; padding: 0 4px; }
#cmp-graded-panel .cmp-graded-help { color: var(--body-text-color-subdued); }
#cmp-graded-panel .cmp-overall, #cmp-graded-panel .cmp-aspect { padding: 3px 6px; border-radius: 6px;
  border: 1px solid transparent; display: flex; flex-wrap: wrap; gap: 6px; align-items: center; }
#cmp-graded-panel .cmp-row-active { border-color: var(--color-accent); background: var(--background-fill-secondary); }
#cmp-graded-panel .cmp-aspect-name { min-width: 110px; font-weight: 600; }
#cmp-graded-panel .cmp-picked { background: var(--color-accent); color: white; border-radius: 4px; padding: 0 4px; }
#cmp-graded-panel .cmp-resps { display: grid; grid-template-columns: repeat(auto-fit, minmax(260px, 1fr)); gap: 8px; }
#cmp-graded-panel .cmp-resp { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 6px 8px; }
#cmp-graded-panel .cmp-resp.cmp-ranked { border-color: var(--color-accent); }
#cmp-graded-panel .cmp-resp-head { font-weight: 600; margin-bottom: 4px; }
#cmp-graded-panel .cmp-resp-text { white-space: pre-wrap; overflow-wrap: anywhere; max-height: 260px; overflow: auto; }
"""


def build(studio: Studio) -> None:
    db = studio.db
    with gr.Tab("Compare", id=TAB_ID, elem_id="compare-tab") as tab:
        controls = Controls.build(db)
        with gr.Tabs(elem_id="cmp-tabs") as inner:
            with gr.Tab("Label", id="label"):
                screen = label_screen.build(db, controls)
            with gr.Tab("Agreement", id="agreement") as agreement_tab:
                agreement.build(db, screen, inner, agreement_tab)
            with gr.Tab("Review", id="review", elem_id="cmp-review-tab") as review_tab:
                review.build(db, controls, review_tab)
            with gr.Tab("Project", id="project", elem_id="cmp-project-tab") as project_tab:
                project.build(db, controls, project_tab)
            with gr.Tab("Export", id="export") as export_tab:
                export.build(db, controls, export_tab)
        _wire_page(studio, tab, inner, screen)
        _api(db, studio.mode)


def open_params(db, params: dict, stored_name: str | None, who, ours: bool = True) -> tuple[dict, str | None]:
    """The queue a link's parameters ask for (``dataset``, ``row``, ``q``, ``queue``), and the annotator.
    A dataset that does not exist (or holds no pairs) says so instead of showing another one."""
    name = name_or_none(stored_name, who)
    choices = pair_datasets(db)
    wanted = params.get("dataset") if ours else None
    dataset, note = resolve_dataset(db, wanted, ("pairs",))
    if not wanted:
        dataset = choices[0] if choices else None
    query = (params.get("q") or "") if ours else ""
    mode = (params.get("queue") if ours else None) or ("search" if query else "unlabeled")
    mode = mode if mode in triage.QUEUES else "unlabeled"
    row = as_int(params.get("row"), -1) if ours and "row" in params else -1
    state = new_queue(db, dataset, mode, query, name, row if row >= 0 else None,
                      model=params.get("model") if ours else None, model2=params.get("model2") if ours else None)
    if note:
        state["message"] = note
    return state, name


def _wire_page(studio: Studio, tab: gr.Tab, inner: gr.Tabs, screen: LabelScreen) -> None:
    """The annotator's name (remembered by the browser, or the signed-in user's), deep links, links
    opened in the page, and the dataset list."""
    db, c = studio.db, screen.controls
    pair_and_form = screen.outputs + screen.form

    @requires(LABEL.queue)
    def commit_name(typed_name, state, with_diff, *, who=None):
        if signed_in(who):
            return [gr.update(), *screen.render(state, name_or_none(typed_name, who), with_diff)]
        try:
            name = annotator_for(typed_name, who)
        except LabelError as err:
            if not (typed_name or "").strip():
                return ["", *screen.render(state, None, with_diff)]
            return [gr.update(), *screen.render(dict(state) | {"message": f"⚠️ {escape(err)}"}, None, with_diff)]
        if state.get("auto") and state.get("rows"):
            state = dict(state)
            state["pos"] = resume(db, state, name)
        return [name, *screen.render(state, name, with_diff)]

    # the browser keeps the name in localStorage: saved as the box is left, read back on page load
    remember = (f"(name, st, d) => {{ try {{ localStorage.setItem({ANNOTATOR_KEY!r}, (name || '').trim()); }} "
                "catch (e) {} return [name, st, d]; }")
    for event in (c.annotator.submit, c.annotator.blur):
        event(commit_name, [c.annotator, c.state, c.diff_toggle], [c.annotator, *screen.outputs], js=remember)

    def name_box(stored_name, who):
        if not signed_in(who):
            return stored_name or ""
        if who.can("annotator"):
            return gr.update(value=who.name, interactive=False, label=f"Labelling as {who.name}")
        return gr.update(value=who.name, interactive=False,
                         label=f"Viewing as {who.name} (labels need the annotator role)")

    @requires(PAGE.open)
    def on_page_load(stored_name, request: gr.Request, *, who=None):
        params = query_params(request)
        state, name = open_params(db, params, stored_name, who, ours=params.get("tab") == TAB_ID)
        return [name_box(stored_name, who), gr.update(value=state["mode"]),
                gr.update(value=state["query"], visible=state["mode"] == "search"),
                *screen.render(state, name, False, reset=True, choices=pair_datasets(db),
                               admin=who is None or who.can("admin"))]

    from gradio.context import Context

    recall = (f"(name) => {{ try {{ return [localStorage.getItem({ANNOTATOR_KEY!r}) || '']; }} "
              "catch (e) { return ['']; } }")
    Context.root_block.load(on_page_load, [c.annotator], [c.annotator, c.queue, c.query, *pair_and_form], js=recall)

    @requires(PAGE.open)
    def select_tab(request: gr.Request):
        return gr.update(selected=TAB_ID) if query_params(request).get("tab") == TAB_ID else gr.update()

    panes = [screen.prompt, screen.earlier, screen.left, screen.right]
    at = [screen.outputs.index(p) for p in panes]

    @requires(PAGE.open)
    def repaint(state, typed_name, with_diff, request: gr.Request, *, who=None):
        """The pair's text sent again once a deep link has shown the tab: chat values sent while the
        tab was being drawn for the first time can be lost by the page. Only the panes' text, and
        answered at once (no queue), so it never stands in for anything the annotator did since."""
        if query_params(request).get("tab") != TAB_ID or not (state or {}).get("dataset"):
            return [gr.update()] * len(panes)
        drawn = screen.render(state, name_or_none(typed_name, who), with_diff)
        return [drawn[i] for i in at]

    Context.root_block.load(select_tab, None, [studio.tabs]).then(
        repaint, [c.state, c.annotator, c.diff_toggle], panes, show_progress="hidden", queue=False)

    # a link to ?tab=compare clicked anywhere in the page (a search hit): opened here, no reload
    link = gr.Textbox(visible="hidden", elem_id="cmp-link")
    opener = gr.Button("open", visible="hidden", elem_id="cmp-open")

    @requires(LABEL.queue)
    def open_link(href, typed_name, with_diff, *, who=None):
        params = dict(parse_qsl((href or "").lstrip("?")))
        state, name = open_params(db, params, typed_name, who)
        return [gr.update(selected=TAB_ID), gr.update(selected="label"), gr.update(value=state["mode"]),
                gr.update(value=state["query"], visible=state["mode"] == "search"),
                *screen.render(state, name, with_diff, reset=True)]

    opener.click(open_link, [link, c.annotator, c.diff_toggle],
                 [studio.tabs, inner, c.queue, c.query, *pair_and_form],
                 js="(l, n, d) => [window.__studioLink || l, n, d]", show_progress="hidden", queue=False)

    @requires(DATASET.list)
    def refresh_datasets():  # the choices only: the value is the queue's, written by every render
        return gr.update(choices=pair_datasets(db))

    tab.select(refresh_datasets, None, c.dataset)

    @requires(DATASET.list)
    def datasets_changed(change, state, typed_name, with_diff, *, who=None):
        change = change or {}
        name = name_or_none(typed_name, who)
        current = state.get("dataset")
        if change.get("dataset") != current or change.get("event") not in ("renamed", "deleted"):
            unchanged = [gr.update()] * len(pair_and_form)
            unchanged[pair_and_form.index(c.dataset)] = gr.update(choices=pair_datasets(db))
            return unchanged
        if change.get("event") == "renamed":
            state = new_queue(db, change.get("to"), state.get("mode"), state.get("query"), name, current_row(state))
        else:
            state = new_queue(db, None) | {"message": f"Dataset **{escape(current)}** was deleted."}
        return screen.render(state, name, with_diff, reset=True, choices=pair_datasets(db))

    studio.datasets_changed.change(datasets_changed, [studio.datasets_changed, c.state, c.annotator, c.diff_toggle],
                                   pair_and_form, show_progress="hidden")


def _api(db, mode: str) -> None:
    """The scripting API: named endpoints for gradio_client."""

    @requires(LABEL.create)
    def label(dataset: str, row: int, label: str, annotator: str, request: gr.Request) -> dict:
        """Record ANNOTATOR's LABEL (chosen, rejected, tie, both_bad or skip) of pair ROW (0-based source row).
        When people sign in, the label is the caller's, whatever ANNOTATOR says. With an overlap set,
        a pair whose slots are all taken is refused; the time since /next_pair handed it out is recorded."""
        # the caller as the guard identified them (a ``who`` parameter would become an API input here)
        try:
            name = annotator_for(annotator, caller(db, mode, request))
            event = labels.submit(db, dataset, row, label, name, options={"via": "api"})
        except LabelError as err:
            raise gr.Error(str(err)) from None
        return event | {"created_at": event["created_at"].isoformat()}

    @requires(LABEL.queue)
    def next_pair(dataset: str, annotator: str, request: gr.Request, queue: str = "unlabeled", model: str = "",
                  model2: str = "", query: str = "") -> int | None:
        """The next pair (0-based source row) ANNOTATOR should label in DATASET; None when nothing is left
        for them. When people sign in, the annotator is the caller. With an overlap set, the pair is held
        for the annotator (their slot) until they label it or the hold expires. QUEUE picks another
        queue (model_flips, model_vs_majority, uncertain, models_disagree, disagreements, search with
        QUERY, ...): its first pair the annotator has not labeled, by MODEL's scores (and MODEL2's)."""
        who = caller(db, mode, request)
        try:
            name = annotator_for(annotator, who) if who.can("annotator") else labels.check_annotator(
                who.name or annotator)
            if (queue or "unlabeled") != "unlabeled":
                if queue not in triage.QUEUES:
                    raise LabelError(f"unknown queue {queue!r}: use one of {', '.join(triage.QUEUES)}")
                return triage.next_in_queue(db, dataset, name, queue, query or None, model or None, model2 or None)
            return labels.next_pair(db, dataset, name, reserve=who.can("annotator"))
        except LabelError as err:
            raise gr.Error(str(err)) from None

    gr.api(label, api_name="label")
    gr.api(next_pair, api_name="next_pair")
