"""Search: BM25 over one or several datasets, with fields, Lucene syntax, filters and highlighted hits.

Each hit opens its row in Compare (``?tab=compare&dataset=NAME&row=N&q=QUERY``). The search itself
lives in the address bar (``?tab=search&q=...``, see ``search_form``): every search pushes its
query string, so Back, a reload and a shared link restore the query, mode, field, filters and page.
Indexes are built in the background (here with the Index button, or after an ingest) and the
Indexes panel shows their progress while any is under way; a dataset indexed meanwhile joins the
selection. The search event is also the API endpoint ``/search`` (gradio_client).
"""

from __future__ import annotations

import math

import gradio as gr

from .. import search as engine
from .. import semantic
from ..store import Database
from .common import Studio, as_int, escape, query_params, requires
from .search_form import LENGTHS, SLOTS, TAB_ID, SearchForm
from .search_hits import hit_html, results_html  # noqa: F401  (hit_html: the cards, also for tests)
from ..policies import DATASET, PAGE
from .. import catalogue

PAGE_SIZE = 10
FIELD_CHOICES = [(label, key) for key, label in engine.FIELDS.items()]
MODE_CHOICES = [("Plain words", "words"), ("Lucene syntax", "lucene")]
RANKING_CHOICES = [("BM25", "bm25"), ("By meaning", "semantic"), ("Hybrid", "hybrid")]
LABEL_CHOICES = [("any", "any"), ("unlabeled", "unlabeled"), ("labeled", "labeled"), ("flipped (majority: rejected)", "flipped"),
                 ("an empty side (flagged at ingest)", "empty_side")]
EXAMPLES = (
    "Plain words rank by BM25 (stemmed: *running* finds *run*); `\"exact phrase\"` and `chosen:sorry` work "
    "there too. Lucene syntax adds `boil AND egg`, `egg -runny`, `prompt:recip*`, `yolk^3 egg`, `colour~1`. "
    "Fields: `contents` (everything), `prompt`, `chosen`, `rejected`, `final` (the final turns)."
)

CSS = """
#search-error .search-err { color: var(--error-text-color, #b91c1c); font-family: var(--font-mono); font-size: 0.9em;
  padding: 2px 4px; }
#search-summary p { margin: 0; }
#search-summary .sr-note { color: var(--body-text-color-subdued); }
#search-results .sr-hit { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 8px 12px;
  margin-bottom: 8px; background: var(--background-fill-primary); }
#search-results .sr-meta { display: flex; gap: 12px; align-items: baseline; font-size: 0.9em;
  color: var(--body-text-color-subdued); margin-bottom: 4px; flex-wrap: wrap; }
#search-results .sr-rank { font-weight: 700; color: var(--body-text-color); min-width: 2.2em; }
#search-results .sr-open { font-weight: 600; }
#search-results .sr-part { border: 1px solid var(--border-color-primary); border-radius: 4px; padding: 0 5px;
  font-size: 0.85em; }
#search-results .sr-part.side-chosen { border-color: #16a34a; }
#search-results .sr-part.side-rejected { border-color: #dc2626; }
#search-results .sr-snippet { white-space: pre-wrap; overflow-wrap: anywhere; line-height: 1.5; }
#search-results mark { background: #fde68a; color: #1c1917; padding: 0 1px; border-radius: 2px; }
.dark #search-results mark { background: #a16207; color: #fefce8; }
#search-results .sr-actions { display: flex; gap: 16px; justify-content: flex-end; margin-bottom: 6px; }
#search-results .sr-label-hits { font-weight: 600; }
#search-results .sr-empty { color: var(--body-text-color-subdued); padding: 8px 0; }
#search-pager { align-items: center; gap: 10px; }
#search-pager > div { flex: 0 0 auto !important; width: auto !important; }
#search-pages p, #search-page-label p { margin: 0; white-space: nowrap; }
#search-indexes table { width: 100%; border-collapse: collapse; font-size: 0.9em; border: none; }
#search-indexes th, #search-indexes td { text-align: left; padding: 4px 8px; border: none;
  border-bottom: 1px solid var(--border-color-primary); }
#search-indexes th { color: var(--body-text-color-subdued); font-weight: 600; }
#search-indexes .ix-stale { color: #b45309; font-weight: 600; }
.dark #search-indexes .ix-stale { color: #fbbf24; }
#search-indexes .ix-none { color: var(--body-text-color-subdued); }
#search-indexes progress { width: 8em; vertical-align: middle; }
.studio-hidden { display: none !important; }
"""

