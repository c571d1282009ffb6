"""The export screen of the Compare tab: pairs with their labels applied (TRL's preference format) or
the raw label log, as a download, and a push to the Hub where the server has a token."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from .. import labels
from ..labels import LabelError
from ..names import InvalidName, check_dataset_name
from ..store import Database
from .common import escape, requires
from .label import Controls
from ..policies import DATASET, LABEL

MAJORITY = "majority"

# -- plain functions (what the handlers call; tests call them too) ---------------------------------


@dataclass
class ExportRequest:
    """What the export screen asks for."""

    dataset: str
    style: str = "conversational"  # or "standard"
    source: str = MAJORITY  # "majority", or an annotator's name
    file_type: str = "jsonl"  # or "parquet"
    labeled_only: bool = False
    keep_ties: bool = False


def _folder() -> Path:
    return Path(tempfile.mkdtemp(prefix="studio-export-"))


def export_file(db: Database, req: ExportRequest) -> tuple[str, labels.ExportSummary]:
    """Export as ``req`` asks into a fresh temporary folder; the file's path and the summary."""
    try:
        name = check_dataset_name(req.dataset)
    except InvalidName as err:
        raise LabelError(str(err)) from None
    out = _folder() / f"{name}-{req.style}.{req.file_type}"
    annotator = None if req.source in (None, "", MAJORITY) else req.source
    summary = labels.export_pairs(db, name, out, style=req.style, annotator=annotator,
                                  labeled_only=req.labeled_only, keep_ties=req.keep_ties)
    return str(out), summary


def log_file(db: Database, dataset: str, file_type: str) -> tuple[str, labels.ExportSummary]:
    try:
        name = check_dataset_name(dataset)
    except InvalidName as err:
        raise LabelError(str(err)) from None
    out = _folder() / f"{name}-label-log.{file_type}"
    return str(out), labels.export_log(db, name, out)


def summary_markdown(summary: labels.ExportSummary) -> str:
    return "✅ " + escape(summary.describe().replace(summary.out, Path(summary.out).name))


def source_choices(db: Database, dataset: str | None) -> list[tuple[str, str]]:
    names = labels.label_annotators(db, dataset) if dataset else []
    return [("majority of annotators", MAJORITY), *[(n, n) for n in names]]


# -- the view ---------------------------------------------------------------------------------------


def build(db: Database, controls: Controls, tab: gr.Tab) -> None:
    """The export screen's layout (inside ``tab``) and its event wiring."""
    gr.Markdown(
        "Every pair of the dataset in source order with its current preference applied, in TRL's "
        "preference format: a flip (*rejected is better*) swaps chosen and rejected; ties, both-bad, "
        "skips and pairs without a majority are left out unless kept. Extra columns `source_row` and "
        "`human_label` say where each row came from."
    )
    with gr.Row():
        style = gr.Radio(label="Format", choices=list(labels.STYLES), value="conversational", elem_id="exp-style")
        source = gr.Dropdown(label="Labels from", choices=source_choices(db, None), value=MAJORITY,
                             elem_id="exp-source")
        file_type = gr.Radio(label="File", choices=["jsonl", "parquet"], value="jsonl", elem_id="exp-type")
    with gr.Row():
        labeled_only = gr.Checkbox(label="Labeled pairs only", value=False, elem_id="exp-labeled-only")
        keep_ties = gr.Checkbox(label="Keep ties, both-bad and skips (as in the source)", value=False,
                                elem_id="exp-keep-ties")
    with gr.Row():
        export_go = gr.Button("Export pairs", variant="primary", elem_id="exp-go")
        log_go = gr.Button("Export the raw label log", elem_id="exp-log")
    summary = gr.Markdown(elem_id="exp-summary")
    download = gr.File(label="Download", elem_id="exp-file", interactive=False)
    with gr.Row(visible=bool(labels.hub_token())):
        hub_repo = gr.Textbox(label="Push to Hub dataset repo (owner/name)", elem_id="exp-hub-repo", scale=3)
        hub_go = gr.Button("Push to Hub", scale=1, elem_id="exp-hub-go")

    @requires(LABEL.agreement)
    def refresh_sources(dataset):
        return gr.update(choices=source_choices(db, dataset))

    tab.select(refresh_sources, controls.dataset, source)
    controls.dataset.input(refresh_sources, controls.dataset, source)

    request_inputs = [controls.dataset, style, source, file_type, labeled_only, keep_ties]

    @requires(DATASET.export)
    def do_export(dataset, style, source, file_type, labeled_only, keep_ties):
        if not dataset:
            return "Pick a dataset.", None
        try:
            path, done = export_file(db, ExportRequest(dataset, style, source, file_type, labeled_only, keep_ties))
        except LabelError as err:
            return f"⚠️ {escape(err)}", None
        return summary_markdown(done), path

    export_go.click(do_export, request_inputs, [summary, download])

    @requires(LABEL.export_log)
    def do_log(dataset, file_type):
        if not dataset:
            return "Pick a dataset.", None
        try:
            path, done = log_file(db, dataset, file_type)
        except LabelError as err:
            return f"⚠️ {escape(err)}", None
        return summary_markdown(done), path

    log_go.click(do_log, [controls.dataset, file_type], [summary, download])

    @requires(DATASET.push)
    def do_push(dataset, style, source, file_type, labeled_only, keep_ties, repo):
        try:
            path, done = export_file(db, ExportRequest(dataset, style, source, file_type, labeled_only, keep_ties))
            url = labels.push_to_hub(path, (repo or "").strip())
        except LabelError as err:
            return f"⚠️ {escape(err)}", None
        return f"✅ {done.rows:,} pairs pushed to [{escape(url)}]({escape(url)})", path

    hub_go.click(do_push, [*request_inputs, hub_repo], [summary, download])
