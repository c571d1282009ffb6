"""Data: ingest a file, folder or Hub dataset, with progress and the ingest summary."""

from __future__ import annotations

import gradio as gr

from ..ingest import IngestError, empty_side_counts, ingest
from ..store import Database
from .common import Studio, escape, requires

TAB_ID = "data"
TABLE_COLUMNS = ["name", "kind", "format", "rows", "rejected", "empty side", "version", "source", "updated"]


def datasets_table(db: Database) -> list[list]:
    flagged = empty_side_counts(db)
    return [
        [d.name, d.kind, d.format, d.row_count, d.rejected_count, flagged.get(d.name, 0), d.version,
         d.source or "", str(d.updated_at)[:19]]
        for d in db.datasets()
    ]


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
    lines.append(f"\n[Browse it](?dataset={escape(summary.name)}&row=0)")
    return "\n".join(lines)


def build(studio: Studio) -> None:
    db = studio.db
    with gr.Tab("Data", id=TAB_ID):
        gr.Markdown(
            "Load a local **file or folder** (jsonl, jsonl.gz, json, parquet, csv, `save_to_disk`) or a "
            "**Hugging Face dataset id**. The format is detected; for other schemas give a column mapping "
            "such as `prompt=question chosen=response_j rejected=response_k`."
        )
        with gr.Row():
            source = gr.Textbox(label="Path or Hub dataset id", placeholder="data/my-pairs.jsonl or org/dataset",
                                scale=3, elem_id="data-source")
            name = gr.Textbox(label="Name (optional)", scale=1, elem_id="data-name")
        with gr.Row():
            split = gr.Textbox(label="Split (Hub)", placeholder="train", scale=1)
            config = gr.Textbox(label="Config (Hub)", scale=1)
            mapping = gr.Textbox(label="Column mapping (optional)", placeholder="prompt=question chosen=a rejected=b",
                                 scale=2, elem_id="data-mapping")
        go = gr.Button("Ingest", variant="primary", elem_id="data-ingest")
        result = gr.Markdown(elem_id="data-result")
        gr.Markdown("### Datasets")
        table = gr.Dataframe(value=datasets_table(db), headers=TABLE_COLUMNS, interactive=False, elem_id="data-table")

        @requires("admin", "loading data")
        def run(src, nm, sp, cf, mp, progress=gr.Progress()):
            if not (src or "").strip():
                return "⚠️ Give a path or a Hub dataset id.", gr.update()
            try:
                summary = ingest(
                    db, src.strip(), name=(nm or "").strip() or None, split=(sp or "").strip() or None,
                    config=(cf or "").strip() or None, mapping=(mp or "").split() or None,
                    progress=lambda frac, desc: progress(frac, desc=desc),
                )
            except IngestError as err:
                return f"❌ {escape(err)}", gr.update()
            return summary_markdown(summary), datasets_table(db)

        @requires("viewer", "listing datasets")
        def refresh():
            return datasets_table(db)

        go.click(run, [source, name, split, config, mapping], [result, table], api_name="ingest")
        studio.on_load.append((refresh, [table]))
