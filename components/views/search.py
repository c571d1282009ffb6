"""Search: BM25 over one or several datasets, with fields, Lucene syntax, filters and highlighted hits.

Each hit links to its row (the browse view's deep link ``?dataset=NAME&row=N``). Indexes are built
here too (the Indexes panel), with a progress bar; a stale index is flagged and not searched.
The search event is also the API endpoint ``/search`` (gradio_client).
"""

from __future__ import annotations

import dataclasses
import math

import gradio as gr

from .. import search as engine
from ..store import Database
from .common import Studio, as_int, escape, query_params, requires

TAB_ID = "search"
PAGE_SIZE = 10
FIELD_CHOICES = [(label, key) for key, label in engine.FIELDS.items()]
MODE_CHOICES = [("Plain words", "words"), ("Lucene syntax", "lucene")]
LABEL_CHOICES = [("any", "any"), ("unlabeled", "unlabeled"), ("labeled", "labeled"), ("flipped (majority: rejected)", "flipped")]
EXAMPLES = (
    "Plain words rank by BM25 (stemmed: *running* finds *run*). Lucene syntax: `\"exact phrase\"`, "
    "`boil AND egg`, `egg -runny`, `chosen:sorry`, `prompt:recip*`, `yolk^3 egg`, `colour~1`. "
    "Fields: `contents` (everything), `prompt`, `chosen`, `rejected`, `final` (the final turns)."
)

CSS = """
#search-error .search-err { color: var(--error-text-color, #b91c1c); font-family: var(--font-mono); font-size: 0.9em;
  padding: 2px 4px; }
#search-summary p { margin: 0; }
#search-results .sr-hit { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 8px 12px;
  margin-bottom: 8px; background: var(--background-fill-primary); }
#search-results .sr-meta { display: flex; gap: 12px; align-items: baseline; font-size: 0.9em;
  color: var(--body-text-color-subdued); margin-bottom: 4px; flex-wrap: wrap; }
#search-results .sr-rank { font-weight: 700; color: var(--body-text-color); min-width: 2.2em; }
#search-results .sr-open { font-weight: 600; }
#search-results .sr-part { border: 1px solid var(--border-color-primary); border-radius: 4px; padding: 0 5px;
  font-size: 0.85em; }
#search-results .sr-snippet { white-space: pre-wrap; overflow-wrap: anywhere; line-height: 1.5; }
#search-results mark { background: #fde68a; color: inherit; padding: 0 1px; border-radius: 2px; }
#search-results .sr-empty { color: var(--body-text-color-subdued); padding: 8px 0; }
#search-pager { align-items: center; gap: 10px; }
#search-pager > div { flex: 0 0 auto !important; width: auto !important; }
#search-pages p, #search-page-label p { margin: 0; white-space: nowrap; }
#search-indexes table { width: 100%; border-collapse: collapse; font-size: 0.9em; border: none; }
#search-indexes th, #search-indexes td { text-align: left; padding: 4px 8px; border: none;
  border-bottom: 1px solid var(--border-color-primary); }
#search-indexes th { color: var(--body-text-color-subdued); font-weight: 600; }
#search-indexes .ix-stale { color: #b45309; font-weight: 600; }
#search-indexes .ix-none { color: var(--body-text-color-subdued); }
"""


# -- plain functions (what the handlers call; tests call them too) -------------------------------


def searchable_choices(db: Database) -> tuple[list[str], list[str]]:
    """(every dataset, those whose index is ready)."""
    statuses = engine.index_statuses(db)
    return [s.dataset for s in statuses], [s.dataset for s in statuses if s.ready]


def split_choices(db: Database) -> list[str]:
    return ["any"] + sorted({d.split for d in db.datasets() if d.split})


def number_choices(db: Database, datasets: list[str] | None = None) -> list[tuple[str, str]]:
    """The numeric filters: built-in ones and the numeric metadata columns of ``datasets``."""
    choices = [(label, key) for key, label in engine.NUMBER_LABELS.items()]
    columns = set()
    for s in engine.index_statuses(db):
        if s.ready and (not datasets or s.dataset in datasets):
            columns |= {name for name in s.numeric_fields if name.startswith("meta:")}
    return choices + [(f"metadata: {c[5:]}", c) for c in sorted(columns)]


