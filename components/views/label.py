"""The labeling screen of the Compare tab: one pair side by side, labeled from the keyboard.

The queue controls above the screens (dataset, annotator, queue, search words) are built here too,
since they decide which pair is on screen; ``views.compare`` puts the screens together.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import gradio as gr

from .. import diff, labels
from ..labels import LabelError
from ..store import Database
from .common import as_int, chat, chatbot, escape, requires

CONFIDENCE_CHOICES = [("–", 0), ("1 · unsure", 1), ("2 · fairly sure", 2), ("3 · certain", 3)]
BUTTON_KEYS = {lab.key.lower(): f"cmp-label-{lab.name}" for lab in labels.VOCABULARY} | {
    "u": "cmp-undo", "arrowright": "cmp-next", "j": "cmp-next", "arrowleft": "cmp-prev", "k": "cmp-prev"}
"""Key (KeyboardEvent.key, lower case) -> the elem_id of the button it clicks (static/compare.js)."""
LABEL_KEYS = [lab.key.lower() for lab in labels.VOCABULARY] + ["u"]
LEGEND = (
    '<div class="cmp-legend">'
    + " · ".join(f"<kbd>{lab.key}</kbd> {lab.title}" for lab in labels.VOCABULARY)
    + " · <kbd>U</kbd> undo · <kbd>←</kbd>/<kbd>→</kbd> previous/next · <kbd>Q</kbd><kbd>W</kbd><kbd>E</kbd> "
    "confidence 1-3 · <kbd>D</kbd> word diff · <kbd>N</kbd> note (<kbd>Esc</kbd> leaves a text box; keys do "
    "nothing while you type)</div>"
)

# -- plain functions (what the handlers call; tests call them too) ---------------------------------


@dataclass
class LabelForm:
    """What goes with a label besides the label itself."""

    confidence: Any = None  # 1-3, or 0/None for none
    note: str | None = None
    tags: list[str] | None = None
    shown_row: int | None = None  # the pair on screen when the key was pressed


def pair_datasets(db: Database) -> list[str]:
    return [d.name for d in db.datasets() if d.kind == "pairs"]


def who(typed: str | None, request: gr.Request | None = None) -> str:
    """The annotator: the logged-in user where the server has one, else the name typed in."""
    user = getattr(request, "username", None) if request is not None else None
    return labels.check_annotator(user or typed)


def name_or_none(typed: str | None, request: gr.Request | None = None) -> str | None:
    try:
        return who(typed, request)
    except LabelError:
        return None


def response_text(messages: list[dict] | None) -> str:
    return "\n\n".join((m.get("content") or "") for m in messages or [])


def lengths(text: str) -> str:
    chars, words = diff.counts(text)
    return f"{chars:,} characters · {words:,} words"


def diff_html(chosen: str, rejected: str) -> str:
    a, b = diff.word_diff(chosen, rejected)
    return (
        '<div class="wd-cols"><div class="wd-side"><h4>Chosen (words not in rejected struck out)</h4>'
        f"{a}</div><div class=\"wd-side\"><h4>Rejected (words not in chosen highlighted)</h4>{b}</div></div>"
    )


def pair_view(db: Database, dataset: str | None, row: int | None, with_diff: bool = False) -> dict:
    """Everything the labeling screen shows for one pair (empty fields when there is none)."""
    empty = {"found": False, "prompt": [], "earlier": [], "chosen": [], "rejected": [], "chosen_len": "",
             "rejected_len": "", "diff": "", "metadata": {}}
    if not dataset or row is None:
        return empty
    rec = db.record(dataset, int(row))
    if rec is None or rec.get("rejected") is None:
        return empty
    prompt = rec.get("prompt") or []
    last = max((i for i, m in enumerate(prompt) if m.get("role") == "user"), default=len(prompt) - 1)
    chosen_text = response_text(rec.get("chosen"))
    rejected_text = response_text(rec.get("rejected"))
    meta = {key: rec[key] for key in ("score_chosen", "score_rejected", "source_id") if rec.get(key) is not None}
    meta |= rec.get("metadata") or {}
    meta["word_overlap"] = round(diff.similarity(chosen_text, rejected_text), 3)
    return {
        "found": True,
        "prompt": chat(prompt[last:] if prompt else []),
        "earlier": chat(prompt[:last]) if prompt else [],
        "chosen": chat(rec.get("chosen")),
        "rejected": chat(rec.get("rejected")),
        "chosen_len": lengths(chosen_text),
        "rejected_len": lengths(rejected_text),
        "diff": diff_html(chosen_text, rejected_text) if with_diff else "",
        "metadata": meta,
    }


def new_queue(db: Database, dataset: str | None, mode: str = "unlabeled", query: str | None = None,
              annotator: str | None = None, row: int | None = None) -> dict:
    """A labeling queue positioned at ``row`` if given, else where ``annotator`` left off."""
    state = {"dataset": dataset, "mode": mode, "query": query or "", "rows": [], "pos": None, "auto": row is None,
             "engine": None, "message": ""}
    if not dataset:
        state["message"] = "Pick a dataset of preference pairs."
        return state
    try:
        queue = labels.open_queue(db, dataset, mode, query)
    except LabelError as err:
        state["message"] = f"⚠️ {escape(err)}"
        return state
    state["rows"] = rows = queue.rows
    state["engine"] = queue.engine
    if row is not None:
        if row in rows:
            state["pos"] = rows.index(row)
        elif (rec := db.record(dataset, row)) is not None and rec.get("rejected") is not None:
            state["rows"] = rows = [row, *rows]  # a pair outside this queue, opened by a link: show it first
            state["pos"] = 0
        else:
            state["message"] = f"⚠️ row {row} is not a pair of {escape(dataset)} (past the end, or rejected at ingest)"
    if state["pos"] is None and rows:
        state["pos"] = resume(db, state, annotator)
    if not rows:
        state["message"] = {"search": "No pair matches that search.",
                            "disagreements": "No disagreements: no pair has two annotators with different labels."
                            }.get(mode, "This dataset has no pairs.")
    return state


def resume(db: Database, state: dict, annotator: str | None, start: int = 0) -> int | None:
    """Where ``annotator`` goes next: the first pair they have not labeled at or after ``start``."""
    rows = state["rows"]
    if not rows:
        return None
    if state["mode"] == "disagreements":
        return min(start, len(rows) - 1) if start < len(rows) else None
    done = labels.labeled_rows(db, state["dataset"], annotator) if annotator else {}
    pos = labels.next_unlabeled(rows, done, start)
    if pos is None:
        state["message"] = (f"✅ You have labeled every pair in this queue ({len(rows):,}). <kbd>←</kbd> goes back "
                            "through them; or pick another dataset or queue.")
    return pos


def current_row(state: dict | None) -> int | None:
    if not state or state.get("pos") is None or not state.get("rows"):
        return None
    return state["rows"][state["pos"]]


def label_current(db: Database, state: dict, label: str, annotator: str, form: LabelForm | None = None,
                  options: dict | None = None) -> dict:
    """Label the pair on screen and move to the next one; returns the new state (message set)."""
    form = form or LabelForm()
    state = dict(state)
    row = form.shown_row if form.shown_row is not None else current_row(state)
    if row is None:
        raise LabelError("no pair on screen to label" + (": every pair in this queue is labeled (← reviews them)"
                                                        if state.get("rows") else ""))
    event = labels.add_label(db, state["dataset"], row, label, annotator, form.confidence, form.note, form.tags,
                             options=(options or {}) | {"queue": state["mode"], "query": state["query"] or None,
                                                        "via": "ui"})
    pos = state["rows"].index(row) if row in state["rows"] else state["pos"] or 0
    state["pos"] = resume(db, state, event["annotator"], pos + 1)
    state["auto"] = False
    state["message"] = (f"Row {row}: **{labels.BY_NAME[label].title}**"
                        + (f" (confidence {event['confidence']})" if event["confidence"] else "")
                        + " · <kbd>U</kbd> undoes it." + (" " + state["message"] if state["pos"] is None else ""))
    return state


def undo_last(db: Database, state: dict, annotator: str) -> dict:
    state = dict(state)
    undone = labels.undo(db, state["dataset"], annotator, options={"via": "ui"})
    if undone is None:
        state["message"] = "Nothing to undo: you have no label left in this dataset."
        return state
    if undone["row"] not in state["rows"]:
        state["rows"] = [undone["row"], *state["rows"]]
    state["pos"] = state["rows"].index(undone["row"])
    state["auto"] = False
    state["message"] = f"Undid **{labels.BY_NAME[undone['label']].title}** on row {undone['row']}."
    return state


def move(state: dict, step: int) -> dict:
    state = dict(state)
    rows = state.get("rows") or []
    if not rows:
        return state
    pos = state["pos"] if state.get("pos") is not None else (len(rows) if step < 0 else -1)
    state["pos"] = min(max(pos + step, 0), len(rows) - 1)
    state["auto"] = False
    state["message"] = ""
    return state


def title_markdown(state: dict) -> str:
    row = current_row(state)
    if row is None:
        return state.get("message") or "No pair to show."
    queue = labels.QUEUES.get(state["mode"], state["mode"])
    if state["mode"] == "search":
        queue += f" for “{escape(state['query'])}” ({state.get('engine') or 'text match'})"
    return (f"**{escape(state['dataset'])}** · row **{row}** · pair {state['pos'] + 1:,} of {len(state['rows']):,} "
            f"in *{queue}*")


def mine_markdown(db: Database, state: dict, annotator: str | None) -> str:
    row = current_row(state)
    if row is None:
        return ""
    labs = labels.pair_labels(db, state["dataset"], row)
    mine = next((lab for lab in labs if lab["annotator"] == annotator), None)
    others = [lab for lab in labs if lab["annotator"] != annotator]
    text = "Your label: " + (
        f"**{labels.BY_NAME[mine['label']].title}**" + (f", confidence {mine['confidence']}" if mine["confidence"] else "")
        if mine else "none yet")
    if others:
        if state["mode"] == "disagreements":
            text += " · others: " + ", ".join(
                f"{escape(o['annotator'])}: {labels.BY_NAME[o['label']].title}" for o in others)
        else:
            text += f" · {len(others)} other annotator{'s' if len(others) != 1 else ''} labeled it"
    return text


def progress_markdown(db: Database, state: dict, annotator: str | None) -> str:
    if not state or not state.get("dataset") or not state.get("rows"):
        return ""
    rows = None if state["mode"] == "unlabeled" else state["rows"]
    p = labels.progress(db, state["dataset"], annotator, rows)
    total = p["total"]
    you = (f"**You:** {p['mine']:,} of {total:,}" + (f" ({p['skipped']:,} skipped)" if p["skipped"] else "")
           if annotator else "**You:** enter your name to start")
    who_else = f"{p['annotators']} annotator{'s' if p['annotators'] != 1 else ''}"
    return f"{you} · **Everyone:** {p['anyone']:,} of {total:,} labeled ({who_else})"


# -- the view ---------------------------------------------------------------------------------------


@dataclass
class Controls:
    """The queue controls above the Compare tab's screens, and the queue state they drive."""

    state: gr.State
    dataset: gr.Dropdown
    annotator: gr.Textbox
    queue: gr.Radio
    query: gr.Textbox
    start: gr.Button
    diff_toggle: gr.Checkbox | None = None  # set by the labeling screen

    @classmethod
    def build(cls, db: Database) -> "Controls":
        pairs = pair_datasets(db)
        state = gr.State(new_queue(db, None))
        with gr.Row(equal_height=False):
            dataset = gr.Dropdown(label="Dataset (pairs)", choices=pairs, value=pairs[0] if pairs else None, scale=3,
                                  elem_id="cmp-dataset")
            annotator = gr.Textbox(label="Annotator", placeholder="your name (remembered in this browser)", scale=2,
                                   elem_id="cmp-annotator", max_lines=1)
            queue = gr.Radio(label="Queue", choices=[(v, k) for k, v in labels.QUEUES.items()], value="unlabeled",
                             scale=3, elem_id="cmp-queue")
            query = gr.Textbox(label="Search words", placeholder="label the pairs that contain these words",
                               visible=False, scale=2, elem_id="cmp-query", max_lines=1)
            start = gr.Button("Start / resume", scale=1, size="sm", elem_id="cmp-start", min_width=120)
        return cls(state, dataset, annotator, queue, query, start)


