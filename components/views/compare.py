"""Compare: one pair side by side, labeled from the keyboard; agreement between annotators; export.

Deep links: ``?tab=compare&dataset=NAME&row=N`` opens a pair (``&q=WORDS`` starts a queue of search
hits, ``&queue=disagreements`` the disagreements). Scripting API on the running server:
``/label`` (dataset, row, label, annotator) and ``/next_pair`` (dataset, annotator).
"""

from __future__ import annotations

import json
import re
import tempfile
import time
from pathlib import Path

import gradio as gr

from .. import diff, labels
from ..labels import LabelError
from ..store import Database
from .common import Studio, as_int, chat, chatbot, escape, query_params

TAB_ID = "compare"
ANNOTATOR_KEY = "preference-studio-annotator"
BUTTON_KEYS = {lab.key.lower(): f"cmp-label-{lab.name}" for lab in labels.VOCABULARY} | {
    "u": "cmp-undo", "arrowright": "cmp-next", "j": "cmp-next", "arrowleft": "cmp-prev", "k": "cmp-prev"}
"""Key (KeyboardEvent.key, lower case) -> the elem_id of the button it clicks."""
LABEL_KEYS = [lab.key.lower() for lab in labels.VOCABULARY] + ["u"]
CONFIDENCE_CHOICES = [("–", 0), ("1 · unsure", 1), ("2 · fairly sure", 2), ("3 · certain", 3)]

# -- keyboard: one document-level listener (Gradio has no hotkey API) --------------------------------

HEAD = """
<script>
(() => {
  if (window.__studioCompareKeys) return;
  window.__studioCompareKeys = true;
  const BUTTONS = __BUTTONS__;
  const LABEL_KEYS = new Set(__LABEL_KEYS__);
  const CONFIDENCE = {"q": "1", "w": "2", "e": "3", "0": "0"};
  const TEXT_INPUTS = new Set(["", "text", "search", "email", "number", "password", "tel", "url"]);
  let busyUntil = 0;
  function typing(el) {
    if (!el || !el.tagName) return false;
    if (el.isContentEditable) return true;
    if (el.tagName === "TEXTAREA" || el.tagName === "SELECT") return true;
    return el.tagName === "INPUT" && TEXT_INPUTS.has((el.getAttribute("type") || "").toLowerCase());
  }
  function shown(el) { return !!el && el.offsetParent !== null; }
  function watch() {
    // a new pair (or a message) on the page ends the wait for the last label key
    for (const id of ["cmp-title", "cmp-status"]) {
      const el = document.getElementById(id);
      if (el && !el.__studioWatched) {
        el.__studioWatched = true;
        new MutationObserver(() => { busyUntil = 0; window.__studioRenderedAt = performance.now(); })
          .observe(el, {childList: true, subtree: true, characterData: true});
      }
    }
  }
  document.addEventListener("keydown", (e) => {
    if (e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey) return;
    const target = (e.composedPath && e.composedPath()[0]) || e.target;
    if (typing(target)) { if (e.key === "Escape") target.blur(); return; }
    const scope = document.getElementById("cmp-keys");
    if (!shown(scope)) return;
    watch();
    const key = (e.key || "").toLowerCase();
    if (key === "n") {
      const note = document.querySelector("#cmp-note textarea, #cmp-note input");
      if (note) { e.preventDefault(); note.focus(); }
      return;
    }
    if (key === "d") {
      const box = document.querySelector("#cmp-diff-toggle input[type=checkbox]");
      if (box) { e.preventDefault(); box.click(); }
      return;
    }
    if (key in CONFIDENCE) {
      const radio = document.querySelector(`#cmp-confidence input[type=radio][value="${CONFIDENCE[key]}"]`);
      if (radio) { e.preventDefault(); radio.click(); }
      return;
    }
    const id = BUTTONS[key];
    if (!id) return;
    e.preventDefault();
    if (e.repeat) return;
    const now = performance.now();
    if (LABEL_KEYS.has(key) && now < busyUntil) return;  // the last label's next pair is not shown yet
    const button = document.getElementById(id);
    if (!button || button.disabled) return;
    if (LABEL_KEYS.has(key)) busyUntil = now + 2000;
    window.__studioKeyAt = now;
    button.click();
  }, true);
})();
</script>
""".replace("__BUTTONS__", json.dumps(BUTTON_KEYS)).replace("__LABEL_KEYS__", json.dumps(LABEL_KEYS))

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