HEAD = """<script>
window.addEventListener("popstate", () => {
  // Back or Forward to a search: run the search that URL holds (the page itself stays)
  const params = new URLSearchParams(location.search);
  const restore = document.querySelector("#search-restore");
  if (params.get("tab") === "search" && restore) restore.click();
});
// A link to ?tab=search ("similar" on a hit card, in Browse and in Compare) runs that search in the
// page (static/compare.js's click handler calls this): the address bar takes the link, the Search
// tab is shown, and its restore button runs the search the address holds.
window.studioSearch = (search) => {
  const tab = document.getElementById("search-tab-button");
  if (!tab) return false;
  try { history.pushState({studio: "search"}, "", search); } catch (err) { /* a sandboxed frame */ }
  tab.click();
  const started = performance.now();
  (function run() {
    const restore = document.querySelector("#search-restore");
    if (restore) return restore.click();
    if (performance.now() - started < 5000) setTimeout(run, 25);
  })();
  return true;
};
</script>"""

PUSH_URL = """(url) => {
  if (!url) return [];
  const how = url.startsWith("replace:") ? "replace" : "push";
  const target = url.slice(url.indexOf(":") + 1);
  if (location.search !== target) {
    if (how === "push") history.pushState({studio: "search"}, "", target);
    else history.replaceState({studio: "search"}, "", target);
  }
  return [];
}"""

# -- plain functions (what the handlers call; tests call them too) -------------------------------


def searchable_choices(db: Database) -> tuple[list[str], list[str]]:
    """(every dataset, those whose index is ready)."""
    statuses = engine.index_statuses(db)
    return [s.dataset for s in statuses], [s.dataset for s in statuses if s.ready]


def split_choices(db: Database) -> list[str]:
    return ["any"] + sorted({d.split for d in catalogue.datasets(db) if d.split})


def number_choices(db: Database, datasets: list[str] | None = None) -> list[tuple[str, str]]:
    """The numeric filters of the slots: scores, margin, and the numeric metadata columns of ``datasets``
    (lengths have boxes of their own)."""
    choices = [(label, key) for key, label in engine.NUMBER_LABELS.items() if key not in LENGTHS]
    columns = set()
    for s in engine.index_statuses(db):
        if s.ready and (not datasets or s.dataset in datasets):
            columns |= {name for name in s.numeric_fields if name.startswith("meta:")}
    return choices + [(f"metadata: {c[5:]}", c) for c in sorted(columns)]