@dataclass
class LabelScreen:
    """The components of the labeling screen, and how a queue state is drawn on them."""

    db: Database
    controls: Controls
    title: Any
    progress: Any
    row_shown: Any
    prompt: Any
    earlier_box: Any
    earlier: Any
    chosen: Any
    rejected: Any
    chosen_len: Any
    rejected_len: Any
    diff_box: Any
    metadata: Any
    mine: Any
    status: Any
    confidence: Any
    tags: Any
    note: Any
    buttons: dict
    undo: Any
    prev: Any
    next: Any

    @property
    def outputs(self) -> list:
        """What ``render`` fills, in order."""
        return [self.controls.state, self.title, self.progress, self.row_shown, self.prompt, self.earlier_box,
                self.earlier, self.chosen, self.rejected, self.chosen_len, self.rejected_len, self.diff_box,
                self.metadata, self.mine, self.status]

    @property
    def form(self) -> list:
        """What a label takes along, cleared for each new pair (``render(reset=True)``)."""
        return [self.confidence, self.note, self.tags]

    def render(self, state: dict, annotator: str | None, with_diff: bool, reset: bool = False) -> list:
        row = current_row(state)
        v = pair_view(self.db, state.get("dataset"), row, with_diff)
        message = state.get("message") or ""
        out = [
            state,
            title_markdown(state),
            progress_markdown(self.db, state, annotator),
            row,
            gr.update(value=v["prompt"], label="Prompt (final turn)" if v["earlier"] else "Prompt"),
            gr.update(visible=bool(v["earlier"]), label=f"Earlier turns ({len(v['earlier'])})"),
            v["earlier"],
            v["chosen"],
            v["rejected"],
            v["chosen_len"],
            v["rejected_len"],
            gr.update(value=v["diff"], visible=bool(with_diff and v["found"])),
            v["metadata"],
            mine_markdown(self.db, state, annotator),
            f"<small>{time.strftime('%H:%M:%S')}</small> {message}" if message else "",
        ]
        return out + ([0, "", []] if reset else [])