LEGEND = (
    '<div class="cmp-legend">'
    + " · ".join(f"<kbd>{lab.key}</kbd> {lab.title}" for lab in labels.VOCABULARY)
    + " · <kbd>U</kbd> undo · <kbd>←</kbd>/<kbd>→</kbd> previous/next · <kbd>Q</kbd><kbd>W</kbd><kbd>E</kbd> "
    "confidence 1-3 · <kbd>D</kbd> word diff · <kbd>N</kbd> note (<kbd>Esc</kbd> leaves a text box; keys do "
    "nothing while you type)</div>"
)

# -- plain functions (what the handlers call; tests call them too) ---------------------------------

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
    """Everything the Compare panel shows for one pair (empty fields when there is none)."""
    empty = {"found": False, "prompt": [], "earlier": [], "chosen": [], "rejected": [], "chosen_len": "",
             "rejected_len": "", "diff": "", "metadata": {}}
    if not dataset or row is None:
        return empty
    rec = db.record(dataset, int(row))
    if rec is None or rec.get("rejected") is None:
        return empty
    prompt = rec.get("prompt") or []
    last = max((i for i, m in enumerate(prompt) if m.get("role") == "user"), default=len(prompt) - 1)
    shown = prompt[last:] if prompt else []
    chosen_text = response_text(rec.get("chosen"))
    rejected_text = response_text(rec.get("rejected"))
    meta = {}
    for key in ("score_chosen", "score_rejected", "source_id"):
        if rec.get(key) is not None:
            meta[key] = rec[key]
    meta |= rec.get("metadata") or {}
    meta["word_overlap"] = round(diff.similarity(chosen_text, rejected_text), 3)
    return {
        "found": True,
        "prompt": chat(shown),
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
             "message": ""}
    if not dataset:
        state["message"] = "Pick a dataset of preference pairs."
        return state
    try:
        rows = labels.queue_rows(db, dataset, mode, query)
    except LabelError as err:
        state["message"] = f"⚠️ {err}"
        return state
    state["rows"] = rows
    if row is not None:
        if row in rows:
            state["pos"] = rows.index(row)
        elif (rec := db.record(dataset, row)) is not None and rec.get("rejected") is not None:
            state["rows"] = rows = [row, *rows]  # a pair outside this queue, opened by a link: show it first
            state["pos"] = 0
        else:
            state["message"] = f"⚠️ row {row} is not a pair of {escape(dataset)} (past the end, or rejected at ingest)"
    if state["pos"] is None and rows:
        state["pos"] = _resume(db, state, annotator)
    if not rows:
        state["message"] = {"search": "No pair matches that search.",
                            "disagreements": "No disagreements: no pair has two annotators with different labels."
                            }.get(mode, "This dataset has no pairs.")
    return state


def _resume(db: Database, state: dict, annotator: str | None, start: int = 0) -> int | None:
    """Where ``annotator`` goes next: the first pair they have not labeled at or after ``start``."""
    rows = state["rows"]
    if not rows:
        return None
    if state["mode"] == "disagreements":
        return min(start, len(rows) - 1) if start < len(rows) else None
    done = db.labeled_rows(state["dataset"], annotator) if annotator else {}
    pos = labels.next_unlabeled(rows, done, start)
    if pos is None:
        state["message"] = (f"✅ You have labeled every pair in this queue ({len(rows):,}). <kbd>←</kbd> goes back "
                            "through them; or pick another dataset or queue.")
    return pos


def current_row(state: dict | None) -> int | None:
    if not state or state.get("pos") is None or not state.get("rows"):
        return None
    return state["rows"][state["pos"]]