def make_filters(split=None, length_min=None, length_max=None, number=None, number_min=None, number_max=None,
                 label="any") -> engine.Filters:
    """Filters from the form; an empty bound is open (text boxes: a number box cannot be empty)."""

    def bound(v):
        return None if v is None or str(v).strip() == "" else str(v).strip()

    ranges = {}
    if bound(length_min) is not None or bound(length_max) is not None:
        ranges["length"] = (bound(length_min), bound(length_max))
    if number and (bound(number_min) is not None or bound(number_max) is not None):
        ranges[number] = (bound(number_min), bound(number_max))
    return engine.Filters(split=None if split in (None, "", "any") else split, ranges=ranges, label=label or "any")


@dataclasses.dataclass
class SearchForm:
    """The search form's settings by name (in the order of the form's inputs)."""

    query: str = ""
    datasets: list[str] = dataclasses.field(default_factory=list)
    field: str = "contents"
    mode: str = "words"
    split: str = "any"
    length_min: str = ""
    length_max: str = ""
    number: str | None = None
    number_min: str = ""
    number_max: str = ""
    label: str = "any"

    def filters(self) -> engine.Filters:
        return make_filters(self.split, self.length_min, self.length_max, self.number, self.number_min,
                            self.number_max, self.label)

    def run(self, db: Database, page: int = 1) -> dict:
        return run_search(db, self.query, self.datasets, self.field, self.mode, self.filters(), page)


def run_search(db: Database, query: str, datasets, field: str = "contents", mode: str = "words",
               filters: engine.Filters | None = None, page: int = 1) -> dict:
    """One page of results, ready to show: error, summary, results HTML, page, pages."""
    out = {"error": "", "summary": "", "html": "", "page": 1, "pages": 1, "total": 0, "hits": []}
    if not (query or "").strip():
        out["html"] = '<div class="sr-empty">Type a query and press Enter.</div>'
        return out
    page = max(1, as_int(page, 1))
    try:
        res = engine.search(db, datasets or [], query, field=field or "contents", mode=mode or "words",
                            k=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE, filters=filters)
        if res.total and not res.hits and page > 1:  # past the last page: show the last one
            page = max(1, math.ceil(res.total / PAGE_SIZE))
            res = engine.search(db, datasets or [], query, field=field or "contents", mode=mode or "words",
                                k=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE, filters=filters)
    except engine.SearchError as err:
        out["error"] = f'<div class="search-err">⚠️ {escape(err)}</div>'
        return out
    where = ", ".join(escape(d) for d in res.datasets) or "no dataset (filters left none)"
    out.update(
        summary=(f"**{res.total:,}** hit{'s' if res.total != 1 else ''} in {where} · {res.seconds * 1000:.1f} ms"
                 + (f" · page {res.page:,} of {res.pages:,}" if res.total else "")),
        html=results_html(res),
        page=res.page,
        pages=res.pages,
        total=res.total,
        hits=res.hits,
    )
    return out


def results_html(res: engine.Results) -> str:
    if not res.hits:
        return '<div class="sr-empty">No hits.</div>'
    parts = ['<div class="sr-list">']
    for h in res.hits:
        part = f'<span class="sr-part">{escape(h.part)}</span>' if h.part else ""
        source = f"<span>id {escape(h.source_id)}</span>" if h.source_id else ""
        parts.append(
            f'<div class="sr-hit" data-dataset="{escape(h.dataset)}" data-row="{h.row}">'
            f'<div class="sr-meta"><span class="sr-rank">#{h.rank}</span>'
            f'<a class="sr-open" href="{escape(h.link)}">{escape(h.dataset)} · row {h.row}</a>'
            f'<span class="sr-score">score {h.score:.4f}</span>{source}{part}</div>'
            f'<div class="sr-snippet">{h.snippet}</div></div>'
        )
    parts.append("</div>")
    return "".join(parts)


