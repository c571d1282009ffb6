"""Browse: pick a dataset, page through its rows, open one (chat view with metadata beside it)."""

from __future__ import annotations

import math

import gradio as gr

from ..store import Database
from ..text import clip
from .common import Studio, as_int, chat, chatbot, dataset_choices, deep_link, escape, query_params, requires

TAB_ID = "browse"
PAGE_SIZE = 20
COLUMNS = {
    "pairs": (["row", "last prompt turn", "turns", "score chosen", "score rejected"],
              ["row", "preview", "turns", "score_chosen", "score_rejected"], ["7%", "63%", "10%", "10%", "10%"]),
    "conversations": (["row", "last user turn", "turns"], ["row", "preview", "turns"], ["7%", "83%", "10%"]),
    "documents": (["row", "id", "text", "characters"], ["row", "source_id", "preview", "characters"],
                  ["7%", "13%", "68%", "12%"]),
}


# -- plain functions (what the handlers call; tests call them too) -------------------------------


def dataset_summary(db: Database, name: str | None) -> str:
    info = db.dataset(name) if name else None
    if info is None:
        return "No dataset selected." if not name else f"No dataset named **{escape(name)}**."
    text = (
        f"**{escape(info.name)}** · {info.kind} · format `{info.format}` · "
        f"{info.row_count:,} rows · version {info.version}"
    )
    if info.rejected_count:
        reasons = ", ".join(f"{n:,} {escape(r)}" for r, n in info.rejected_reasons.items())
        text += f" · {info.rejected_count:,} rows rejected at ingest ({reasons})"
    return text


def page_rows(db: Database, name: str | None, page: int) -> tuple[dict, int, int]:
    """Page ``page`` (1-based, clamped) as a gr.Dataframe value, the page, and the number of pages."""
    info = db.dataset(name) if name else None
    headers, keys, _ = COLUMNS[info.kind if info else "pairs"]
    if info is None:
        return {"headers": headers, "data": []}, 1, 1
    pages = max(1, math.ceil(info.row_count / PAGE_SIZE))
    page = min(max(1, page), pages)
    rows = db.page(name, (page - 1) * PAGE_SIZE, PAGE_SIZE)
    data = [[clip(r[k]) if k == "preview" else r[k] for k in keys] for r in rows]
    return {"headers": headers, "data": data}, page, pages


def open_row(db: Database, name: str | None, row: int) -> dict:
    """Everything the row panel shows for source row ``row`` of dataset ``name``."""
    empty = {"found": False, "title": "", "kind": None, "chosen": [], "rejected": [], "text": "", "metadata": {}, "link": ""}
    info = db.dataset(name) if name else None
    if info is None:
        return empty | {"title": "Pick a dataset to browse."}
    rec = db.record(name, row)
    if rec is None:
        return empty | {"title": f"Row {row} is not in **{escape(name)}** (rejected at ingest, or past the end)."}
    meta = rec.get("metadata") or {}
    for key in ("score_chosen", "score_rejected", "source_id"):
        if rec.get(key) is not None:
            meta = {key: rec[key]} | meta
    out = empty | {
        "found": True,
        "kind": info.kind,
        "title": f"**{escape(name)}**, row {row}",
        "metadata": meta,
        "link": deep_link(name, row),
    }
    if info.kind == "documents":
        out["text"] = rec.get("text") or ""
    else:
        out["chosen"] = chat((rec.get("prompt") or []) + (rec.get("chosen") or []))
        out["rejected"] = chat((rec.get("prompt") or []) + (rec.get("rejected") or [])) if info.kind == "pairs" else []
    return out


# -- the view -------------------------------------------------------------------------------------