def label_current(db: Database, state: dict, label: str, annotator: str, confidence=None, note=None, tags=None,
                  shown_row: int | None = None, options: dict | None = None) -> dict:
    """Label the pair on screen and move to the next one; returns the new state (message set)."""
    state = dict(state)
    row = shown_row if shown_row is not None else current_row(state)
    if row is None:
        raise LabelError("no pair on screen to label" + (": every pair in this queue is labeled (← reviews them)"
                                                        if state.get("rows") else ""))
    event = labels.add_label(db, state["dataset"], row, label, annotator, confidence, note, tags,
                             options=(options or {}) | {"queue": state["mode"], "query": state["query"] or None,
                                                        "via": "ui"})
    pos = state["rows"].index(row) if row in state["rows"] else state["pos"] or 0
    state["pos"] = _resume(db, state, event["annotator"], pos + 1)
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


def title_markdown(db: Database, state: dict, annotator: str | None) -> str:
    row = current_row(state)
    if row is None:
        return state.get("message") or "No pair to show."
    name = escape(state["dataset"])
    queue = labels.QUEUES.get(state["mode"], state["mode"])
    if state["mode"] == "search":
        queue += f" for “{escape(state['query'])}” ({labels.search_engine(db, state['dataset'])})"
    text = f"**{name}** · row **{row}** · pair {state['pos'] + 1:,} of {len(state['rows']):,} in *{queue}*"
    return text


def mine_markdown(db: Database, state: dict, annotator: str | None) -> str:
    row = current_row(state)
    if row is None:
        return ""
    labs = db.pair_labels(state["dataset"], row)
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
    who = f"{p['annotators']} annotator{'s' if p['annotators'] != 1 else ''}"
    return f"{you} · **Everyone:** {p['anyone']:,} of {total:,} labeled ({who})"


def agreement_markdown(agr: labels.Agreement) -> str:
    def f(x, pct=False):
        if x is None:
            return "n/a"
        return f"{x:.0%}" if pct else f"{x:.3f}"

    if len(agr.annotators) < 2:
        return (f"**{escape(agr.dataset)}**: {len(agr.annotators)} annotator(s), {agr.judged:,} pairs judged. "
                "Agreement needs two annotators labeling the same pairs.")
    lines = [f"**{escape(agr.dataset)}** · {len(agr.annotators)} annotators · {agr.items:,} pairs judged by two or "
             f"more (of {agr.judged:,} judged)", ""]
    if len(agr.annotators) == 2:
        lines.append(f"- **Cohen's kappa:** {f(agr.kappa)} (scikit-learn)")
    lines.append(f"- **Krippendorff's alpha** (nominal): {f(agr.alpha)} (krippendorff)")
    lines.append(f"- **Raw agreement** (pairs of annotators giving the same label): {f(agr.raw, True)}"
                 f" · unanimous pairs: {f(agr.unanimous, True)}")
    lines.append(f"- **Disagreements:** {len(agr.disagreements):,} pairs — click one below to open it")
    if any(x is None for x in (agr.alpha,)) and agr.items:
        lines.append("\n_n/a: every label given is the same, so chance-corrected agreement is undefined._")
    return "\n".join(lines)


def agreement_figure(agr: labels.Agreement):
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    names = agr.annotators
    in_pairs = sorted({p["a"] for p in agr.pairwise} | {p["b"] for p in agr.pairwise}, key=names.index)
    two = len(in_pairs) >= 2
    fig = make_subplots(rows=1, cols=2 if two else 1, column_widths=[0.55, 0.45] if two else None,
                        subplot_titles=["Labels per annotator"] + (
                            [f"Pairwise Cohen's kappa{' (the busiest annotators)' if len(in_pairs) < len(names) else ''}"]
                            if two else []))
    colors = {"chosen": "#16a34a", "rejected": "#dc2626", "tie": "#6b7280", "both_bad": "#f59e0b"}
    for lab in labels.JUDGMENTS:
        fig.add_trace(go.Bar(name=labels.BY_NAME[lab].title, x=names, y=[agr.counts[a].get(lab, 0) for a in names],
                             marker_color=colors[lab]), row=1, col=1)
    fig.update_layout(barmode="stack", height=360, margin=dict(l=40, r=20, t=40, b=40),
                      legend=dict(orientation="h", y=-0.15))
    if two:
        idx = {a: i for i, a in enumerate(in_pairs)}
        z = [[1.0 if i == j else None for j in range(len(in_pairs))] for i in range(len(in_pairs))]
        text = [["" for _ in in_pairs] for _ in in_pairs]
        for p in agr.pairwise:
            i, j = idx[p["a"]], idx[p["b"]]
            for (x, y) in ((i, j), (j, i)):
                z[x][y] = p["kappa"]
                text[x][y] = "n/a" if p["kappa"] is None else f"{p['kappa']:.2f} (n={p['n']})"
        fig.add_trace(go.Heatmap(z=z, x=in_pairs, y=in_pairs, text=text, texttemplate="%{text}", zmin=-1, zmax=1,
                                 colorscale="RdYlGn", showscale=False, hoverinfo="skip"), row=1, col=2)
        fig.update_yaxes(autorange="reversed", row=1, col=2)
    return fig