def indexes_html(db: Database) -> str:
    rows = []
    for s in engine.index_statuses(db):
        if s.state == "ready":
            state = "ready"
        elif s.state == "stale":
            state = (f'<span class="ix-stale">⚠ stale: built from version {s.dataset_version}, '
                     f"dataset is version {s.version}</span>")
        elif s.state == "missing":
            state = '<span class="ix-stale">⚠ index folder missing</span>'
        else:
            state = '<span class="ix-none">not indexed</span>'
        built = str(s.built_at)[:19] if s.built_at else ""
        rows.append(
            f"<tr><td>{escape(s.dataset)}</td><td>{escape(s.kind)}</td><td>{s.rows:,}</td><td>{state}</td>"
            f"<td>{'' if s.documents is None else f'{s.documents:,}'}</td><td>{escape(built)}</td>"
            f"<td>{'' if s.build_seconds is None else f'{s.build_seconds:.1f} s'}</td>"
            f"<td>{'' if s.k1 is None else f'{s.k1:g} / {s.b:g}'}</td></tr>"
        )
    if not rows:
        return "<p>No datasets yet: load one in the Data tab.</p>"
    return ("<table><thead><tr><th>dataset</th><th>kind</th><th>rows</th><th>index</th><th>documents</th>"
            "<th>built (UTC)</th><th>build time</th><th>BM25 k1 / b</th></tr></thead><tbody>"
            + "".join(rows) + "</tbody></table>")


def build_index(db: Database, dataset: str | None, k1, b, progress=None) -> str:
    if not dataset:
        return "⚠️ Pick a dataset to index."
    try:
        k1 = engine.DEFAULT_K1 if k1 in (None, "") else float(k1)
        b = engine.DEFAULT_B if b in (None, "") else float(b)
        summary = engine.build_index(db, dataset, k1=k1, b=b, progress=progress)
    except (engine.SearchError, ValueError) as err:
        return f"⚠️ {escape(err)}"
    return f"✅ {escape(summary.describe())}"


# -- the view -------------------------------------------------------------------------------------