def run_search(db: Database, form: SearchForm, page: int = 1) -> dict:
    """One page of results, ready to show: error, summary, results HTML, page, pages, the query
    string, and the operators plain words ignored."""
    out = {"error": "", "summary": "", "html": "", "page": 1, "pages": 1, "total": 0, "hits": [], "ignored": [],
           "url": form.url()}
    similar_row = form.similar  # rows like this row (the form holds none when a query is typed)
    if not form.query.strip() and similar_row is None:
        out["html"] = '<div class="sr-empty">Type a query and press Enter.</div>'
        return out
    page = max(1, as_int(page, 1))
    try:
        filters = form.filters()

        def ask(pg):
            offset = (pg - 1) * PAGE_SIZE
            if similar_row is not None:
                if not form.datasets:
                    raise engine.SearchError("pick the dataset of the row to find rows like it")
                return semantic.similar_search(db, form.datasets[0], similar_row, k=PAGE_SIZE, offset=offset,
                                               filters=filters)
            if form.ranking == "semantic":
                return semantic.semantic_search(db, form.datasets, form.query, k=PAGE_SIZE, offset=offset,
                                                filters=filters, partial=True)
            if form.ranking == "hybrid":
                return semantic.hybrid_search(db, form.datasets, form.query, k=PAGE_SIZE, offset=offset,
                                              filters=filters, mode=form.mode, bm25_field=form.field)
            return engine.search(db, form.datasets, form.query, field=form.field, mode=form.mode, k=PAGE_SIZE,
                                 offset=offset, filters=filters, partial=True)

        res = ask(page)
        if res.total and not res.hits and page > 1:  # past the last page: show the last one
            page = max(1, math.ceil(res.total / PAGE_SIZE))
            res = ask(page)
    except engine.SearchError as err:
        out["error"] = f'<div class="search-err">⚠️ {escape(err)}</div>'
        return out
    where = ", ".join(escape(d) for d in res.datasets) or "no dataset (filters left none)"
    ranking = getattr(res, "ranking", "bm25")
    if ranking == "similar":
        found = f"**{res.total:,}** row{'s' if res.total != 1 else ''} like row {similar_row} of {where}"
        how = f" · by {escape(res.model)}"
    else:
        found = f"**{res.total:,}** hit{'s' if res.total != 1 else ''} in {where}"
        how = {"semantic": f" · by meaning ({escape(getattr(res, 'model', ''))})",
               "hybrid": f" · BM25 and meaning ({escape(getattr(res, 'model', ''))}) fused by rank"}.get(ranking, "")
    summary = (f"{found}{how} · {res.seconds * 1000:.1f} ms"
               + (f" · page {res.page:,} of {res.pages:,}" if res.total else ""))
    for why in res.skipped:
        summary += f"  \n⏳ not searched: {escape(why)}"
    if res.ignored:
        summary += ("  \nPlain words searched " + ", ".join(f"`{escape(w)}`" for w in res.ignored)
                    + " as words; Lucene syntax reads them as operators.")
    out.update(summary=summary, html=results_html(res, similar_row), page=res.page, pages=res.pages, total=res.total,
               hits=res.hits, ignored=res.ignored, url=form.url(res.page))
    return out


def indexes_html(db: Database) -> str:
    """The Indexes panel: each dataset, its index, and the progress of a build under way."""
    jobs = {j.dataset: j for j in engine.background_status(db)}
    rows = []
    for s in engine.index_statuses(db):
        job = jobs.get(s.dataset)
        if job is not None and job.pending:
            state = (f'<progress max="1" value="{job.fraction:.3f}"></progress> '
                     f'<span class="ix-building">{escape(job.describe().partition(": ")[2])}</span>')
        elif s.state == "ready":
            state = "ready"
        elif job is not None and job.state == "failed":
            state = f'<span class="ix-stale">⚠ {escape(job.describe().partition(": ")[2])}</span>'
        elif s.state == "stale":
            state = (f'<span class="ix-stale">⚠ stale: built from version {s.dataset_version}, '
                     f"dataset is version {s.version}</span>")
        elif s.state == "missing":
            state = '<span class="ix-stale">⚠ index folder missing</span>'
        else:
            state = '<span class="ix-none">not indexed</span>'
        built = str(s.built_at)[:19] if s.built_at else ""
        rows.append(
            f'<tr data-dataset="{escape(s.dataset)}"><td>{escape(s.dataset)}</td><td>{escape(s.kind)}</td>'
            f"<td>{s.rows:,}</td><td>{state}</td>"
            f"<td>{'' if s.documents is None else f'{s.documents:,}'}</td><td>{escape(built)}</td>"
            f"<td>{'' if s.build_seconds is None else f'{s.build_seconds:.1f} s'}</td>"
            f"<td>{'' if s.k1 is None else f'{s.k1:g} / {s.b:g}'}</td></tr>"
        )
    if not rows:
        return "<p>No datasets yet: load one in the Data tab.</p>"
    return ("<table><thead><tr><th>dataset</th><th>kind</th><th>rows</th><th>index</th><th>documents</th>"
            "<th>built (UTC)</th><th>build time</th><th>BM25 k1 / b</th></tr></thead><tbody>"
            + "".join(rows) + "</tbody></table>")


def pending(db: Database) -> bool:
    """Whether an index build of ``db`` is queued or running."""
    return any(j.pending for j in engine.background_status(db))


