"""Data: load an uploaded file, a Hub dataset or (admins) a file of the server's data folder, with
progress and the ingest summary; the ``/datasets`` API lists what is loaded."""

from __future__ import annotations

import os
from pathlib import Path

import gradio as gr

from .. import search
from ..ingest import IngestError, empty_side_counts, ingest
from ..store import Database
from .common import Studio, dataset_change, escape, requires
from ..policies import DATASET
from .. import catalogue

TAB_ID = "data"
TABLE_COLUMNS = ["name", "kind", "format", "rows", "rejected", "empty side", "version", "source", "updated"]


def shown_source(source: str | None) -> str:
    """A dataset's source as the page shows it: a Hub id as it is, a file of the server by its name only
    (where the server keeps its files is nobody's business).

    >>> shown_source("/srv/data/pairs.jsonl"), shown_source("org/pairs")
    ('pairs.jsonl', 'org/pairs')
    """
    if not source:
        return ""
    return Path(source).name if source.startswith(("/", ".", "~")) or os.path.exists(source) else source


def datasets_table(db: Database) -> list[list]:
    flagged = empty_side_counts(db)
    return [
        [d.name, d.kind, d.format, d.row_count, d.rejected_count, flagged.get(d.name, 0), d.version,
         shown_source(d.source), str(d.updated_at)[:19]]
        for d in catalogue.datasets(db)
    ]


class SourceRefused(ValueError):
    """A source this caller may not load; the message says what they may load instead."""


def resolve_source(text: str | None, upload: str | None, mode: str, data_dir: str | None) -> tuple[str, bool]:
    """What to load and whether it must come from the Hub: ``(source, hub_only)``.

    An upload wins. In the local single-user mode (``open``) any path of this machine may be named.
    With sign-in, the box names a Hub dataset id, or a file or folder inside the data folder
    (``--data-dir``), never another file of the server.

    >>> resolve_source("org/pairs", None, "password", None)
    ('org/pairs', True)
    >>> resolve_source("/etc/passwd", None, "oauth", None)
    Traceback (most recent call last):
    ...
    components.views.data.SourceRefused: '/etc/passwd' is not a Hugging Face dataset id, and this app loads no server files (no --data-dir)
    """
    if upload:
        return str(upload), False
    text = (text or "").strip()
    if not text:
        raise SourceRefused("upload a file, or give a Hugging Face dataset id")
    if mode == "open":
        return text, False
    if data_dir:
        root = Path(os.path.realpath(data_dir))
        candidate = Path(os.path.realpath(root / text.lstrip("/")))
        if candidate.is_relative_to(root) and candidate.exists():
            return str(candidate), False
    if text.startswith((".", "/", "~", "\\")) or ".." in text or Path(text).suffix in (".jsonl", ".json", ".parquet",
                                                                                    ".csv", ".gz"):
        raise SourceRefused(f"{text!r} is not a Hugging Face dataset id, and this app loads "
                            + ("server files only from its data folder" if data_dir else "no server files (no --data-dir)"))
    return text, True


def summary_markdown(summary) -> str:
    lines = [
        f"### ✅ {escape(summary.name)}",
        f"{summary.rows_loaded:,} of {summary.rows_in:,} rows loaded as **{summary.kind}** "
        f"(format `{summary.format}`, version {summary.version}, {summary.seconds:.1f} s).",
    ]
    if summary.empty_side:
        lines.append(f"\n{summary.empty_side:,} pairs with an empty side (loaded, and flagged).")
    if summary.note:
        lines.append(f"\nNote: {escape(summary.note)}")
    if summary.rejected:
        lines.append("\nRows rejected (kept aside in the database with their reason):")
        lines += [f"- {n:,} × {escape(reason)}" for reason, n in summary.rejected.items()]
    if summary.rows_loaded:
        lines.append("\nIts search index is being built in the background (progress in the Search tab).")
    lines.append(f"\n[Browse it](?dataset={escape(summary.name)}&row=0)")
    return "\n".join(lines)


def build(studio: Studio) -> None:
    db = studio.db
    with gr.Tab("Data", id=TAB_ID):
        gr.Markdown(
            "**Upload a file** (jsonl, jsonl.gz, json, parquet, csv) or give a **Hugging Face dataset id**"
            + (" or a path on this machine (a file, a folder, a `save_to_disk` folder)" if studio.mode == "open"
               else " or a file of the data folder" if studio.data_dir else "")
            + ". The format is detected; for other schemas give a column mapping such as "
            "`prompt=question chosen=response_j rejected=response_k`."
            + (" Loading needs the admin role." if studio.mode != "open" else "")
        )
        with gr.Row():
            upload = gr.File(label="Upload a file", file_types=[".jsonl", ".json", ".parquet", ".csv", ".gz"],
                             type="filepath", scale=2, elem_id="data-upload")
            with gr.Column(scale=3):
                source = gr.Textbox(label="or a Hub dataset id" + (" or a server path" if studio.mode == "open" else
                                    " or a file in the data folder" if studio.data_dir else ""),
                                    placeholder="org/dataset" + ("  or  data/my-pairs.jsonl" if studio.mode == "open" else ""),
                                    elem_id="data-source")
                name = gr.Textbox(label="Name (optional)", elem_id="data-name")
        with gr.Row():
            split = gr.Textbox(label="Split (Hub)", placeholder="train", scale=1)
            config = gr.Textbox(label="Config (Hub)", scale=1)
            mapping = gr.Textbox(label="Column mapping (optional)", placeholder="prompt=question chosen=a rejected=b",
                                 scale=2, elem_id="data-mapping")
        go = gr.Button("Ingest", variant="primary", elem_id="data-ingest")
        result = gr.Markdown(elem_id="data-result")
        gr.Markdown("### Datasets")
        table = gr.Dataframe(value=datasets_table(db), headers=TABLE_COLUMNS, interactive=False, elem_id="data-table",
                             wrap=True)

        @requires(DATASET.load)
        def run(src, up, nm, sp, cf, mp, progress=gr.Progress()):
            try:
                where, hub_only = resolve_source(src, up, studio.mode, studio.data_dir)
                summary = ingest(
                    db, where, name=(nm or "").strip() or None, split=(sp or "").strip() or None,
                    config=(cf or "").strip() or None, mapping=(mp or "").split() or None,
                    progress=lambda frac, desc: progress(frac, desc=desc), hub_only=hub_only,
                )
            except (SourceRefused, IngestError) as err:
                return f"❌ {escape(err)}", gr.update(), gr.update()
            if summary.rows_loaded:  # searchable soon: the Search tab shows the build's progress
                search.index_in_background(db, [summary.name])
            return summary_markdown(summary), datasets_table(db), dataset_change("added", summary.name)

        @requires(DATASET.list)
        def refresh():
            return datasets_table(db)

        go.click(run, [source, upload, name, split, config, mapping], [result, table, studio.datasets_changed],
                 api_name="ingest")

        @requires(DATASET.list)
        def list_datasets() -> list[dict]:
            """Every loaded dataset: name, kind, format, rows, rejected rows, version, source."""
            return [d.as_dict() | {"source": shown_source(d.source)} for d in catalogue.datasets(db)]

        gr.api(list_datasets, api_name="datasets")
        studio.on_load.append((refresh, [table]))
