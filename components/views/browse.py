"""Browse: pick a dataset, page through its rows, open one (chat view with metadata beside it); admins
rename and delete datasets here."""

from __future__ import annotations

import math

import gradio as gr

from .. import catalogue, labels
from ..labels import LabelError
from ..store import Database
from ..text import clip
from ..policies import DATASET
from .common import (READONLY_CSS, Studio, as_int, chat, chatbot, dataset_change, dataset_choices, deep_link, escape,
                     query_params, refreshed, requires, resolve_dataset, similar_links)

TAB_ID = "browse"
CSS = READONLY_CSS + """
#browse-manage { max-width: 900px; }
"""
SCROLL_TO_ROW = ("() => { const el = document.getElementById('browse-row-title'); "
                 "if (el) el.scrollIntoView({block: 'start', behavior: 'instant'}); }")
"""Run in the browser after a row opens: the row panel comes into view."""
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
    info = catalogue.dataset(db, name) if name else None
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
    info = catalogue.dataset(db, name) if name else None
    headers, keys, _ = COLUMNS[info.kind if info else "pairs"]
    if info is None:
        return {"headers": headers, "data": []}, 1, 1
    pages = max(1, math.ceil(info.row_count / PAGE_SIZE))
    page = min(max(1, page), pages)
    rows = catalogue.page(db, name, (page - 1) * PAGE_SIZE, PAGE_SIZE)
    data = [[clip(r[k]) if k == "preview" else r[k] for k in keys] for r in rows]
    return {"headers": headers, "data": data}, page, pages


def open_row(db: Database, name: str | None, row: int) -> dict:
    """Everything the row panel shows for source row ``row`` of dataset ``name``."""
    empty = {"found": False, "title": "", "kind": None, "prompt": [], "chosen": [], "rejected": [], "text": "",
             "metadata": {}, "link": ""}
    info = catalogue.dataset(db, name) if name else None
    if info is None:
        return empty | {"title": f"No dataset named **{escape(name)}**." if name else "Pick a dataset to browse."}
    rec = catalogue.record(db, name, row)
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
    elif info.kind == "pairs":  # the shared turns once, then the two responses side by side
        out["prompt"] = chat(rec.get("prompt") or [])
        out["chosen"] = chat(rec.get("chosen") or [])
        out["rejected"] = chat(rec.get("rejected") or [])
    else:
        out["chosen"] = chat((rec.get("prompt") or []) + (rec.get("chosen") or []))
    return out


# -- the view -------------------------------------------------------------------------------------