def build(db: Database, controls: Controls) -> LabelScreen:
    """The labeling screen's layout (inside the current tab) and its event wiring."""
    with gr.Column(elem_id="cmp-keys"):
        with gr.Row(equal_height=True):
            title = gr.Markdown(elem_id="cmp-title")
            progress = gr.Markdown(elem_id="cmp-progress")
        row_shown = gr.Number(value=None, visible=False, precision=0, elem_id="cmp-row")
        with gr.Accordion("Earlier turns", open=False, visible=False, elem_id="cmp-earlier-box") as earlier_box:
            earlier = chatbot(show_label=False, height="auto", max_height=360, elem_id="cmp-earlier")
        prompt = chatbot(label="Prompt", height="auto", max_height=240, min_height=60, elem_id="cmp-prompt",
                         layout="panel")
        with gr.Row(equal_height=True):
            with gr.Column():
                chosen = chatbot(label="Chosen (in the source) · key 1 if better", height="auto", min_height=140,
                                 max_height=480, elem_id="cmp-chosen", layout="panel")
                chosen_len = gr.Markdown(elem_id="cmp-chosen-len", elem_classes="cmp-len")
            with gr.Column():
                rejected = chatbot(label="Rejected (in the source) · key 2 if better", height="auto", min_height=140,
                                   max_height=480, elem_id="cmp-rejected", layout="panel")
                rejected_len = gr.Markdown(elem_id="cmp-rejected-len", elem_classes="cmp-len")
        with gr.Row(elem_id="cmp-labels"):
            buttons = {
                lab.name: gr.Button(f"{lab.key} · {lab.title}", elem_id=f"cmp-label-{lab.name}", size="md",
                                    variant="primary" if lab.name in ("chosen", "rejected") else "secondary")
                for lab in labels.VOCABULARY
            }
        with gr.Row():
            undo_btn = gr.Button("U · Undo last label", size="sm", elem_id="cmp-undo")
            prev_btn = gr.Button("← Previous", size="sm", elem_id="cmp-prev")
            next_btn = gr.Button("Next →", size="sm", elem_id="cmp-next")
        gr.HTML(LEGEND, elem_id="cmp-legend")
        with gr.Row(equal_height=True):
            mine = gr.Markdown(elem_id="cmp-mine")
            status = gr.Markdown(elem_id="cmp-status")
        with gr.Row(equal_height=True):
            confidence = gr.Radio(label="Confidence (Q W E, 0 clears)", choices=CONFIDENCE_CHOICES, value=0,
                                  elem_id="cmp-confidence", scale=2)
            tags = gr.Dropdown(label="Tags", choices=labels.DEFAULT_TAGS, multiselect=True, allow_custom_value=True,
                               value=[], elem_id="cmp-tags", scale=2)
            note = gr.Textbox(label="Note (N to type, Esc to leave)", lines=1, max_lines=4, elem_id="cmp-note",
                              scale=3)
        controls.diff_toggle = gr.Checkbox(label="Word diff of the two responses (D)", value=False,
                                           elem_id="cmp-diff-toggle")
        diff_box = gr.HTML(visible=False, elem_id="cmp-diff")
        with gr.Accordion("Pair metadata", open=False):
            metadata = gr.JSON(show_label=False, elem_id="cmp-metadata")
    screen = LabelScreen(db, controls, title, progress, row_shown, prompt, earlier_box, earlier, chosen, rejected,
                         chosen_len, rejected_len, diff_box, metadata, mine, status, confidence, tags, note, buttons,
                         undo_btn, prev_btn, next_btn)
    _wire(screen)
    return screen