def queue_index(db: Database, dataset: str | None, k1, b) -> str:
    """Queue a background build of ``dataset``'s index; the Indexes panel shows its progress."""
    if not dataset:
        return "⚠️ Pick a dataset to index."
    if catalogue.dataset(db, dataset) is None:
        return f"⚠️ No dataset named {escape(dataset)}."
    try:
        k1 = engine.DEFAULT_K1 if k1 in (None, "") else float(k1)
        b = engine.DEFAULT_B if b in (None, "") else float(b)
    except ValueError as err:
        return f"⚠️ {escape(err)}"
    for name, value in (("k1", k1), ("b", b)):
        if not math.isfinite(value) or value < 0 or (name == "b" and value > 1):
            return f"⚠️ BM25 {name} must be {'between 0 and 1' if name == 'b' else '0 or more'}, not {value:g}"
    engine.index_in_background(db, [dataset], k1=k1, b=b)
    return f"⏳ Indexing {escape(dataset)} in the background (progress in the table above)."


# -- the view -------------------------------------------------------------------------------------


def build(studio: Studio) -> None:
    db = studio.db
    everything, ready = searchable_choices(db)
    with gr.Tab("Search", id=TAB_ID, elem_id="search-tab") as tab:
        with gr.Row(equal_height=True):
            query = gr.Textbox(label="Search", placeholder="e.g. how long to boil an egg", scale=6,
                               elem_id="search-query", autofocus=False)
            go = gr.Button("Search", variant="primary", scale=0, min_width=110, elem_id="search-go")
        error = gr.HTML(elem_id="search-error")
        with gr.Row():
            # allow_custom_value: the API takes a dataset loaded after the page was built (the names
            # are checked against the catalogue on every search)
            datasets = gr.Dropdown(label="Datasets", choices=everything, value=ready, multiselect=True, scale=4,
                                   allow_custom_value=True, elem_id="search-datasets")
            studio.follow(datasets, lambda: searchable_choices(db)[0])
            field = gr.Dropdown(label="Field", choices=FIELD_CHOICES, value="contents", scale=1, elem_id="search-field")
            mode = gr.Radio(label="Mode", choices=MODE_CHOICES, value="words", scale=2, elem_id="search-mode")
            ranking = gr.Radio(label="Ranking", choices=RANKING_CHOICES, value="bm25", scale=2, elem_id="search-ranking",
                               info="by meaning: needs the dataset's embeddings (python app.py embed)")
        with gr.Accordion("Filters (applied to the whole ranked list)", open=False,
                          elem_id="search-filters") as filters_box:
            with gr.Row():
                split = gr.Dropdown(label="Split", choices=split_choices(db), value="any", scale=1,
                                    elem_id="search-split")
                label = gr.Dropdown(label="Label status or flag", choices=LABEL_CHOICES, value="any", scale=1,
                                    elem_id="search-label")
            lengths = []
            with gr.Row():
                for name, title in (("length", "Length (characters) from"), ("length_prompt", "Prompt length from"),
                                    ("length_chosen", "Chosen length from"),
                                    ("length_rejected", "Rejected length from")):
                    slug = name.replace("_", "-")
                    lengths.append(gr.Textbox("", label=title, placeholder="any", min_width=80, elem_id=f"search-{slug}-min"))
                    lengths.append(gr.Textbox("", label="to", placeholder="any", min_width=80, elem_id=f"search-{slug}-max"))
            slots = []
            numbers = number_choices(db, ready)
            for i, default in enumerate(("margin", "score_chosen")[:SLOTS]):
                suffix = "" if i == 0 else str(i + 1)
                with gr.Row():
                    slots.append(gr.Dropdown(label="Numeric field", choices=numbers, value=default, scale=2,
                                             elem_id=f"search-number{suffix}"))
                    slots.append(gr.Textbox("", label="from", placeholder="any", scale=1,
                                            elem_id=f"search-number{suffix}-min"))
                    slots.append(gr.Textbox("", label="to", placeholder="any", scale=1, elem_id=f"search-number{suffix}-max"))
        with gr.Accordion("Search syntax", open=False):
            gr.Markdown(EXAMPLES)
        summary = gr.Markdown(elem_id="search-summary")
        try_lucene = gr.Button("Search again in Lucene syntax", size="sm", visible=False, elem_id="search-try-lucene")
        results = gr.HTML(elem_id="search-results")
        with gr.Row(elem_id="search-pager"):
            prev_btn = gr.Button("◀ Previous", size="sm", scale=0, min_width=110, elem_id="search-prev")
            gr.Markdown("Page", elem_id="search-page-label")
            page = gr.Number(value=1, precision=0, minimum=1, show_label=False, container=False, scale=0,
                             min_width=90, elem_id="search-page")
            pages = gr.Markdown("", elem_id="search-pages")
            next_btn = gr.Button("Next ▶", size="sm", scale=0, min_width=110, elem_id="search-next")
        with gr.Accordion("Indexes", open=not ready or pending(db), elem_id="search-index-panel"):
            index_table = gr.HTML(indexes_html(db), elem_id="search-indexes")
            with gr.Row(equal_height=True):
                index_dataset = gr.Dropdown(label="Dataset to index", choices=everything,
                                            value=next((d for d in everything if d not in ready), None), scale=3,
                                            elem_id="search-index-dataset")
                studio.follow(index_dataset, lambda: searchable_choices(db)[0])
                k1 = gr.Number(label="BM25 k1", value=engine.DEFAULT_K1, minimum=0, scale=1, elem_id="search-k1")
                b = gr.Number(label="BM25 b", value=engine.DEFAULT_B, minimum=0, maximum=1, scale=1, elem_id="search-b")
                index_btn = gr.Button("Index", variant="primary", scale=0, min_width=110, elem_id="search-index")
            index_result = gr.Markdown(elem_id="search-index-result")
        # the query string of the search shown ("push:?tab=search&..." or "replace:..."), and Back's trigger
        url = gr.Textbox(visible=True, elem_id="search-url", elem_classes=["studio-hidden"], container=False)
        similar = gr.Textbox("", visible=True, elem_id="search-similar", elem_classes=["studio-hidden"], container=False)
        restore_btn = gr.Button("restore", elem_id="search-restore", elem_classes=["studio-hidden"])
        watching = gr.State([])  # the datasets this page saw being indexed: they join the selection when ready
        timer = gr.Timer(1.0, active=pending(db))

        # the inputs in the order SearchForm.from_inputs takes them (the first eleven: the API's order)
        inputs = [query, datasets, field, mode, split, lengths[0], lengths[1], *slots[:3], label, *lengths[2:],
                  *slots[3:], ranking, similar]
        outputs = [error, summary, results, page, pages, url, try_lucene]

        def show(form: SearchForm, pg, how: str = "push") -> tuple:
            r = run_search(db, form, as_int(pg, 1))
            return (r["error"], r["summary"], r["html"], r["page"], f"of {r['pages']:,}" if r["total"] else "",
                    f"{how}:{r['url']}", gr.update(visible=bool(r["ignored"]) and form.mode == "words"))

        def form_of(values) -> SearchForm:
            return SearchForm.from_inputs(*values)

        @requires(DATASET.search)
        def do_search(query, datasets, field, mode, split, length_min, length_max, number, number_min, number_max,
                      label, length_prompt_min="", length_prompt_max="", length_chosen_min="", length_chosen_max="",
                      length_rejected_min="", length_rejected_max="", number2=None, number2_min="", number2_max="",
                      ranking="bm25", similar="", page=1, step=0):
            values = [query, datasets, field, mode, split, length_min, length_max, number, number_min, number_max,
                      label, length_prompt_min, length_prompt_max, length_chosen_min, length_chosen_max,
                      length_rejected_min, length_rejected_max, number2, number2_min, number2_max, ranking, similar]
            pg = as_int(page, 1)
            try:
                form = form_of(values)
            except engine.SearchError as err:
                return (f'<div class="search-err">⚠️ {escape(err)}</div>', *[gr.update()] * (len(outputs) - 1))
            return show(form, pg + as_int(step, 0))

        push = dict(fn=None, inputs=[url], outputs=None, js=PUSH_URL)
        quick = dict(show_progress="hidden")
        gr.on(triggers=[go.click, query.submit], fn=do_search, inputs=[*inputs, gr.State(1), gr.State(0)],
              outputs=outputs, api_name="search", **quick).then(**push)
        @requires(DATASET.search)
        def end_similar(typed, row):  # a query typed ends a search for rows like a row (it left the box empty)
            return "" if str(typed or "").strip() else row

        gr.on(triggers=[go.click, query.submit], fn=end_similar, inputs=[query, similar], outputs=[similar],
              api_visibility="private", **quick)
        page.submit(do_search, [*inputs, page, gr.State(0)], outputs, api_visibility="private", **quick).then(**push)
        prev_btn.click(do_search, [*inputs, page, gr.State(-1)], outputs, api_visibility="private",
                       **quick).then(**push)
        next_btn.click(do_search, [*inputs, page, gr.State(1)], outputs, api_visibility="private",
                       **quick).then(**push)

        @requires(DATASET.search)
        def lucene_instead(*values):
            form = form_of(values)
            form.mode = "lucene"
            return ("lucene", *show(form, 1))

        try_lucene.click(lucene_instead, inputs, [mode, *outputs], api_visibility="private", **quick).then(**push)

        @requires(DATASET.search)
        def numeric_filters(chosen, *current):
            choices = number_choices(db, chosen)
            return [gr.update(choices=choices, value=c) for c in current]

        datasets.change(numeric_filters, [datasets, *slots[::3]], slots[::3], api_visibility="private")

        def restored(params: dict, how: str) -> tuple:
            every, now_ready = searchable_choices(db)
            form, pg = SearchForm.from_params(params, every, now_ready)
            values = form.inputs()
            values[1] = gr.update(choices=every, value=form.datasets)
            shown = show(form, pg, how) if form.query or form.similar is not None else (*[gr.update()] * (len(outputs) - 2), f"{how}:{form.url(pg)}",
                                                           gr.update(visible=False))
            # a search with filters shows them (a closed accordion's boxes are not on the page)
            opened = gr.Accordion(open=True) if form.ranges or form.split != "any" or form.label != "any" else gr.update()
            return (*values, *shown, opened)

        @requires(DATASET.search)
        def do_restore(address):
            from urllib.parse import parse_qsl

            return restored(dict(parse_qsl((address or "").lstrip("?"))), "replace")

        restore_btn.click(do_restore, [url], [*inputs, *outputs, filters_box], api_visibility="private", **quick,
                          js="(u) => [location.search]")

        def panel(chosen, seen):
            every, now_ready = searchable_choices(db)
            busy = [j.dataset for j in engine.background_status(db) if j.pending]
            joined = [d for d in seen if d not in busy and d in now_ready and d not in (chosen or [])]
            selection = gr.update(choices=every, value=[*(chosen or []), *joined]) if joined else gr.update(choices=every)
            return (indexes_html(db), selection, gr.update(choices=every), busy, gr.Timer(active=bool(busy)))

        panel_outputs = [index_table, datasets, index_dataset, watching, timer]

        @requires(DATASET.search)
        def tick(chosen, seen):
            return panel(chosen, seen)

        timer.tick(tick, [datasets, watching], panel_outputs, api_visibility="private", show_progress="hidden")
        tab.select(tick, [datasets, watching], panel_outputs, api_visibility="private", show_progress="hidden")

        @requires(DATASET.index)
        def do_index(name, k1_value, b_value, chosen, seen):
            message = queue_index(db, name, k1_value, b_value)
            return (message, *panel(chosen, seen))

        index_btn.click(do_index, [index_dataset, k1, b, datasets, watching], [index_result, *panel_outputs],
                        api_name="index")

        @requires(PAGE.open)
        def on_load(request: gr.Request):
            params = query_params(request)
            every, now_ready = searchable_choices(db)
            busy = [j.dataset for j in engine.background_status(db) if j.pending]
            common = (gr.update(choices=every), indexes_html(db), gr.update(choices=split_choices(db)), busy,
                      gr.Timer(active=bool(busy)))
            if params.get("tab") != TAB_ID:
                rest = [gr.update()] * (len(inputs) + len(outputs) + 1)
                rest[1] = gr.update(choices=every, value=now_ready)  # datasets indexed since the page was built
                return (gr.update(), *common, *rest)
            return (gr.update(selected=TAB_ID), *common, *restored(params, "replace"))

        studio.on_load.append(
            (on_load, [studio.tabs, index_dataset, index_table, split, watching, timer, *inputs, *outputs, filters_box])
        )