def confusion_table(db: Database, dataset: str, a: str | None, b: str | None) -> list[list]:
    if not a or not b or a == b:
        return []
    names, m = labels.confusion(db, dataset, a, b)
    return [[f"{a}: {labels.BY_NAME[names[i]].title}", *m[i]] for i in range(len(names))]


def disagreement_table(agr: labels.Agreement) -> list[list]:
    return [
        [d["row"], ", ".join(f"{a}: {labels.BY_NAME[lab].title}" for a, lab in d["labels"].items()),
         labels.BY_NAME[d["majority"]].title if d["majority"] else "no majority"]
        for d in agr.disagreements
    ]


def export_file(db: Database, dataset: str, style: str, source: str, file_type: str, labeled_only: bool,
                keep_ties: bool) -> tuple[str, labels.ExportSummary]:
    folder = Path(tempfile.mkdtemp(prefix="studio-export-"))
    out = folder / f"{dataset}-{style}.{file_type}"
    annotator = None if source in (None, "", "majority") else source
    summary = labels.export_pairs(db, dataset, out, style=style, annotator=annotator, labeled_only=labeled_only,
                                  keep_ties=keep_ties)
    return str(out), summary


def log_file(db: Database, dataset: str, file_type: str) -> tuple[str, labels.ExportSummary]:
    folder = Path(tempfile.mkdtemp(prefix="studio-export-"))
    out = folder / f"{dataset}-label-log.{file_type}"
    return str(out), labels.export_log(db, dataset, out)


def pair_datasets(db: Database) -> list[str]:
    return [d.name for d in db.datasets() if d.kind == "pairs"]


def who(typed: str | None, request: gr.Request | None = None) -> str:
    """The annotator: the logged-in user where the server has one, else the name typed in."""
    user = getattr(request, "username", None) if request is not None else None
    return labels.check_annotator(user or typed)


# -- the view ---------------------------------------------------------------------------------------