def build(studio: Studio) -> None:
    db = studio.db
    with gr.Tab("Browse", id=TAB_ID):
        with gr.Row():
            dataset = gr.Dropdown(label="Dataset", choices=dataset_choices(db), value=None, scale=3,
                                  allow_custom_value=True, elem_id="browse-dataset")  # the API: any loaded name
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
                prompt = chatbot(label="Prompt", height="auto", max_height=320, elem_id="browse-prompt", visible=False)
                with gr.Row():
                    chosen = chatbot(label="Chosen", height=460, elem_id="browse-chosen", visible=False)
                    rejected = chatbot(label="Rejected", height=460, elem_id="browse-rejected", visible=False)
                doc = gr.Textbox(label="Document", lines=6, max_lines=30, interactive=False, visible=False, elem_id="browse-doc")
            with gr.Column(scale=1):
                metadata = gr.JSON(label="Metadata", elem_id="browse-metadata")
                link = gr.Markdown(elem_id="browse-link")
        with gr.Accordion("Rename or delete this dataset (admins)", open=False, elem_id="browse-manage"):
            with gr.Row():
                new_name = gr.Textbox(label="New name", max_lines=1, elem_id="browse-new-name", scale=3)
                rename_btn = gr.Button("Rename", size="sm", elem_id="browse-rename", scale=1)
            with gr.Row():
                confirm = gr.Textbox(label="Type the dataset's name to delete it (its labels stay in the log)",
                                     max_lines=1, elem_id="browse-confirm", scale=3)
                delete_btn = gr.Button("Delete dataset", variant="stop", size="sm", elem_id="browse-delete", scale=1)
            manage_result = gr.Markdown(elem_id="browse-manage-result")

        browsing = requires(DATASET.read)

        @browsing
        def show_page(name, wanted):
            rows, shown, count = page_rows(db, name, as_int(wanted, 1))
            info = catalogue.dataset(db, name) if name else None
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
                gr.update(value=r["prompt"], visible=r["found"] and pairs and bool(r["prompt"])),
                gr.update(value=r["chosen"], visible=r["found"] and not docs, label=label),
                gr.update(value=r["rejected"], visible=r["found"] and pairs),
                gr.update(value=r["text"], visible=docs),
                r["metadata"],
                (f"Link to this row: [{r['link']}]({r['link']}) · "
                 + similar_links(name, as_int(row), queue=pairs)) if r["link"] else "",
            )

        row_outputs = [title, prompt, chosen, rejected, doc, metadata, link]

        @browsing
        def pick_dataset(name):
            return (dataset_summary(db, name), *show_page(name, 1), 0, *show_row(name, 0))

        picked = [summary, table, page, pages, row_box, *row_outputs]
        dataset.input(pick_dataset, dataset, picked)

        @browsing
        def follow_change(change, name):  # the list, and the open dataset when it was renamed or deleted
            change = change or {}
            listed = refreshed(dataset_choices(db), name, change)
            if name != change.get("dataset") or change.get("event") not in ("renamed", "deleted"):
                return [listed, *[gr.update()] * len(picked)]
            return [listed, *pick_dataset(listed["value"])]

        studio.lists.append((dataset, lambda: dataset_choices(db)))
        studio.datasets_changed.change(follow_change, [studio.datasets_changed, dataset], [dataset, *picked],
                                       show_progress="hidden")

        @browsing
        def refresh_list(name):
            return gr.update(choices=dataset_choices(db), value=name if catalogue.dataset(db, name or "") else None)

        @browsing
        def previous_page(name, current):
            return show_page(name, as_int(current, 1) - 1)

        @browsing
        def next_page(name, current):
            return show_page(name, as_int(current, 1) + 1)

        refresh.click(refresh_list, dataset, dataset)
        page.submit(show_page, [dataset, page], [table, page, pages])
        prev_btn.click(previous_page, [dataset, page], [table, page, pages])
        next_btn.click(next_page, [dataset, page], [table, page, pages])
        for event in (open_btn.click, row_box.submit):
            event(show_row, [dataset, row_box], row_outputs).then(None, js=SCROLL_TO_ROW)

        @browsing
        def pick_table_row(name, evt: gr.SelectData):
            row = as_int((evt.row_value or [0])[0])
            return (row, *show_row(name, row))

        table.select(pick_table_row, dataset, [row_box, *row_outputs]).then(None, js=SCROLL_TO_ROW)

        @requires(DATASET.rename)
        def rename(name, new):
            try:
                done = labels.rename_dataset(db, name, (new or "").strip())
            except LabelError as err:
                return f"⚠️ {escape(err)}", gr.update(), gr.update()
            return (f"Renamed **{escape(done['was'])}** to **{escape(done['dataset'])}** (its rows, labels, settings "
                    "and index moved).", "", dataset_change("renamed", done["was"], done["dataset"]))

        @requires(DATASET.delete)
        def delete(name, typed):
            if not name or (typed or "").strip() != name:
                return "Type the dataset's name in the box to delete it.", gr.update(), gr.update()
            try:
                done = labels.delete_dataset(db, name)
            except LabelError as err:
                return f"⚠️ {escape(err)}", gr.update(), gr.update()
            return (f"Deleted **{escape(name)}** ({done['rows']:,} rows); its {done['label_events_kept']:,} label "
                    "events stay in the log.", "", dataset_change("deleted", name))

        rename_btn.click(rename, [dataset, new_name], [manage_result, new_name, studio.datasets_changed])
        delete_btn.click(delete, [dataset, confirm], [manage_result, confirm, studio.datasets_changed])

        @browsing
        def on_load(request: gr.Request):
            params = query_params(request)
            choices = dataset_choices(db)
            ours = params.get("tab", TAB_ID) == TAB_ID
            name, note = resolve_dataset(db, params.get("dataset"))
            if name is None:  # no link, or a link to a dataset that is not there: says so, shows nothing else
                default = None if note else (choices[0] if choices else None)
                opened = pick_dataset(default)
                return (gr.update(choices=choices, value=default), gr.update(selected=TAB_ID) if ours and note
                        else gr.update(), note or opened[0], *opened[1:])
            row = as_int(params.get("row"), 0)
            return (
                gr.update(choices=choices, value=name),
                gr.update(selected=TAB_ID) if ours else gr.update(),
                dataset_summary(db, name),
                *show_page(name, 1 + (catalogue.row_position(db, name, row) or 0) // PAGE_SIZE),
                row,
                *show_row(name, row),
            )

        studio.on_load.append((on_load, [dataset, studio.tabs, *picked]))
