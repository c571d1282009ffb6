"""The project screen of the Compare tab (admins): a dataset's settings (overlap, guidelines) with
their history, gold pairs marked one by one or from a file, and the figures a lead needs to trust
the run: progress with the time left, and per annotator judgments, time per label, gold accuracy
and agreement (``labels.project``, ``labels.gold``, ``labels.team``)."""

from __future__ import annotations

import gradio as gr

from .. import labels
from ..labels import LabelError
from ..store import Database
from .common import as_int, escape, requires
from .label import Controls
from ..policies import LABEL, PROJECT
from .. import catalogue

NOT_GOLD = "not gold"

# -- plain functions (what the handlers call; tests call them too) ---------------------------------


def _share(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.0%}"


def team_table(db: Database, dataset: str) -> list[list]:
    """One row per annotator: judgments, skips, median time per label, gold accuracy, agreement."""
    return [[f["annotator"], f["judgments"], f["skips"],
             "n/a" if f["median_seconds"] is None else f"{f['median_seconds']:.1f} s",
             f"{_share(f['gold_accuracy'])} of {f['gold_judged']}" if f["gold_judged"] else "n/a",
             _share(f["agreement"])] for f in labels.annotator_figures(db, dataset)]


def progress_markdown(db: Database, dataset: str) -> str:
    p = labels.project_progress(db, dataset)
    lines = [f"**{escape(dataset)}** · {escape(labels.progress_line(p))}"]
    if p["annotators"]:
        lines.append("Per annotator: " + " · ".join(
            f"{escape(a['annotator'])} {a['judgments']:,}" + (f" (+{a['holding']} held)" if a["holding"] else "")
            for a in p["annotators"]))
    return "\n\n".join(lines)


def history_table(db: Database, dataset: str) -> list[list]:
    return [[str(h["set_at"])[:19], h["key"], h["set_by"] or "",
             (h["value"] if not isinstance(h["value"], str) else h["value"][:80]) if h["value"] not in (None, "")
             else "—"] for h in reversed(labels.setting_history(db, dataset))]


# -- the view ---------------------------------------------------------------------------------------


def build(db: Database, controls: Controls, tab: gr.Tab) -> None:
    """The project screen's layout (inside ``tab``) and its event wiring."""
    report = gr.Markdown(elem_id="prj-progress")
    team = gr.Dataframe(headers=["annotator", "judgments", "skips", "median time per label", "gold accuracy",
                                 "agreement with others"], interactive=False, elem_id="prj-team")
    with gr.Row(equal_height=False):
        with gr.Column(scale=3):
            guidelines = gr.Textbox(label="Guidelines (Markdown, shown beside each pair)", lines=8, max_lines=30,
                                    elem_id="prj-guidelines")
        with gr.Column(scale=1):
            overlap = gr.Number(label="Overlap: annotators per pair (0: everyone labels every pair)", precision=0,
                                minimum=0, elem_id="prj-overlap")
            save = gr.Button("Save settings", variant="primary", elem_id="prj-save")
    saved = gr.Markdown(elem_id="prj-saved")
    gr.Markdown("#### Gold pairs (a known answer; mixed into the queues unmarked)")
    with gr.Row(equal_height=False):
        gold_row = gr.Number(label="Row", precision=0, minimum=0, elem_id="prj-gold-row")
        gold_label = gr.Dropdown(label="Answer", choices=[(labels.BY_NAME[x].title, x) for x in labels.JUDGMENTS]
                                 + [(NOT_GOLD, NOT_GOLD)], value="chosen", elem_id="prj-gold-label")
        gold_mark = gr.Button("Mark", elem_id="prj-gold-mark", size="sm")
        gold_file = gr.File(label="Or a file: JSON lines or CSV with row, label (note)", file_types=[".jsonl", ".csv"],
                            elem_id="prj-gold-file")
    with gr.Accordion("Settings history", open=False):
        history = gr.Dataframe(headers=["when (UTC)", "setting", "by", "value"], interactive=False, wrap=True,
                               elem_id="prj-history")

    @requires(PROJECT.figures)
    def load(dataset):
        if not dataset or catalogue.dataset(db, dataset) is None:
            return ["Pick a dataset.", [], "", None, []]
        try:
            now = labels.project_settings(db, dataset)
            return [progress_markdown(db, dataset), team_table(db, dataset), now["guidelines"], now["overlap"] or 0,
                    history_table(db, dataset)]
        except LabelError as err:
            return [f"⚠️ {escape(err)}", [], "", None, []]

    shown = [report, team, guidelines, overlap, history]
    tab.select(load, controls.dataset, shown)

    @requires(PROJECT.settings)
    def save_settings(dataset, text, k, *, who=None):
        by = getattr(who, "name", None)
        try:
            now = labels.project_settings(db, dataset or "")
            changed = []
            if (k or None) != now["overlap"]:
                labels.set_setting(db, dataset, "overlap", as_int(k, 0), by)
                changed.append("overlap")
            if (text or "").strip() != now["guidelines"]:
                labels.set_setting(db, dataset, "guidelines", text, by)
                changed.append(f"guidelines (version {labels.guidelines_version(db, dataset)})")
        except LabelError as err:
            return [gr.update()] * len(shown) + [f"⚠️ {escape(err)}"]
        return load(dataset) + ["✅ Saved " + ", ".join(changed) + "." if changed else "Nothing changed."]

    save.click(save_settings, [controls.dataset, guidelines, overlap], [*shown, saved])

    @requires(LABEL.gold)
    def mark(dataset, row, answer, upload, *, who=None):
        by = getattr(who, "name", None)
        try:
            if upload:
                n = labels.import_gold(db, dataset or "", upload, by)
                said = f"✅ Marked {n:,} gold pairs from the file."
            else:
                labels.mark_gold(db, dataset or "", [(row, None if answer == NOT_GOLD else answer)], by)
                said = (f"✅ Row {as_int(row, 0)} is " + ("no longer gold." if answer == NOT_GOLD else
                                                        f"gold: {labels.BY_NAME[answer].title}."))
        except LabelError as err:
            return [gr.update()] * len(shown) + [f"⚠️ {escape(err)}", gr.update()]
        return load(dataset) + [said, None]

    gold_mark.click(mark, [controls.dataset, gold_row, gold_label, gold_file], [*shown, saved, gold_file])