def build(studio: Studio) -> None:
    db = studio.db
    pairs = pair_datasets(db)
    with gr.Tab("Compare", id=TAB_ID) as tab:
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
        with gr.Tabs(elem_id="cmp-tabs") as inner:
            with gr.Tab("Label", id="label"):
                with gr.Column(elem_id="cmp-keys"):
                    with gr.Row(equal_height=True):
                        title = gr.Markdown(elem_id="cmp-title")
                        progress = gr.Markdown(elem_id="cmp-progress")
                    row_shown = gr.Number(value=None, visible=False, precision=0, elem_id="cmp-row")
                    with gr.Accordion("Earlier turns", open=False, visible=False, elem_id="cmp-earlier-box") as earlier_box:
                        earlier = chatbot(show_label=False, height="auto", max_height=360, elem_id="cmp-earlier")
                    prompt = chatbot(label="Prompt", height="auto", max_height=240, min_height=60,
                                      elem_id="cmp-prompt", layout="panel")
                    with gr.Row(equal_height=True):
                        with gr.Column():
                            chosen = chatbot(label="Chosen (in the source) · key 1 if better", height="auto",
                                              min_height=140, max_height=480, elem_id="cmp-chosen", layout="panel")
                            chosen_len = gr.Markdown(elem_id="cmp-chosen-len", elem_classes="cmp-len")
                        with gr.Column():
                            rejected = chatbot(label="Rejected (in the source) · key 2 if better", height="auto",
                                                min_height=140, max_height=480, elem_id="cmp-rejected", layout="panel")
                            rejected_len = gr.Markdown(elem_id="cmp-rejected-len", elem_classes="cmp-len")
                    with gr.Row(elem_id="cmp-labels"):
                        buttons = {
                            lab.name: gr.Button(f"{lab.key} · {lab.title}", elem_id=f"cmp-label-{lab.name}",
                                                variant="primary" if lab.name in ("chosen", "rejected") else "secondary",
                                                size="md")
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
                        tags = gr.Dropdown(label="Tags", choices=labels.DEFAULT_TAGS, multiselect=True,
                                           allow_custom_value=True, value=[], elem_id="cmp-tags", scale=2)
                        note = gr.Textbox(label="Note (N to type, Esc to leave)", lines=1, max_lines=4,
                                          elem_id="cmp-note", scale=3)
                    diff_toggle = gr.Checkbox(label="Word diff of the two responses (D)", value=False,
                                              elem_id="cmp-diff-toggle")
                    diff_box = gr.HTML(visible=False, elem_id="cmp-diff")
                    with gr.Accordion("Pair metadata", open=False):
                        metadata = gr.JSON(show_label=False, elem_id="cmp-metadata")
            with gr.Tab("Agreement", id="agreement") as agreement_tab:
                with gr.Row(equal_height=False):
                    agr_annotators = gr.Dropdown(label="Annotators (empty: everyone)", multiselect=True, choices=[],
                                                 scale=4, elem_id="agr-annotators")
                    agr_go = gr.Button("Compute agreement", variant="primary", scale=1, elem_id="agr-compute")
                agr_summary = gr.Markdown(elem_id="agr-summary")
                agr_plot = gr.Plot(elem_id="agr-plot", show_label=False)
                gr.Markdown("#### Confusion table (first annotator's labels down, second's across)")
                with gr.Row():
                    conf_a = gr.Dropdown(label="First annotator", choices=[], elem_id="agr-a")
                    conf_b = gr.Dropdown(label="Second annotator", choices=[], elem_id="agr-b")
                conf_table = gr.Dataframe(headers=["", *(labels.BY_NAME[x].title for x in labels.JUDGMENTS)],
                                          interactive=False, elem_id="agr-confusion")
                gr.Markdown("#### Disagreements (click a row to open the pair)")
                dis_table = gr.Dataframe(headers=["row", "labels", "majority"], interactive=False, wrap=True,
                                         elem_id="agr-disagreements", column_widths=["10%", "70%", "20%"])
            with gr.Tab("Export", id="export") as export_tab:
                gr.Markdown(
                    "Every pair of the dataset in source order with its current preference applied, in TRL's "
                    "preference format: a flip (*rejected is better*) swaps chosen and rejected; ties, both-bad, "
                    "skips and pairs without a majority are left out unless kept. Extra columns `source_row` and "
                    "`human_label` say where each row came from."
                )
                with gr.Row():
                    exp_style = gr.Radio(label="Format", choices=list(labels.STYLES), value="conversational",
                                         elem_id="exp-style")
                    exp_source = gr.Dropdown(label="Labels from", choices=[("majority of annotators", "majority")],
                                             value="majority", elem_id="exp-source")
                    exp_type = gr.Radio(label="File", choices=["jsonl", "parquet"], value="jsonl", elem_id="exp-type")
                with gr.Row():
                    exp_labeled = gr.Checkbox(label="Labeled pairs only", value=False, elem_id="exp-labeled-only")
                    exp_ties = gr.Checkbox(label="Keep ties, both-bad and skips (as in the source)", value=False,
                                           elem_id="exp-keep-ties")
                with gr.Row():
                    exp_go = gr.Button("Export pairs", variant="primary", elem_id="exp-go")
                    log_go = gr.Button("Export the raw label log", elem_id="exp-log")
                exp_summary = gr.Markdown(elem_id="exp-summary")
                exp_file = gr.File(label="Download", elem_id="exp-file", interactive=False)
                with gr.Row(visible=bool(labels.hub_token())):
                    hub_repo = gr.Textbox(label="Push to Hub dataset repo (owner/name)", elem_id="exp-hub-repo", scale=3)
                    hub_go = gr.Button("Push to Hub", scale=1, elem_id="exp-hub-go")

        # -- rendering ------------------------------------------------------------------------------

        pair_outputs = [state, title, progress, row_shown, prompt, earlier_box, earlier, chosen, rejected, chosen_len,
                        rejected_len, diff_box, metadata, mine, status]
        reset_outputs = [confidence, note, tags]

        def render(st: dict, name: str | None, with_diff: bool, reset: bool = False) -> list:
            row = current_row(st)
            v = pair_view(db, st.get("dataset"), row, with_diff)
            stamp = time.strftime("%H:%M:%S")
            message = st.get("message") or ""
            out = [
                st,
                title_markdown(db, st, name),
                progress_markdown(db, st, name),
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
                mine_markdown(db, st, name),
                f"<small>{stamp}</small> {message}" if message else "",
            ]
            if reset:
                out += [0, "", []]
            return out

        def name_or_none(typed, request: gr.Request | None = None):
            try:
                return who(typed, request)
            except LabelError:
                return None

        # -- starting a queue -----------------------------------------------------------------------

        def start_queue(ds, mode, q, typed, with_diff, request: gr.Request):
            name = name_or_none(typed, request)
            st = new_queue(db, ds, mode, q if mode == "search" else None, name)
            return render(st, name, with_diff, reset=True)

        start_inputs = [dataset, queue, query, annotator, diff_toggle]
        dataset.input(start_queue, start_inputs, pair_outputs + reset_outputs)
        start.click(start_queue, start_inputs, pair_outputs + reset_outputs)
        query.submit(start_queue, start_inputs, pair_outputs + reset_outputs)

        def pick_queue(ds, mode, q, typed, with_diff, request: gr.Request):
            if mode == "search" and not (q or "").strip():
                return [gr.update(visible=True), *[gr.update()] * len(pair_outputs), *[gr.update()] * 3]
            return [gr.update(visible=mode == "search"), *start_queue(ds, mode, q, typed, with_diff, request)]

        queue.input(pick_queue, start_inputs, [query, *pair_outputs, *reset_outputs])

        # -- the annotator, remembered in the browser ----------------------------------------------

        def commit_name(typed, st, with_diff, request: gr.Request):
            try:
                name = who(typed, request)
            except LabelError as err:
                if not (typed or "").strip():
                    return ["", *render(st, None, with_diff)]
                st = dict(st) | {"message": f"⚠️ {err}"}
                return [gr.update(), *render(st, None, with_diff)]
            if st.get("auto") and st.get("rows"):
                st = dict(st)
                st["pos"] = _resume(db, st, name)
            return [name, *render(st, name, with_diff)]

        # the browser keeps the name in localStorage: saved as the box is left, read back on page load
        remember = f"(name, st, d) => {{ try {{ localStorage.setItem({ANNOTATOR_KEY!r}, (name || '').trim()); }} " \
                   "catch (e) {} return [name, st, d]; }"
        annotator.submit(commit_name, [annotator, state, diff_toggle], [annotator, *pair_outputs], js=remember)
        annotator.blur(commit_name, [annotator, state, diff_toggle], [annotator, *pair_outputs], js=remember)

        def on_page_load(stored, request: gr.Request):
            params = query_params(request)
            choices = pair_datasets(db)
            name = name_or_none(stored, request)
            ds = params.get("dataset") if params.get("tab") == TAB_ID else None
            if ds not in choices:
                ds = choices[0] if choices else None
            mode = params.get("queue") or ("search" if params.get("q") else "unlabeled")
            mode = mode if mode in labels.QUEUES else "unlabeled"
            q = params.get("q") or ""
            row = as_int(params.get("row"), -1) if params.get("tab") == TAB_ID and "row" in params else None
            st = new_queue(db, ds, mode, q, name, row if row is not None and row >= 0 else None)
            return [gr.update(choices=choices, value=ds), name or (stored or ""), gr.update(value=mode),
                    gr.update(value=q, visible=mode == "search"), *render(st, name, False, reset=True)]

        from gradio.context import Context

        recall = f"(name) => {{ try {{ return [localStorage.getItem({ANNOTATOR_KEY!r}) || '']; }} catch (e) {{ return ['']; }} }}"
        Context.root_block.load(on_page_load, [annotator],
                                [dataset, annotator, queue, query, *pair_outputs, *reset_outputs], js=recall)

        def select_tab(request: gr.Request):
            return gr.update(selected=TAB_ID) if query_params(request).get("tab") == TAB_ID else gr.update()

        studio.on_load.append((select_tab, [studio.tabs]))

        # -- labeling ---------------------------------------------------------------------------------

        def do_label(label):
            def handler(st, typed, conf, nt, tg, shown, with_diff, request: gr.Request):
                try:
                    name = who(typed, request)
                    st = label_current(db, st, label, name, conf, nt, tg, as_int(shown, -1) if shown is not None else None)
                except LabelError as err:
                    st = dict(st) | {"message": f"⚠️ {err}"}
                    return render(st, name_or_none(typed, request), with_diff) + [gr.update()] * 3
                return render(st, name, with_diff, reset=True)

            return handler

        label_inputs = [state, annotator, confidence, note, tags, row_shown, diff_toggle]
        for lab, button in buttons.items():
            button.click(do_label(lab), label_inputs, pair_outputs + reset_outputs, trigger_mode="once",
                         show_progress="hidden")

        def do_undo(st, typed, with_diff, request: gr.Request):
            try:
                name = who(typed, request)
                st = undo_last(db, st, name)
            except LabelError as err:
                st = dict(st) | {"message": f"⚠️ {err}"}
                return render(st, name_or_none(typed, request), with_diff)
            return render(st, name, with_diff)

        undo_btn.click(do_undo, [state, annotator, diff_toggle], pair_outputs, trigger_mode="once",
                       show_progress="hidden")

        def do_move(step):
            def handler(st, typed, with_diff, request: gr.Request):
                return render(move(st, step), name_or_none(typed, request), with_diff, reset=True)

            return handler

        prev_btn.click(do_move(-1), [state, annotator, diff_toggle], pair_outputs + reset_outputs,
                       show_progress="hidden")
        next_btn.click(do_move(+1), [state, annotator, diff_toggle], pair_outputs + reset_outputs,
                       show_progress="hidden")

        def toggle_diff(st, with_diff):
            row = current_row(st)
            if not with_diff or row is None:
                return gr.update(visible=False)
            return gr.update(value=pair_view(db, st["dataset"], row, True)["diff"], visible=True)

        diff_toggle.change(toggle_diff, [state, diff_toggle], diff_box)

        # -- agreement ----------------------------------------------------------------------------------

        def compute_agreement(ds, chosen_names, a, b):
            if not ds:
                return "Pick a dataset.", None, gr.update(), gr.update(), gr.update(), [], [], gr.update()
            try:
                agr = labels.agreement(db, ds, chosen_names or None)
            except LabelError as err:
                return f"⚠️ {escape(err)}", None, gr.update(), gr.update(), gr.update(), [], [], gr.update()
            everyone = db.label_annotators(ds)
            pair = busiest_or(agr, a, b)
            return (
                agreement_markdown(agr),
                agreement_figure(agr) if agr.annotators else None,
                gr.update(choices=everyone, value=[x for x in (chosen_names or []) if x in everyone]),
                gr.update(choices=agr.annotators, value=pair[0] if pair else None),
                gr.update(choices=agr.annotators, value=pair[1] if pair else None),
                confusion_table(db, ds, *pair) if pair else [],
                disagreement_table(agr),
                [d["row"] for d in agr.disagreements],
            )

        def busiest_or(agr, a, b):
            if a in agr.annotators and b in agr.annotators and a != b:
                return a, b
            return labels.busiest_pair(agr)

        dis_rows = gr.State([])
        agr_outputs = [agr_summary, agr_plot, agr_annotators, conf_a, conf_b, conf_table, dis_table, dis_rows]
        agr_go.click(compute_agreement, [dataset, agr_annotators, conf_a, conf_b], agr_outputs)
        agreement_tab.select(compute_agreement, [dataset, agr_annotators, conf_a, conf_b], agr_outputs)
        conf_a.input(lambda ds, a, b: confusion_table(db, ds, a, b), [dataset, conf_a, conf_b], conf_table)
        conf_b.input(lambda ds, a, b: confusion_table(db, ds, a, b), [dataset, conf_a, conf_b], conf_table)

        def open_disagreement(ds, rows, typed, with_diff, evt: gr.SelectData, request: gr.Request):
            row = as_int((evt.row_value or [None])[0], -1)
            name = name_or_none(typed, request)
            st = new_queue(db, ds, "disagreements", None, name, row if row >= 0 else None)
            if rows and row in rows:  # the list as shown (it may be among some annotators only)
                st["rows"], st["pos"] = list(rows), list(rows).index(row)
            return [gr.update(selected="label"), gr.update(value="disagreements"), gr.update(visible=False),
                    *render(st, name, with_diff, reset=True)]

        dis_table.select(open_disagreement, [dataset, dis_rows, annotator, diff_toggle],
                         [inner, queue, query, *pair_outputs, *reset_outputs])

        # -- export -------------------------------------------------------------------------------------

        def refresh_sources(ds):
            names = db.label_annotators(ds) if ds else []
            return gr.update(choices=[("majority of annotators", "majority"), *[(n, n) for n in names]])

        export_tab.select(refresh_sources, dataset, exp_source)
        dataset.input(refresh_sources, dataset, exp_source)
        # datasets ingested since the page opened appear when the tab is opened again
        def refresh_datasets(ds):
            choices = pair_datasets(db)
            return gr.update(choices=choices, value=ds if ds in choices else (choices[0] if choices else None))

        tab.select(refresh_datasets, dataset, dataset)

        def do_export(ds, style, source, file_type, labeled_only, keep_ties):
            if not ds:
                return "Pick a dataset.", None
            try:
                path, summary = export_file(db, ds, style, source, file_type, labeled_only, keep_ties)
            except LabelError as err:
                return f"⚠️ {escape(err)}", None
            return "✅ " + escape(summary.describe().replace(summary.out, Path(summary.out).name)), path

        exp_go.click(do_export, [dataset, exp_style, exp_source, exp_type, exp_labeled, exp_ties],
                     [exp_summary, exp_file])

        def do_log(ds, file_type):
            if not ds:
                return "Pick a dataset.", None
            try:
                path, summary = log_file(db, ds, file_type)
            except LabelError as err:
                return f"⚠️ {escape(err)}", None
            return "✅ " + escape(summary.describe().replace(summary.out, Path(summary.out).name)), path

        log_go.click(do_log, [dataset, exp_type], [exp_summary, exp_file])

        def do_push(ds, style, source, file_type, labeled_only, keep_ties, repo):
            try:
                path, summary = export_file(db, ds, style, source, file_type, labeled_only, keep_ties)
                url = labels.push_to_hub(path, (repo or "").strip())
            except LabelError as err:
                return f"⚠️ {escape(err)}", None
            return f"✅ {summary.rows:,} pairs pushed to [{escape(url)}]({escape(url)})", path

        hub_go.click(do_push, [dataset, exp_style, exp_source, exp_type, exp_labeled, exp_ties, hub_repo],
                     [exp_summary, exp_file])

        # -- the scripting API ------------------------------------------------------------------------

        def label(dataset: str, row: int, label: str, annotator: str) -> dict:
            """Record ANNOTATOR's LABEL (chosen, rejected, tie, both_bad or skip) of pair ROW (0-based source row)."""
            try:
                event = labels.add_label(db, dataset, row, label, annotator, options={"via": "api"})
            except LabelError as err:
                raise gr.Error(str(err)) from None
            return event | {"created_at": event["created_at"].isoformat()}

        def next_pair(dataset: str, annotator: str) -> int | None:
            """The next pair (0-based source row) ANNOTATOR should label in DATASET; None when all are labeled."""
            try:
                return labels.next_row(db, dataset, annotator)
            except LabelError as err:
                raise gr.Error(str(err)) from None

        gr.api(label, api_name="label")
        gr.api(next_pair, api_name="next_pair")
