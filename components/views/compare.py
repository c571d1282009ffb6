"""Compare: one pair side by side, labeled from the keyboard; agreement between annotators; export.

The tab puts three screens together under one row of queue controls: ``views.label`` (the labeling
screen), ``views.agreement`` and ``views.export``. The keys are handled in the browser by
``static/compare.js``, passed to the page in ``HEAD``.

Deep links: ``?tab=compare&dataset=NAME&row=N`` opens a pair (``&q=WORDS`` starts a queue of search
hits, ``&queue=disagreements`` the disagreements). Scripting API on the running server:
``/label`` (dataset, row, label, annotator) and ``/next_pair`` (dataset, annotator).
"""

from __future__ import annotations

import json
from pathlib import Path

import gradio as gr

from .. import labels
from ..labels import LabelError
from . import agreement, export
from . import label as label_screen
from .common import Studio, as_int, escape, query_params, requires
from .label import Controls, LabelScreen, name_or_none, new_queue, pair_datasets, resume, who

TAB_ID = "compare"
ANNOTATOR_KEY = "preference-studio-annotator"
"""The browser's localStorage key that remembers the annotator's name."""

_KEYS = json.dumps({"buttons": label_screen.BUTTON_KEYS, "labelKeys": label_screen.LABEL_KEYS})
HEAD = (f"<script>window.__studioCompareConfig = {_KEYS};</script>\n"
        f"<script>\n{(Path(__file__).parent / 'static' / 'compare.js').read_text(encoding='utf-8')}</script>\n")

CSS = """
#cmp-keys .cmp-legend { font-size: 0.85em; color: var(--body-text-color-subdued); line-height: 2; }
#cmp-keys .cmp-legend kbd, #cmp-help kbd {
  border: 1px solid var(--border-color-primary); border-bottom-width: 2px; border-radius: 4px;
  padding: 0 5px; font-family: var(--font-mono); font-size: 0.9em; background: var(--background-fill-secondary);
}
#cmp-diff .wd-cols { display: grid; grid-template-columns: 1fr 1fr; gap: 12px; }
#cmp-diff .wd-side { white-space: pre-wrap; overflow-wrap: anywhere; font-size: 0.92em; line-height: 1.5;
  border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 10px; max-height: 420px; overflow: auto; }
#cmp-diff .wd-side h4 { margin: 0 0 6px 0; font-size: 0.85em; color: var(--body-text-color-subdued); }
#cmp-diff del.wd-del { background: rgba(239, 68, 68, 0.22); text-decoration: line-through; }
#cmp-diff ins.wd-ins { background: rgba(34, 197, 94, 0.25); text-decoration: none; }
#cmp-labels button { min-width: 0; }
#cmp-keys button[aria-label="Clear"] { display: none; }  /* read-only panes: nothing to clear */
#cmp-start { align-self: center; }
#cmp-title p, #cmp-progress p { margin: 0; }
.cmp-len p { margin: 0; font-size: 0.85em; color: var(--body-text-color-subdued); }
"""


def build(studio: Studio) -> None:
    db = studio.db
    with gr.Tab("Compare", id=TAB_ID) as tab:
        controls = Controls.build(db)
        with gr.Tabs(elem_id="cmp-tabs") as inner:
            with gr.Tab("Label", id="label"):
                screen = label_screen.build(db, controls)
            with gr.Tab("Agreement", id="agreement") as agreement_tab:
                agreement.build(db, screen, inner, agreement_tab)
            with gr.Tab("Export", id="export") as export_tab:
                export.build(db, controls, export_tab)
        _wire_page(studio, tab, screen)
        _api(db)


def _wire_page(studio: Studio, tab: gr.Tab, screen: LabelScreen) -> None:
    """The annotator's name (remembered by the browser), deep links, and the dataset list."""
    db, c = studio.db, screen.controls

    @requires("viewer", "naming the annotator")
    def commit_name(typed_name, state, with_diff, request: gr.Request):
        try:
            name = who(typed_name, request)
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

    @requires("viewer", "opening the page")
    def on_page_load(stored_name, request: gr.Request):
        params = query_params(request)
        ours = params.get("tab") == TAB_ID
        choices = pair_datasets(db)
        name = name_or_none(stored_name, request)
        dataset = params.get("dataset") if ours else None
        if dataset not in choices:
            dataset = choices[0] if choices else None
        mode = params.get("queue") or ("search" if params.get("q") else "unlabeled")
        mode = mode if mode in labels.QUEUES else "unlabeled"
        query = params.get("q") or ""
        row = as_int(params.get("row"), -1) if ours and "row" in params else None
        state = new_queue(db, dataset, mode, query, name, row if row is not None and row >= 0 else None)
        return [gr.update(choices=choices, value=dataset), name or (stored_name or ""), gr.update(value=mode),
                gr.update(value=query, visible=mode == "search"), *screen.render(state, name, False, reset=True)]

    from gradio.context import Context

    recall = (f"(name) => {{ try {{ return [localStorage.getItem({ANNOTATOR_KEY!r}) || '']; }} "
              "catch (e) { return ['']; } }")
    Context.root_block.load(on_page_load, [c.annotator],
                            [c.dataset, c.annotator, c.queue, c.query, *screen.outputs, *screen.form], js=recall)

    @requires("viewer", "opening the page")
    def select_tab(request: gr.Request):
        return gr.update(selected=TAB_ID) if query_params(request).get("tab") == TAB_ID else gr.update()

    studio.on_load.append((select_tab, [studio.tabs]))

    @requires("viewer", "listing datasets")
    def refresh_datasets(dataset):  # datasets ingested since the page opened appear when the tab is opened again
        choices = pair_datasets(db)
        return gr.update(choices=choices, value=dataset if dataset in choices else (choices[0] if choices else None))

    tab.select(refresh_datasets, c.dataset, c.dataset)


def _api(db) -> None:
    """The scripting API: named endpoints for gradio_client."""

    @requires("annotator", "labeling")
    def label(dataset: str, row: int, label: str, annotator: str) -> dict:
        """Record ANNOTATOR's LABEL (chosen, rejected, tie, both_bad or skip) of pair ROW (0-based source row)."""
        try:
            event = labels.add_label(db, dataset, row, label, annotator, options={"via": "api"})
        except LabelError as err:
            raise gr.Error(str(err)) from None
        return event | {"created_at": event["created_at"].isoformat()}

    @requires("viewer", "reading the labeling queue")
    def next_pair(dataset: str, annotator: str) -> int | None:
        """The next pair (0-based source row) ANNOTATOR should label in DATASET; None when all are labeled."""
        try:
            return labels.next_row(db, dataset, annotator)
        except LabelError as err:
            raise gr.Error(str(err)) from None

    gr.api(label, api_name="label")
    gr.api(next_pair, api_name="next_pair")