def build(studio: Studio) -> None:
    db = studio.db
    with gr.Tab("Browse", id=TAB_ID):
        with gr.Row():
            dataset = gr.Dropdown(label="Dataset", choices=dataset_choices(db), value=None, scale=3,
                                  elem_id="browse-dataset")
            refresh = gr.Button("↻ Refresh list", scale=0, size="sm")
        summary = gr.Markdown(elem_id="browse-summary")
        table = gr.Dataframe(headers=COLUMNS["pairs"][0], interactive=False, wrap=True, elem_id="browse-table",
                             max_height=520)
        with gr.Row():
            prev_btn = gr.Button("◀ Previous", size="sm")
            page = gr.Number(label="Page", value=1, precision=0, minimum=1, elem_id="browse-page", scale=0)
            pages = gr.Markdown("of 1", elem_id="browse-pages")
            next_btn = gr.Button("Next ▶", size="sm")
            row_box = gr.Number(label="Open row", value=0, precision=0, minimum=0, elem_id="browse-row", scale=0)
            open_btn = gr.Button("Open row", variant="primary", size="sm", elem_id="browse-open")
        title = gr.Markdown(elem_id="browse-row-title")
        with gr.Row(equal_height=True):
            with gr.Column(scale=3):
                with gr.Row():
                    chosen = chatbot(label="Chosen", height=520, elem_id="browse-chosen", visible=False)
                    rejected = chatbot(label="Rejected", height=520, elem_id="browse-rejected", visible=False)
                doc = gr.Textbox(label="Document", lines=6, max_lines=30, interactive=False, visible=False, elem_id="browse-doc")
            with gr.Column(scale=1):
                metadata = gr.JSON(label="Metadata", elem_id="browse-metadata")
                link = gr.Markdown(elem_id="browse-link")

        browsing = requires("viewer", "browsing")

        @browsing
        def show_page(name, wanted):
            rows, shown, count = page_rows(db, name, as_int(wanted, 1))
            info = db.dataset(name) if name else None
            widths = COLUMNS[info.kind if info else "pairs"][2]
            return gr.update(value=rows, column_widths=widths), shown, f"of {count:,} pages"

        @browsing
        def show_row(name, row):
            r = open_row(db, name, as_int(row))
            docs = r["kind"] == "documents"
            pairs = r["kind"] == "pairs"
            label = "Conversation" if r["kind"] == "conversations" else "Chosen"
            return (
                r["title"],
                gr.update(value=r["chosen"], visible=r["found"] and not docs, label=label),
                gr.update(value=r["rejected"], visible=r["found"] and pairs),
                gr.update(value=r["text"], visible=docs),
                r["metadata"],
                f"Link to this row: [{r['link']}]({r['link']})" if r["link"] else "",
            )

        row_outputs = [title, chosen, rejected, doc, metadata, link]

        @browsing
        def pick_dataset(name):
            return (dataset_summary(db, name), *show_page(name, 1), 0, *show_row(name, 0))

        dataset.input(pick_dataset, dataset, [summary, table, page, pages, row_box, *row_outputs])
        @browsing
        def refresh_list():
            return gr.update(choices=dataset_choices(db))

        @browsing
        def previous_page(name, current):
            return show_page(name, as_int(current, 1) - 1)

        @browsing
        def next_page(name, current):
            return show_page(name, as_int(current, 1) + 1)

        refresh.click(refresh_list, None, dataset)
        page.submit(show_page, [dataset, page], [table, page, pages])
        prev_btn.click(previous_page, [dataset, page], [table, page, pages])
        next_btn.click(next_page, [dataset, page], [table, page, pages])
        open_btn.click(show_row, [dataset, row_box], row_outputs)
        row_box.submit(show_row, [dataset, row_box], row_outputs)

        @browsing
        def pick_table_row(name, evt: gr.SelectData):
            row = as_int((evt.row_value or [0])[0])
            return (row, *show_row(name, row))

        table.select(pick_table_row, dataset, [row_box, *row_outputs])

        @browsing
        def on_load(request: gr.Request):
            params = query_params(request)
            choices = dataset_choices(db)
            name = params.get("dataset")
            if params.get("tab", TAB_ID) != TAB_ID or name not in choices:
                default = choices[0] if choices else None
                return (gr.update(choices=choices, value=default), gr.update(), *pick_dataset(default))
            row = as_int(params.get("row"), 0)
            return (
                gr.update(choices=choices, value=name),
                gr.update(selected=TAB_ID),
                dataset_summary(db, name),
                *show_page(name, 1 + (db.row_position(name, row) or 0) // PAGE_SIZE),
                row,
                *show_row(name, row),
            )

        studio.on_load.append(
            (on_load, [dataset, studio.tabs, summary, table, page, pages, row_box, *row_outputs])
        )
