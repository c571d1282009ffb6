"""The labeling screen of the Compare tab: one pair side by side, labeled from the keyboard.

The queue controls above the screens (dataset, annotator, queue, search words) are built here too,
since they decide which pair is on screen; ``views.compare`` puts the screens together.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import gradio as gr

from .. import catalogue, labels, personas, triage
from ..labels import LabelError
from ..store import Database
from ..policies import DATASET, LABEL, PERSONA, PROJECT
from .common import as_int, chatbot, escape, requires
from .label_state import (SIDES, LabelForm, annotator_for, current_row, form_values, graded_html,  # noqa: F401
                          label_current, move, mine_markdown, name_or_none, new_queue, pair_datasets, pair_view,
                          progress_markdown, resume, signed_in, suggestion_html, title_markdown, undo_last,
                          with_suggestion)

CONFIDENCE_CHOICES = [("–", 0), ("1", 1), ("2", 2), ("3", 3)]
"""Confidence: 1 unsure, 2 fairly sure, 3 certain (the radio's title says which key is which)."""
BUTTON_KEYS = {lab.key.lower(): f"cmp-label-{lab.name}" for lab in labels.VOCABULARY} | {
    "u": "cmp-undo", "arrowright": "cmp-next", "j": "cmp-next", "arrowleft": "cmp-prev", "k": "cmp-prev",
    "a": "cmp-accept"}
"""Key (KeyboardEvent.key, lower case) -> the elem_id of the button it clicks (static/compare.js)."""
LABEL_KEYS = [lab.key.lower() for lab in labels.VOCABULARY] + ["u", "a"]
SIDE_TITLES = {"chosen": "left is better", "rejected": "right is better"}
LEGEND = (
    '<div class="cmp-legend">'
    + " · ".join(f"<kbd>{lab.key}</kbd> {SIDE_TITLES.get(lab.name, lab.title)}" for lab in labels.VOCABULARY)
    + " · <kbd>A</kbd> accept the model's suggestion"
    + " · <kbd>U</kbd> undo · <kbd>←</kbd>/<kbd>→</kbd> previous/next · <kbd>Q</kbd><kbd>W</kbd><kbd>E</kbd> "
    "confidence 1-3 · <kbd>D</kbd> word diff · <kbd>N</kbd> note (<kbd>Esc</kbd> leaves a text box; keys do "
    "nothing while you type)</div>"
)

# -- the view ---------------------------------------------------------------------------------------


@dataclass
class Controls:
    """The queue controls above the Compare tab's screens, and the queue state they drive. The
    state's dataset is the page's current dataset: every render writes it into the dropdown, and
    Agreement and Export read the dropdown."""

    state: gr.State
    dataset: gr.Dropdown
    annotator: gr.Textbox
    queue: gr.Dropdown
    query: gr.Textbox
    blind: gr.Checkbox
    start: gr.Button
    model: gr.Dropdown  # the reward model whose suggestions are shown and whose scores order a score queue
    model2: gr.Dropdown  # the second model of "two models disagree"
    diff_toggle: gr.Checkbox | None = None  # set by the labeling screen
    persona: gr.Dropdown | None = None  # the persona a label is given for (set by the labeling screen)
    persona_card: gr.HTML | None = None

    @classmethod
    def build(cls, db: Database) -> "Controls":
        state = gr.State(new_queue(db, None))
        with gr.Row(equal_height=True, elem_id="cmp-controls"):
            # no value until the page has loaded: a deep link decides which dataset it is
            dataset = gr.Dropdown(label="Dataset (pairs)", choices=pair_datasets(db), value=None, scale=3,
                                  elem_id="cmp-dataset")
            annotator = gr.Textbox(label="Annotator", placeholder="your name (remembered in this browser)", scale=2,
                                   elem_id="cmp-annotator", max_lines=1)
            queue = gr.Dropdown(label="Queue", choices=[(v, k) for k, v in triage.QUEUES.items()], value="unlabeled",
                                scale=2, elem_id="cmp-queue")
            query = gr.Textbox(label="Search words", placeholder="label the pairs that contain these words",
                               visible=False, scale=2, elem_id="cmp-query", max_lines=1)
            model = gr.Dropdown(label="Model (scores)", choices=[], value=None, visible=False, scale=2,
                                elem_id="cmp-model")
            model2 = gr.Dropdown(label="Second model", choices=[], value=None, visible=False, scale=2,
                                 elem_id="cmp-model2")
            blind = gr.Checkbox(label="Blind (A / B)", value=False, scale=1, min_width=110, elem_id="cmp-blind")
            start = gr.Button("Start / resume", scale=1, size="sm", elem_id="cmp-start", min_width=110)
        return cls(state, dataset, annotator, queue, query, blind, start, model, model2)


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
    panes: Any
    left: Any
    right: Any
    left_len: Any
    right_len: Any
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
    guidelines_box: Any
    guidelines: Any
    suggestion: Any
    accept: Any
    graded: Any = None  # the keyboard panel of a graded schema or an N-response pair
    graded_value: Any = None  # what the panel's keys gave (JSON), read by the hidden button's event
    graded_button: Any = None

    @property
    def outputs(self) -> list:
        """What ``render`` fills, in order."""
        c = self.controls
        return [c.state, c.dataset, c.blind, self.title, self.progress, self.row_shown, self.prompt, self.earlier_box,
                self.earlier, self.panes, self.left, self.right, self.left_len, self.right_len, self.diff_box,
                self.metadata, self.mine, self.status, self.buttons["chosen"], self.buttons["rejected"],
                self.guidelines_box, self.guidelines, c.model, c.model2, self.suggestion, self.accept, self.graded,
                self.buttons["tie"], self.buttons["both_bad"]]

    @property
    def form(self) -> list:
        """What a label takes along: filled for each new pair (``render(reset=True)``) with the
        annotator's earlier confidence, note and tags, or cleared."""
        return [self.confidence, self.note, self.tags]

    def render(self, state: dict, annotator: str | None, with_diff: bool, reset: bool = False,
               choices: list | None = None, admin: bool | None = None) -> list:
        """The outputs for ``state``; ``choices`` refreshes the dataset list, ``admin`` says whether
        the blind setting may be changed (set when the page opens)."""
        row = current_row(state)
        if state.get("shown_row") != row:  # the clock of the time per label starts as the pair is drawn
            state = dict(state) | {"shown_row": row, "shown_at": time.time()}
        state = with_suggestion(self.db, state)  # the one lookup of the model's scores of this pair
        suggested = suggestion_html(state, annotator is not None)
        models = state.get("models") or []
        blind = bool(state.get("blind"))
        query = state.get("query") if state.get("mode") == "search" else None
        v = pair_view(self.db, state.get("dataset"), row, with_diff, blind, query)
        first, second = SIDES[blind]
        message = state.get("message") or ""
        schema = state.get("schema") or {}
        ranked = bool(v["responses"] and len(v["responses"]) > 2)
        graded = bool(schema.get("points")) and not ranked
        panel = graded_html(schema, v["responses"], blind) if v["found"] else ""
        show_diff = bool(with_diff and v["found"]) and not ranked
        dataset = gr.update(value=state.get("dataset"), choices=choices) if choices is not None else \
            gr.update(value=state.get("dataset"))
        out = [
            state,
            dataset,
            gr.update(value=blind) if admin is None else gr.update(value=blind, interactive=admin),
            title_markdown(state),
            progress_markdown(self.db, state, annotator),
            row,
            gr.update(value=v["prompt"], label="Prompt (final turn)" if v["earlier"] else "Prompt"),
            gr.update(visible=bool(v["earlier"]), open=v["open_earlier"], label=f"Earlier turns ({len(v['earlier'])})"),
            v["earlier"],
            gr.update(visible=not show_diff and not ranked),
            gr.update(value=v["left"], label=("A · on the scale below" if graded and blind else
                                              "A · chosen in the source" if graded else
                                              f"{first} · key 1 if better" if blind else
                                              "Chosen (in the source) · key 1 if better")),
            gr.update(value=v["right"], label=("B · on the scale below" if graded and blind else
                                               "B · rejected in the source" if graded else
                                               f"{second} · key 2 if better" if blind else
                                               "Rejected (in the source) · key 2 if better")),
            v["left_len"],
            v["right_len"],
            gr.update(value=v["diff"], visible=show_diff),
            v["metadata"],
            mine_markdown(self.db, state, annotator),
            f"<small>{time.strftime('%H:%M:%S')}</small> {message}" if message else "",
            gr.update(value=f"1 · {'A is better' if blind else 'Chosen is better'}", visible=not (graded or ranked)),
            gr.update(value=f"2 · {'B is better' if blind else 'Rejected is better'}", visible=not (graded or ranked)),
            *guidelines_updates(self.db, state.get("dataset")),
            gr.update(choices=models, value=state.get("model"), visible=bool(models)),
            gr.update(choices=models, value=state.get("model2"), visible=state.get("mode") == "models_disagree"),
            gr.update(value=suggested, visible=bool(suggested)),
            gr.update(visible=bool(suggested) and annotator is not None),
            gr.update(value=panel, visible=bool(panel)),
            # the keys 3 and 4 are the scale's or the responses' on a graded or ranked pair
            gr.update(visible=not (graded or ranked)),
            gr.update(visible=not (graded or ranked)),
        ]
        return out + (form_updates(schema, form_values(self.db, state, annotator)) if reset else [])


def form_updates(schema: dict, values: list) -> list:
    """The form's values for a new pair, with the tags box holding the schema's reasons and the note
    box asking for the rationale when the label schema has them."""
    confidence, note, tags = values
    reasons = schema.get("reasons") or []
    rationale = schema.get("rationale") or "off"
    return [confidence,
            gr.update(value=note, placeholder=("Rationale (required)" if rationale == "required" else
                                               "Rationale" if rationale == "optional" else "Note")
                      + ": N to type, Esc to leave"),
            gr.update(value=tags, choices=reasons or labels.DEFAULT_TAGS, allow_custom_value=not reasons,
                      label="Reasons" if reasons else "Tags")]


def guidelines_updates(db: Database, dataset: str | None) -> list:
    """The guidelines panel: shown with its version when the dataset has guidelines."""
    text = labels.setting(db, dataset, "guidelines") if dataset and catalogue.dataset(db, dataset) else ""
    if not text:
        return [gr.update(visible=False), ""]
    return [gr.update(visible=True, label=f"Guidelines (version {labels.guidelines_version(db, dataset)})"), text]


def build(db: Database, controls: Controls) -> LabelScreen:
    """The labeling screen's layout (inside the current tab) and its event wiring. Everything a label
    needs fits on one screen (1280x720 and up): the panes scroll inside themselves, and the form,
    your label and the confirmation sit in a column beside them."""
    with gr.Column(elem_id="cmp-keys"):
        with gr.Row(equal_height=True, elem_id="cmp-head"):
            title = gr.Markdown(elem_id="cmp-title")
            progress = gr.Markdown(elem_id="cmp-progress")
        row_shown = gr.Number(value=None, visible=False, precision=0, elem_id="cmp-row")
        with gr.Row(equal_height=False, elem_id="cmp-main"):
            with gr.Column(scale=4, min_width=500):
                with gr.Accordion("Earlier turns", open=False, visible=False, elem_id="cmp-earlier-box") as earlier_box:
                    earlier = chatbot(show_label=False, height="auto", max_height=240, elem_id="cmp-earlier")
                prompt = chatbot(label="Prompt", height="auto", max_height=96, min_height=30, elem_id="cmp-prompt",
                                 layout="panel", buttons=[])
                with gr.Row(equal_height=True, elem_id="cmp-panes") as panes:
                    with gr.Column(min_width=240):
                        left = chatbot(label="Chosen (in the source) · key 1 if better", elem_id="cmp-chosen",
                                       layout="panel", elem_classes="cmp-pane")
                        left_len = gr.Markdown(elem_id="cmp-chosen-len", elem_classes="cmp-len")
                    with gr.Column(min_width=240):
                        right = chatbot(label="Rejected (in the source) · key 2 if better", elem_id="cmp-rejected",
                                        layout="panel", elem_classes="cmp-pane")
                        right_len = gr.Markdown(elem_id="cmp-rejected-len", elem_classes="cmp-len")
                diff_box = gr.HTML(visible=False, elem_id="cmp-diff")
                # the keyboard panel of a graded schema or an N-response pair, right under the pair
                graded = gr.HTML(visible=False, elem_id="cmp-graded")
                with gr.Row(elem_id="cmp-labels"):
                    buttons = {
                        lab.name: gr.Button(f"{lab.key} · {lab.title}", elem_id=f"cmp-label-{lab.name}", size="sm",
                                            variant="primary" if lab.name in ("chosen", "rejected") else "secondary",
                                            scale=3 if lab.name in ("chosen", "rejected") else 2, min_width=60)
                        for lab in labels.VOCABULARY
                    }
                    undo_btn = gr.Button("U · Undo", size="sm", elem_id="cmp-undo", scale=2, min_width=60)
                    prev_btn = gr.Button("←", size="sm", elem_id="cmp-prev", scale=1, min_width=36)
                    next_btn = gr.Button("→", size="sm", elem_id="cmp-next", scale=1, min_width=36)
            with gr.Column(scale=1, min_width=250, elem_id="cmp-side"):
                with gr.Accordion("Guidelines", open=True, visible=False, elem_id="cmp-guidelines-box") as g_box:
                    guidelines = gr.Markdown(elem_id="cmp-guidelines")
                suggestion = gr.HTML(visible=False, elem_id="cmp-suggestion")
                accept_btn = gr.Button("A · Accept the suggestion", size="sm", visible=False, elem_id="cmp-accept")
                status = gr.Markdown(elem_id="cmp-status")
                mine = gr.Markdown(elem_id="cmp-mine")
                confidence = gr.Radio(label="Confidence (Q W E)", choices=CONFIDENCE_CHOICES, value=0,
                                      elem_id="cmp-confidence")
                tags = gr.Dropdown(label="Tags", choices=labels.DEFAULT_TAGS, multiselect=True,
                                   allow_custom_value=True, value=[], elem_id="cmp-tags")
                note = gr.Textbox(show_label=False, placeholder="Note: N to type, Esc to leave", lines=1, max_lines=4,
                                  elem_id="cmp-note")
                controls.diff_toggle = gr.Checkbox(label="Word diff (D)", value=False, elem_id="cmp-diff-toggle")
                controls.persona = gr.Dropdown(label="Label as persona (optional)", choices=persona_choices(db),
                                               value="", elem_id="cmp-persona")
                controls.persona_card = gr.HTML(elem_id="cmp-persona-card")
                with gr.Accordion("Label schema (admins)", open=False, elem_id="cmp-schema-box"):
                    schema_text = gr.Textbox(show_label=False, lines=3, elem_id="cmp-schema",
                                             placeholder='{"overall": 7, "aspects": ["helpfulness", "safety"], '
                                                         '"reasons": ["wrong facts"], "rationale": "optional"}')
                    schema_save = gr.Button("Save the label schema", size="sm", elem_id="cmp-schema-save")
        graded_value = gr.Textbox(visible="hidden", elem_id="cmp-graded-value")
        graded_button = gr.Button("graded", visible="hidden", elem_id="cmp-label-graded")
        gr.HTML(LEGEND, elem_id="cmp-legend")
        with gr.Accordion("Pair metadata", open=False):
            metadata = gr.JSON(show_label=False, elem_id="cmp-metadata")
    screen = LabelScreen(db, controls, title, progress, row_shown, prompt, earlier_box, earlier, panes, left, right,
                         left_len, right_len, diff_box, metadata, mine, status, confidence, tags, note, buttons,
                         undo_btn, prev_btn, next_btn, g_box, guidelines, suggestion, accept_btn, graded, graded_value,
                         graded_button)
    _wire(screen)
    _wire_schema(screen, schema_text, schema_save)
    return screen


def persona_choices(db: Database) -> list[tuple[str, str]]:
    return [("— yourself —", "")] + [(p.name, p.name) for p in personas.personas(db)]


def persona_options(db: Database, name: str | None) -> dict:
    """What a label given for persona ``name`` records (its name and version), or nothing."""
    if not name:
        return {}
    p = personas.persona(db, name)
    if p is None:
        raise LabelError(f"no persona named {name!r}")
    return {"persona": p.name, "persona_version": p.version}


def _wire(screen: LabelScreen) -> None:
    db, c = screen.db, screen.controls
    pair_and_form = screen.outputs + screen.form

    @requires(LABEL.queue)
    def start_queue(dataset, mode, query, typed_name, with_diff, model=None, model2=None, *, who=None):
        name = name_or_none(typed_name, who)
        state = new_queue(db, dataset, mode, query if mode == "search" else None, name, model=model, model2=model2)
        return screen.render(state, name, with_diff, reset=True)

    start_inputs = [c.dataset, c.queue, c.query, c.annotator, c.diff_toggle, c.model, c.model2]
    c.dataset.input(start_queue, start_inputs, pair_and_form)
    c.start.click(start_queue, start_inputs, pair_and_form)
    c.query.submit(start_queue, start_inputs, pair_and_form)
    c.model.input(start_queue, start_inputs, pair_and_form)
    c.model2.input(start_queue, start_inputs, pair_and_form)

    @requires(LABEL.queue)
    def pick_queue(dataset, mode, query, typed_name, with_diff, model=None, model2=None, *, who=None):
        if mode == "search" and not (query or "").strip():  # wait for the words
            return [gr.update(visible=True), *[gr.update()] * len(pair_and_form)]
        return [gr.update(visible=mode == "search"),
                *start_queue(dataset, mode, query, typed_name, with_diff, model, model2, who=who)]

    c.queue.input(pick_queue, start_inputs, [c.query, *pair_and_form])

    @requires(PROJECT.blind)
    def set_blind(state, blind, typed_name, with_diff, *, who=None):
        name = name_or_none(typed_name, who)
        try:
            labels.set_setting(db, state.get("dataset"), "blind", bool(blind), getattr(who, "name", None))
        except LabelError as err:
            return screen.render(dict(state) | {"message": f"⚠️ {escape(err)}"}, name, with_diff, reset=True)
        state = dict(state) | {"blind": bool(blind), "message": "Blind labeling is " + ("on: the sides are A and B."
                                                                                      if blind else "off.")}
        return screen.render(state, name, with_diff, reset=True)

    c.blind.input(set_blind, [c.state, c.blind, c.annotator, c.diff_toggle], pair_and_form)

    @requires(PERSONA.read)
    def show_persona(name):
        return personas.card_html(personas.persona(db, name)) if name else ""

    c.persona.change(show_persona, [c.persona], [c.persona_card], show_progress="hidden")

    def do_label(label: str | None, keyed: bool = False):
        """The handler of a label button; ``None``: the button that accepts the model's suggestion;
        ``keyed``: the hidden button the graded panel's keys press (``graded`` then holds their JSON)."""
        @requires(LABEL.create)
        def handler(state, typed_name, confidence, note, tags, shown_row, with_diff, persona, graded=None, *,
                    who=None):
            schema = state.get("schema") or {}
            extra = {}
            if schema.get("reasons"):
                extra["reasons"], tags = tags, None
            if (schema.get("rationale") or "off") != "off":
                extra["rationale"], note = note, None
            form = LabelForm(confidence, note, tags, as_int(shown_row, -1) if shown_row is not None else None)
            try:
                name = annotator_for(typed_name, who)
                if keyed:
                    extra |= parse_graded(graded)
                state = label_current(db, state, label, name, form, options=persona_options(db, persona),
                                      accept=label is None and not keyed, graded=extra)
            except LabelError as err:
                state = dict(state) | {"message": f"⚠️ {escape(err)}"}
                return screen.render(state, name_or_none(typed_name, who), with_diff) + [gr.update()] * 3
            return screen.render(state, name, with_diff, reset=True)

        return handler

    label_inputs = [c.state, c.annotator, screen.confidence, screen.note, screen.tags, screen.row_shown, c.diff_toggle,
                    c.persona]
    for lab, button in [*screen.buttons.items(), (None, screen.accept)]:
        # queue=False: a label is one short transaction, answered on its own request (no queue round trips)
        button.click(do_label(lab), label_inputs, pair_and_form, trigger_mode="once", show_progress="hidden",
                     queue=False)
    # the graded panel's keys (static/compare.js) leave what they gave in window.__studioGraded
    screen.graded_button.click(do_label(None, keyed=True), [*label_inputs, screen.graded_value], pair_and_form,
                               js="(...a) => { a[a.length - 1] = window.__studioGraded || ''; return a; }",
                               trigger_mode="once", show_progress="hidden", queue=False)

    @requires(LABEL.undo)
    def do_undo(state, typed_name, with_diff, *, who=None):
        try:
            name = annotator_for(typed_name, who)
            state = undo_last(db, state, name)
        except LabelError as err:
            state = dict(state) | {"message": f"⚠️ {escape(err)}"}
            return screen.render(state, name_or_none(typed_name, who), with_diff) + [gr.update()] * 3
        return screen.render(state, name, with_diff, reset=True)

    screen.undo.click(do_undo, [c.state, c.annotator, c.diff_toggle], pair_and_form, trigger_mode="once",
                      show_progress="hidden")

    def do_move(step: int):
        @requires(LABEL.queue)
        def handler(state, typed_name, with_diff, *, who=None):
            return screen.render(move(state, step), name_or_none(typed_name, who), with_diff, reset=True)

        return handler

    for button, step in ((screen.prev, -1), (screen.next, +1)):
        button.click(do_move(step), [c.state, c.annotator, c.diff_toggle], pair_and_form, show_progress="hidden",
                     queue=False)

    @requires(DATASET.read)
    def toggle_diff(state, with_diff):
        row = current_row(state)
        if not with_diff or row is None:
            return gr.update(visible=False), gr.update(visible=True)
        v = pair_view(db, state["dataset"], row, True, bool(state.get("blind")))
        return gr.update(value=v["diff"], visible=True), gr.update(visible=False)

    c.diff_toggle.change(toggle_diff, [c.state, c.diff_toggle], [screen.diff_box, screen.panes],
                         show_progress="hidden")


def parse_graded(text: str | None) -> dict:
    """What the graded panel's keys gave: ``{"grade": -3..3, "aspects": {name: chosen|rejected|tie}}``
    or ``{"ranking": [indexes, best first]}``, from its JSON.

    >>> parse_graded('{"grade": 2, "aspects": {"safety": "tie"}, "evil": 1}')
    {'grade': 2, 'aspects': {'safety': 'tie'}}
    """
    import json

    try:
        value = json.loads(text or "{}")
    except json.JSONDecodeError:
        raise LabelError("the keys gave no grade or ranking: press them again") from None
    if not isinstance(value, dict):
        raise LabelError("the keys gave no grade or ranking: press them again")
    return {k: value[k] for k in ("grade", "aspects", "ranking") if value.get(k) not in (None, "", {}, [])}


def _wire_schema(screen: LabelScreen, text: Any, save: Any) -> None:
    """The label schema editor: admins set the dataset's schema (a new version of the setting)."""
    db, c = screen.db, screen.controls

    @requires(PROJECT.schema)
    def save_schema(state, value, typed_name, with_diff, *, who=None):
        name = name_or_none(typed_name, who)
        try:
            labels.set_setting(db, state.get("dataset"), "label_schema", value, getattr(who, "name", None))
            schema = labels.label_schema(db, state.get("dataset"))
        except LabelError as err:
            return screen.render(dict(state) | {"message": f"⚠️ {escape(err)}"}, name, with_diff, reset=True)
        state = dict(state) | {"schema": schema, "message": f"Label schema version {schema['version']} saved: "
                                                             f"{escape(schema['overall'])}"
                               + (", aspects " + escape(", ".join(schema["aspects"])) if schema["aspects"] else "")}
        return screen.render(state, name, with_diff, reset=True)

    save.click(save_schema, [c.state, text, c.annotator, c.diff_toggle], screen.outputs + screen.form)
