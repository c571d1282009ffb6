"""The review screen of the Compare tab: a reviewer works through the pairs annotators disagree on
(unresolved first), sees every label with its note and confidence, and records a final label with
a reason (``labels.review``); the export prefers it."""

from __future__ import annotations

import gradio as gr

from .. import labels
from ..labels import LabelError
from ..store import Database
from .common import as_int, chatbot, escape, requires
from .label import Controls
from .label_state import pair_view
from ..policies import LABEL

# -- plain functions (what the handlers call; tests call them too) ---------------------------------


def _title(label: str | None) -> str:
    return labels.BY_NAME[label].title if label else "no majority"


def queue_table(items: list[dict]) -> list[list]:
    """The disagreements as the table shows them: row, labels, majority, final label."""
    return [[d["row"], ", ".join(f"{a}: {_title(lab)}" for a, lab in d["labels"].items()), _title(d["majority"]),
             f"{_title(d['review']['label'])} ({d['review']['reviewer']})" if d["review"] else "—"]
            for d in items]


def summary_markdown(dataset: str, items: list[dict]) -> str:
    if not items:
        return f"**{escape(dataset)}**: no disagreements to review."
    done = sum(1 for d in items if d["review"])
    return (f"**{escape(dataset)}**: {len(items):,} disagreement{'s' if len(items) != 1 else ''} · {done:,} resolved · "
            f"{len(items) - done:,} to go. Click a row to review it.")


def labels_table(db: Database, dataset: str, row: int) -> list[list]:
    """Every annotator's current label of the pair, with confidence, note and tags."""
    return [[lab["annotator"], _title(lab["label"]) if lab["label"] != "skip" else "Skip", lab["confidence"] or "",
             lab["note"] or "", ", ".join(lab["tags"] or [])] for lab in labels.pair_labels(db, dataset, row)]


def pair_title(db: Database, dataset: str, row: int) -> str:
    review = labels.reviewed(db, dataset).get(row)
    text = f"**{escape(dataset)}** · row **{row}**"
    if review:
        text += (f" · final label **{_title(review['label'])}** by {escape(review['reviewer'])}: "
                 f"“{escape(review['reason'])}”")
    return text


# -- the view ---------------------------------------------------------------------------------------


def build(db: Database, controls: Controls, tab: gr.Tab) -> None:
    """The review screen's layout (inside ``tab``) and its event wiring."""
    summary = gr.Markdown(elem_id="rev-summary")
    queue = gr.Dataframe(headers=["row", "labels", "majority", "final label"], interactive=False, wrap=True,
                         elem_id="rev-queue", column_widths=["8%", "57%", "15%", "20%"])
    shown = gr.State(None)
    title = gr.Markdown(elem_id="rev-title")
    prompt = chatbot(label="Prompt", height="auto", max_height=160, elem_id="rev-prompt", buttons=[])
    with gr.Row(equal_height=True):
        left = chatbot(label="Chosen (in the source)", height=260, elem_id="rev-chosen", buttons=[])
        right = chatbot(label="Rejected (in the source)", height=260, elem_id="rev-rejected", buttons=[])
    given = gr.Dataframe(headers=["annotator", "label", "confidence", "note", "tags"], interactive=False, wrap=True,
                         elem_id="rev-labels")
    with gr.Row(equal_height=True):
        final = gr.Radio(label="Final label", choices=[(labels.BY_NAME[x].title, x) for x in labels.JUDGMENTS],
                         elem_id="rev-label", scale=2)
        reason = gr.Textbox(label="Reason", placeholder="why this label", elem_id="rev-reason", scale=3, max_lines=3)
        save = gr.Button("Record final label", variant="primary", elem_id="rev-save", scale=1)
    status = gr.Markdown(elem_id="rev-status")

    @requires(LABEL.review)
    def load(dataset):
        if not dataset:
            return "Pick a dataset.", []
        try:
            items = labels.review_queue(db, dataset)
        except LabelError as err:
            return f"⚠️ {escape(err)}", []
        return summary_markdown(dataset, items), queue_table(items)

    tab.select(load, controls.dataset, [summary, queue])

    def show(dataset, row):
        v = pair_view(db, dataset, row)
        return [row, pair_title(db, dataset, row), v["earlier"] + v["prompt"], v["left"], v["right"],
                labels_table(db, dataset, row)]

    @requires(LABEL.review)
    def pick(dataset, evt: gr.SelectData):
        row = as_int((evt.row_value or [None])[0], -1)
        if not dataset or row < 0:
            return [gr.update()] * 6 + [gr.update(), ""]
        review = labels.reviewed(db, dataset).get(row)
        return show(dataset, row) + [gr.update(value=review["label"] if review else None), ""]

    queue.select(pick, controls.dataset, [shown, title, prompt, left, right, given, final, status])

    @requires(LABEL.review)
    def record(dataset, row, label, why, *, who=None):
        name = getattr(who, "name", None) or "local"
        try:
            if row is None:
                raise LabelError("click a disagreement first")
            done = labels.resolve(db, dataset, row, label, name, why)
        except LabelError as err:
            return [gr.update()] * 3 + [f"⚠️ {escape(err)}"]
        return [*load(dataset), pair_title(db, dataset, row),
                f"✅ Row {done['row']}: final label **{_title(done['label'])}** recorded."]

    save.click(record, [controls.dataset, shown, final, reason], [summary, queue, title, status])