def build(studio: Studio) -> None:
    db = studio.db
    everything, ready = searchable_choices(db)
    with gr.Tab("Search", id=TAB_ID):
        with gr.Row(equal_height=True):
            query = gr.Textbox(label="Search", placeholder="e.g. how long to boil an egg", scale=6,
                               elem_id="search-query", autofocus=False)
            go = gr.Button("Search", variant="primary", scale=0, min_width=110, elem_id="search-go")
        error = gr.HTML(elem_id="search-error")
        with gr.Row():
            datasets = gr.Dropdown(label="Datasets", choices=everything, value=ready, multiselect=True, scale=4,
                                   elem_id="search-datasets")
            field = gr.Dropdown(label="Field", choices=FIELD_CHOICES, value="contents", scale=1, elem_id="search-field")
            mode = gr.Radio(label="Mode", choices=MODE_CHOICES, value="words", scale=2, elem_id="search-mode")
        with gr.Accordion("Filters (applied to the whole ranked list)", open=False, elem_id="search-filters"):
            with gr.Row():
                split = gr.Dropdown(label="Split", choices=split_choices(db), value="any", scale=1,
                                    elem_id="search-split")
                length_min = gr.Textbox(label="Length from (characters)", placeholder="any", scale=1,
                                        elem_id="search-length-min")
                length_max = gr.Textbox(label="Length to", placeholder="any", scale=1, elem_id="search-length-max")
                label = gr.Dropdown(label="Label status", choices=LABEL_CHOICES, value="any", scale=1,
                                    elem_id="search-label")
            with gr.Row():
                number = gr.Dropdown(label="Numeric field", choices=number_choices(db, ready), value="margin", scale=2,
                                     elem_id="search-number")
                number_min = gr.Textbox(label="from", placeholder="any", scale=1, elem_id="search-number-min")
                number_max = gr.Textbox(label="to", placeholder="any", scale=1, elem_id="search-number-max")
        with gr.Accordion("Search syntax", open=False):
            gr.Markdown(EXAMPLES)
        summary = gr.Markdown(elem_id="search-summary")
        results = gr.HTML(elem_id="search-results")
        with gr.Row(elem_id="search-pager"):
            prev_btn = gr.Button("◀ Previous", size="sm", scale=0, min_width=110, elem_id="search-prev")
            gr.Markdown("Page", elem_id="search-page-label")
            page = gr.Number(value=1, precision=0, minimum=1, show_label=False, container=False, scale=0,
                             min_width=90, elem_id="search-page")
            pages = gr.Markdown("", elem_id="search-pages")
            next_btn = gr.Button("Next ▶", size="sm", scale=0, min_width=110, elem_id="search-next")
        with gr.Accordion("Indexes", open=not ready, elem_id="search-index-panel"):
            index_table = gr.HTML(indexes_html(db), elem_id="search-indexes")
            with gr.Row(equal_height=True):
                index_dataset = gr.Dropdown(label="Dataset to index", choices=everything,
                                            value=next((d for d in everything if d not in ready), None), scale=3,
                                            elem_id="search-index-dataset")
                k1 = gr.Number(label="BM25 k1", value=engine.DEFAULT_K1, minimum=0, scale=1, elem_id="search-k1")
                b = gr.Number(label="BM25 b", value=engine.DEFAULT_B, minimum=0, maximum=1, scale=1, elem_id="search-b")
                index_btn = gr.Button("Index", variant="primary", scale=0, min_width=110, elem_id="search-index")
            index_result = gr.Markdown(elem_id="search-index-result")

        inputs = [query, datasets, field, mode, split, length_min, length_max, number, number_min, number_max, label]
        outputs = [error, summary, results, page, pages]

        def show(form: SearchForm, pg) -> tuple:
            r = form.run(db, as_int(pg, 1))
            return r["error"], r["summary"], r["html"], r["page"], f"of {r['pages']:,}" if r["total"] else ""

        @requires("viewer", "searching")
        def do_search(query, datasets, field, mode, split, length_min, length_max, number, number_min, number_max,
                      label, page=1, step=0):
            form = SearchForm(query, datasets, field, mode, split, length_min, length_max, number, number_min,
                              number_max, label)
            return show(form, as_int(page, 1) + as_int(step, 0))

        gr.on(triggers=[go.click, query.submit], fn=do_search, inputs=[*inputs, gr.State(1), gr.State(0)],
              outputs=outputs, api_name="search")
        page.submit(do_search, [*inputs, page, gr.State(0)], outputs, api_visibility="private")
        prev_btn.click(do_search, [*inputs, page, gr.State(-1)], outputs, api_visibility="private")
        next_btn.click(do_search, [*inputs, page, gr.State(1)], outputs, api_visibility="private")

        @requires("viewer", "listing numeric filters")
        def numeric_filters(chosen, current):
            return gr.update(choices=number_choices(db, chosen), value=current)

        datasets.change(numeric_filters, [datasets, number], number, api_visibility="private")

        @requires("admin", "building a search index")
        def do_index(name, k1_value, b_value, progress=gr.Progress()):
            message = build_index(db, name, k1_value, b_value,
                                  progress=lambda frac, desc: progress(frac, desc=desc))
            every, now_ready = searchable_choices(db)
            return (message, indexes_html(db), gr.update(choices=every),
                    gr.update(choices=number_choices(db, now_ready)), gr.update(choices=split_choices(db)))

        index_btn.click(do_index, [index_dataset, k1, b], [index_result, index_table, datasets, number, split],
                        api_name="index")

        @requires("viewer", "opening the page")
        def on_load(request: gr.Request):
            params = query_params(request)
            every, now_ready = searchable_choices(db)
            common = (gr.update(choices=every, value=now_ready), gr.update(choices=every), indexes_html(db),
                      gr.update(choices=split_choices(db)))
            if params.get("tab") != TAB_ID:
                return (*common, gr.update(), gr.update(), *[gr.update()] * len(outputs))
            q = params.get("q", "")
            chosen = [d for d in (params.get("datasets") or "").split(",") if d in every] or now_ready
            fld = params.get("field") if params.get("field") in engine.FIELDS else "contents"
            md = params.get("mode") if params.get("mode") in engine.MODES else "words"
            shown = (show(SearchForm(q, chosen, fld, md), params.get("page")) if q
                     else [gr.update()] * len(outputs))
            return (gr.update(choices=every, value=chosen), *common[1:], gr.update(selected=TAB_ID), q, *shown)

        studio.on_load.append(
            (on_load, [datasets, index_dataset, index_table, split, studio.tabs, query, *outputs])
        )