def _wire(screen: LabelScreen) -> None:
    db, c = screen.db, screen.controls
    pair_and_form = screen.outputs + screen.form

    @requires("viewer", "opening a labeling queue")
    def start_queue(dataset, mode, query, typed_name, with_diff, request: gr.Request):
        name = name_or_none(typed_name, request)
        state = new_queue(db, dataset, mode, query if mode == "search" else None, name)
        return screen.render(state, name, with_diff, reset=True)

    start_inputs = [c.dataset, c.queue, c.query, c.annotator, c.diff_toggle]
    c.dataset.input(start_queue, start_inputs, pair_and_form)
    c.start.click(start_queue, start_inputs, pair_and_form)
    c.query.submit(start_queue, start_inputs, pair_and_form)

    @requires("viewer", "opening a labeling queue")
    def pick_queue(dataset, mode, query, typed_name, with_diff, request: gr.Request):
        if mode == "search" and not (query or "").strip():  # wait for the words
            return [gr.update(visible=True), *[gr.update()] * len(pair_and_form)]
        return [gr.update(visible=mode == "search"), *start_queue(dataset, mode, query, typed_name, with_diff, request)]

    c.queue.input(pick_queue, start_inputs, [c.query, *pair_and_form])

    def do_label(label: str):
        @requires("annotator", "labeling")
        def handler(state, typed_name, confidence, note, tags, shown_row, with_diff, request: gr.Request):
            form = LabelForm(confidence, note, tags, as_int(shown_row, -1) if shown_row is not None else None)
            try:
                name = who(typed_name, request)
                state = label_current(db, state, label, name, form)
            except LabelError as err:
                state = dict(state) | {"message": f"⚠️ {escape(err)}"}
                return screen.render(state, name_or_none(typed_name, request), with_diff) + [gr.update()] * 3
            return screen.render(state, name, with_diff, reset=True)

        return handler

    label_inputs = [c.state, c.annotator, screen.confidence, screen.note, screen.tags, screen.row_shown, c.diff_toggle]
    for lab, button in screen.buttons.items():
        button.click(do_label(lab), label_inputs, pair_and_form, trigger_mode="once", show_progress="hidden")

    @requires("annotator", "undoing a label")
    def do_undo(state, typed_name, with_diff, request: gr.Request):
        try:
            name = who(typed_name, request)
            state = undo_last(db, state, name)
        except LabelError as err:
            state = dict(state) | {"message": f"⚠️ {escape(err)}"}
            return screen.render(state, name_or_none(typed_name, request), with_diff)
        return screen.render(state, name, with_diff)

    screen.undo.click(do_undo, [c.state, c.annotator, c.diff_toggle], screen.outputs, trigger_mode="once",
                      show_progress="hidden")

    def do_move(step: int):
        @requires("viewer", "moving through a queue")
        def handler(state, typed_name, with_diff, request: gr.Request):
            return screen.render(move(state, step), name_or_none(typed_name, request), with_diff, reset=True)

        return handler

    for button, step in ((screen.prev, -1), (screen.next, +1)):
        button.click(do_move(step), [c.state, c.annotator, c.diff_toggle], pair_and_form, show_progress="hidden")

    @requires("viewer", "showing the word diff")
    def toggle_diff(state, with_diff):
        row = current_row(state)
        if not with_diff or row is None:
            return gr.update(visible=False)
        return gr.update(value=pair_view(db, state["dataset"], row, True)["diff"], visible=True)

    c.diff_toggle.change(toggle_diff, [c.state, c.diff_toggle], screen.diff_box)
