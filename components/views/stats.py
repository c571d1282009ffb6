"""Statistics: what a dataset of pairs holds, as charts, and the rows behind any bar; and the
contamination check of a training set against evaluation sets.

Every bar is listed in the "Rows behind a bar" picker (its label and count); picking one shows exactly
that bar's rows, each linking to the row (``?dataset=NAME&row=N``). Opens on ``?tab=stats&dataset=NAME``.
With a reward model's scores, its accuracy by length difference (a click on a bar labels the pairs of
that bin it got wrong).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from urllib.parse import urlencode

import gradio as gr

from .. import insights
from ..insights import charts, projection
from ..store import Database
from .common import Studio, deep_link, escape, query_params, requires
from ..policies import DATASET
from .. import catalogue

TAB_ID = "stats"
ROWS_SHOWN = 200
FACETS_SHOWN = 4
CONTAM_LIMIT = 1000
"""Matches a check shows at most (the suspects queue and the clean export take them all)."""
CONTAM_SHOWN = 100

HEAD = f"<script>\n{(Path(__file__).parent / 'static' / 'stats.js').read_text(encoding='utf-8')}</script>\n"
"""A click on the accuracy chart's bar opens its queue, on the map's point its row (``static/stats.js``)."""

CSS = """
#stats-rows table, #stats-contam table { width: 100%; border-collapse: collapse; font-size: 0.9em; border: none; }
#stats-rows th, #stats-rows td, #stats-contam th, #stats-contam td { text-align: left; padding: 4px 8px;
  border: none; border-bottom: 1px solid var(--border-color-primary); vertical-align: top; }
#stats-rows th, #stats-contam th { color: var(--body-text-color-subdued); font-weight: 600; }
#stats-contam .ct-text { white-space: pre-wrap; overflow-wrap: anywhere; max-height: 12em; overflow: auto; }
#stats-contam mark { background: #fde68a; color: #1f2937; padding: 0 1px; border-radius: 2px; }
#stats-contam mark.tpl { background: transparent; color: inherit; text-decoration: underline dotted; opacity: 0.7; }
"""


def pair_datasets(db: Database) -> list[str]:
    return [d.name for d in catalogue.datasets(db) if d.kind == "pairs"]


# -- plain functions -----------------------------------------------------------------------------


def bar_choices(s: dict) -> list[tuple[str, str]]:
    """(label, key) of every bar of the statistics ``s``, for the rows picker."""
    out: list[tuple[str, str]] = []

    def hist(h: dict | None, what: str) -> None:
        if not h:
            return
        for name, counts in h.get("series", {}).items():
            side = f"{name} " if len(h["series"]) > 1 else ""
            for label, key, n in zip(h["labels"], h[f"keys_{name}"], counts):
                if n:
                    out.append((f"{what}: {side}{label} ({n:,})", key))

    d = s["length_bias"]["by_difference"]
    out += [(f"Length difference: {lab} ({n:,})", key) for lab, key, n in zip(d["labels"], d["keys"], d["counts"]) if n]
    g = s["length_bias"]["by_gap"]
    out += [(f"Sides differ by {lab} characters ({n:,})", key) for lab, key, n in zip(g["labels"], g["keys"], g["pairs"]) if n]
    hist(s["lengths"], f"Length ({insights.UNITS[s['unit']]})")
    hist(s["turns"], "Messages")
    hist(s["ratings"].get("scores"), "Score")
    hist(s["ratings"].get("margin"), "Margin")
    rm = s.get("reward_model") or {}
    if rm.get("pairs"):
        d = rm["by_difference"]
        for what, keys, n, k in (("data", "keys", "pairs", "right"), ("majority", "keys_majority", "judged", "agree")):
            out += [(f"{rm['model']} wrong vs the {what}: {lab} ({a - b:,})", key)
                    for lab, key, a, b in zip(d["labels"], d[keys], d[n], d[k]) if a - b]
    if s["ratings"].get("margin_nonpositive"):
        out.append((f"Margin 0 or less ({s['ratings']['margin_nonpositive']:,})", "margin_nonpositive"))
    if s["flagged_empty_side"]:
        out.append((f"Pairs with an empty side ({s['flagged_empty_side']:,})", "flagged"))
    dup = s["duplicates"]
    if dup["identical_sides"]:
        out.append((f"Chosen identical to rejected ({dup['identical_sides']:,})", "identical"))
    for what, k in (("Duplicate prompts", "duplicate_prompts"), ("Duplicate pairs", "duplicate_pairs")):
        if dup[k]["rows"]:
            out.append((f"{what} ({dup[k]['rows']:,} rows)", dup[k]["key"]))
    for i, c in enumerate(dup["near"]["clusters"]):
        out.append((f"Near-duplicate prompts {i + 1}: {c['example'][:60]} ({c['rows']:,} rows)", c["key"]))
    for i, c in enumerate((dup.get("by_embedding") or {}).get("clusters") or []):
        out.append((f"Near-duplicates by embedding {i + 1}: {c['example'][:60]} ({c['rows']:,} rows)", c["key"]))
    for f in s["facets"]:
        out += [(f"{f['column']} = {v} ({n:,})", key) for v, n, key in zip(f["values"], f["counts"], f["keys"])]
    lab = s.get("labels") or {}
    if lab.get("labels"):
        p = lab["per_annotator"]
        for name in p["labels"]:
            for a, n, key in zip(p["annotators"], p["counts"][name], p["keys"][name]):
                if n:
                    out.append((f"Labels: {a} → {name} ({n:,})", key))
        out += [(f"Tag: {t['tag']} ({t['rows']:,} pairs)", t["key"]) for t in lab["per_tag"]]
    return out


def summary_markdown(s: dict) -> str:
    lines = insights.describe_stats(s, markdown=True, escape=escape)
    lines[-1] = f"\n<sub>{lines[-1].strip()} Pick any bar below to see its rows.</sub>"
    return "\n".join(lines)


def figures(s: dict) -> list:
    """The figures of the plots, in the order of ``PLOTS`` (None: hidden)."""
    lab = s.get("labels") or {}
    facets = [charts.bars(f["values"], f["counts"], f["keys"], f"Metadata: {f['column']} ({f['distinct']:,} values)",
                          "pairs", y=f["column"], horizontal=True) for f in s["facets"][:FACETS_SHOWN]]
    facets += [None] * (FACETS_SHOWN - len(facets))
    r = s["ratings"]
    has = lab.get("labels")
    rm = s.get("reward_model") or {}
    return [
        charts.histogram(s["lengths"]),
        charts.length_difference(s["length_bias"]),
        charts.longer_rate(s["length_bias"], lab.get("length_bias")),
        charts.histogram(s["turns"]),
        charts.histogram(r["scores"]) if r.get("scores") else None,
        charts.histogram(r["margin"]) if r.get("margin") else None,
        charts.model_accuracy(rm, s["dataset"]) if rm.get("pairs") else None,
        *facets,
        charts.per_annotator(lab["per_annotator"]) if has else None,
        charts.progress(lab["progress"]) if has else None,
        charts.per_tag(lab["per_tag"]) if has and lab["per_tag"] else None,
        charts.kappa_heatmap(lab["agreement"]) if has and len(lab["agreement"]["annotators"]) > 1 else None,
    ]


GRID = [["lengths", "diff"], ["longer", "turns"], ["scores", "margin"], ["accuracy"]] + \
    [[f"facet-{i}", f"facet-{i + 1}"] for i in range(0, FACETS_SHOWN, 2)] + [["annotators", "progress"], ["tags", "kappa"]]
"""The plots' rows on the page (the accuracy chart alone: eleven bins, two bars each)."""
PLOTS = [name for row in GRID for name in row]


def rows_html(db: Database, dataset: str, found: insights.BinRows, key: str | None = None) -> str:
    if not found.rows:
        return f"<p>No rows: {escape(found.title)}.</p>"
    recs = {r["row"]: r for r in catalogue.rows_of(db, dataset, found.rows)}
    more = f" (the first {len(found.rows):,})" if found.total > len(found.rows) else ""
    queue = "?" + urlencode({"tab": "compare", "dataset": dataset, "queue": "bin", "q": key}) if key else ""
    label = f" · <a class='stats-label' href='{escape(queue)}'>Label these {found.total:,} pairs →</a>" if key else ""
    out = [f"<p><b>{found.total:,} rows</b>: {escape(found.title)}{more}{label}</p>",
           "<table><tr><th>row</th><th>prompt</th><th>chosen chars</th><th>rejected chars</th></tr>"]
    for row in found.rows:
        r = recs.get(row) or {}
        prompt = ((r.get("prompt") or [{}])[-1] or {}).get("content") or ""
        sides = [len(((r.get(k) or [{}])[-1] or {}).get("content") or "") for k in ("chosen", "rejected")]
        out.append(f"<tr><td><a class='stats-row' href='{escape(deep_link(dataset, row))}' target='_blank'>{row}</a></td>"
                   f"<td>{escape(prompt[:160])}</td><td>{sides[0]:,}</td><td>{sides[1]:,}</td></tr>")
    out.append("</table>")
    return "".join(out)


def suspects_link(result, threshold: float, limit: int | None) -> str:
    """"Label the N suspects" of a check: a link to the Compare tab's queue of exactly the rows at or
    above ``threshold`` (the queue runs the check again, without ``limit``)."""
    over = sum(1 for m in result.matches if m.score >= threshold)
    if not over:
        return f"No row scores {threshold:.2f} or more."
    more = "+" if limit is not None and len(result.matches) >= limit and result.matches[-1].score >= threshold else ""
    q = insights.suspects_query(result.against, result.n, result.field, threshold)
    href = "?" + urlencode({"tab": "compare", "dataset": result.train, "queue": "contamination", "q": q})
    return (f"<a class='stats-label' id='stats-contam-label' href='{escape(href)}'>Label the {over:,}{more} "
            f"suspects at score ≥ {threshold:.2f} →</a>")


def contamination_html(db: Database, result, threshold: float | None = None, limit: int | None = None) -> str:
    ms = result.matches
    link = f" {suspects_link(result, threshold, limit)}" if threshold is not None and ms else ""
    head = (f"<p><b>{len(ms):,}</b> rows of {escape(result.train)} ({result.train_rows:,} rows, field "
            f"{escape(result.field)}) share {result.n}-grams with {escape(', '.join(result.against))} "
            f"({result.eval_rows:,} rows) — {result.seconds:.1f} s. Marked: matched words; dotted: words only "
            f"template n-grams cover (shared by several prompts).{link}</p>")
    if not ms:
        return head
    shown = ms[:CONTAM_SHOWN]
    texts = {r["row"]: r for r in catalogue.rows_of(db, result.train, [m.row for m in shown])}
    from ..insights.contamination import field_text

    out = [head, "<table><tr><th>row</th><th>score</th><th>eval row</th><th>training text</th></tr>"]
    for m in shown:
        text = field_text(texts.get(m.row) or {}, result.field)
        kind = "template-like" if m.template_share >= 0.5 else "distinctive"
        out.append(
            f"<tr><td><a href='{escape(deep_link(result.train, m.row))}' target='_blank'>{m.row}</a></td>"
            f"<td>{m.score:.2f}<br><small>{m.matched}/{m.eval_ngrams} n-grams<br>{kind}</small></td>"
            f"<td><a href='{escape(deep_link(m.eval_dataset, m.eval_row))}' target='_blank'>"
            f"{escape(m.eval_dataset)}/{m.eval_row}</a></td>"
            f"<td><div class='ct-text'>{insights.highlight(text, m.spans)}</div></td></tr>")
    out.append("</table>")
    if len(ms) > len(shown):
        out.append(f"<p>… and {len(ms) - len(shown):,} more (export, or the CLI's --json, for all).</p>")
    return "".join(out)


def map_outputs(db: Database, name: str | None, color: str | None, model: str | None) -> list:
    """(note, colour choice, plot) of the dataset's map: drawn when it has embeddings, else one line
    saying how to make them."""
    hide = [gr.update(visible=False), gr.update(value=None, visible=False)]
    if not name:
        return [""] + hide
    try:
        if not projection.has_map(db, name):
            return [f"**Map of the dataset:** {escape(name)} has no embeddings of its current version; make them "
                    f"with `python app.py embed {name} --model PATH` (any sentence-transformers model)."] + hide
        p = projection.projection(db, name, color or "label", model=model or None)
    except insights.StatsError as err:
        return [f"❌ {escape(err)}"] + hide
    note = f"**Map of the dataset** — {escape(projection.describe(p))} A click on a point opens its row in Compare."
    return [note, gr.update(visible=True), gr.update(value=charts.projection_map(p), visible=True)]


# -- the tab -------------------------------------------------------------------------------------


def build(studio: Studio) -> None:
    db = studio.db
    with gr.Tab("Statistics", id=TAB_ID):
        with gr.Row():
            dataset = gr.Dropdown(pair_datasets(db), label="Dataset (pairs)", scale=3, elem_id="stats-dataset")
            studio.follow(dataset, lambda: pair_datasets(db))
            unit = gr.Radio([("characters", "chars"), ("words", "words")], value="chars", label="Lengths in",
                            scale=2, elem_id="stats-unit")
            rmodel = gr.Dropdown([], label="Reward model (its accuracy by length difference)", visible=False,
                                 scale=2, elem_id="stats-model")
            run = gr.Button("Compute", variant="primary", scale=1, elem_id="stats-run")
        summary = gr.Markdown(elem_id="stats-summary")
        with gr.Row():
            bar = gr.Dropdown([], label="Rows behind a bar", scale=5, elem_id="stats-bar", filterable=True)
            show = gr.Button("Show rows", scale=1, elem_id="stats-show")
        rows = gr.HTML(elem_id="stats-rows")
        plots = []
        for names in GRID:
            with gr.Row():
                for name in names:
                    plots.append(gr.Plot(visible=False, show_label=False, elem_id=f"stats-plot-{name}"))
        with gr.Row(equal_height=True):
            map_note = gr.Markdown(elem_id="stats-map-note")
            map_color = gr.Radio([("label", "label"), ("margin", "margin"), ("length difference", "length")],
                                 value="label", label="Colour the map by", visible=False, elem_id="stats-map-color")
        map_plot = gr.Plot(visible=False, show_label=False, elem_id="stats-plot-map")
        with gr.Accordion("Contamination check: are evaluation prompts in this training set?", open=False,
                          elem_id="stats-contam-box"):
            with gr.Row():
                against = gr.Dropdown(pair_datasets(db), multiselect=True, label="Evaluation dataset(s)", scale=3,
                                      elem_id="stats-eval")
                studio.follow(against, lambda: pair_datasets(db))
                n = gr.Number(value=8, precision=0, minimum=1, maximum=50, label="n (words)", scale=1,
                              elem_id="stats-n")
                fld = gr.Dropdown(["prompt", "chosen", "rejected"], value="prompt", label="Training field", scale=1,
                                  elem_id="stats-field")
                threshold = gr.Slider(0, 1, value=0.5, step=0.05, label="Suspect at score ≥", scale=2,
                                      elem_id="stats-threshold")
            with gr.Row():
                check = gr.Button("Check", variant="primary", elem_id="stats-contam-run")
                export = gr.Button("Export the clean subset (rows below the threshold)", elem_id="stats-contam-export")
            contam = gr.HTML(elem_id="stats-contam")
            clean_file = gr.File(label="Clean subset (JSON lines)", visible=False, elem_id="stats-clean-file")

        @requires(DATASET.stats)
        def compute(name, u, model):
            hidden = gr.update(choices=[], value=None, visible=False)
            if not name:
                return ["Pick a dataset of pairs.", hidden, gr.update(choices=[], value=None), ""] + \
                    [gr.update(visible=False) for _ in PLOTS]
            try:
                # near duplicates next (``finish``): at a million prompts they take seconds more than the rest
                s = insights.dataset_stats(db, name, unit=u or "chars", model=model or None, near=False)
            except insights.StatsError as err:
                return [f"❌ {escape(err)}", hidden, gr.update(choices=[], value=None), ""] + \
                    [gr.update(visible=False) for _ in PLOTS]
            figs = figures(s)
            rm = s["reward_model"]
            models = gr.update(choices=rm["models"], value=rm["model"], visible=bool(rm["models"]))
            return [summary_markdown(s), models, gr.update(choices=bar_choices(s), value=None), ""] + \
                [gr.update(value=f, visible=True) if f is not None else gr.update(value=None, visible=False)
                 for f in figs]

        @requires(DATASET.stats)
        def finish(name, u, model):
            """The summary and the bars' picker again once the near duplicates are there."""
            if not name:
                return gr.update(), gr.update()
            try:
                s = insights.dataset_stats(db, name, unit=u or "chars", model=model or None)
            except insights.StatsError as err:
                return f"❌ {escape(err)}", gr.update()
            return summary_markdown(s), gr.update(choices=bar_choices(s))

        @requires(DATASET.stats)
        def draw_map(name, color, model):
            return map_outputs(db, name, color, model)

        @requires(DATASET.stats)
        def show_rows(name, key):
            if not name or not key:
                return "<p>Pick a bar first.</p>"
            try:
                found = insights.rows_for(db, name, key, limit=ROWS_SHOWN)
            except insights.StatsError as err:
                return f"<p>❌ {escape(err)}</p>"
            return rows_html(db, name, found, key)

        @requires(DATASET.stats)
        def run_check(name, evals, nn, field, threshold):
            try:
                result = insights.find_contamination(db, name, evals or [], n=int(nn or 8), fld=field or "prompt",
                                                     limit=CONTAM_LIMIT)
            except (insights.ContaminationError, ValueError, TypeError) as err:
                return f"<p>❌ {escape(err)}</p>"
            return contamination_html(db, result, float(threshold or 0), CONTAM_LIMIT)

        @requires(DATASET.export_clean)
        def run_export(name, evals, nn, field, thr):
            try:
                result = insights.find_contamination(db, name, evals or [], n=int(nn or 8), fld=field or "prompt",
                                                     threshold=float(thr or 0), limit=None)
                out = Path(tempfile.mkdtemp(prefix="clean-")) / f"{name}-clean.jsonl"
                kept = insights.export_clean(db, name, [m.row for m in result.matches], out)
            except (insights.ContaminationError, ValueError, TypeError) as err:
                return f"<p>❌ {escape(err)}</p>", gr.update(visible=False)
            return (f"<p>Wrote {kept:,} rows ({len(result.matches):,} suspects at score ≥ {float(thr or 0):.2f} "
                    f"left out).</p>", gr.update(value=str(out), visible=True))

        @requires(DATASET.stats)
        def on_open(request: gr.Request):
            params = query_params(request)
            choices = pair_datasets(db)
            if params.get("tab") != TAB_ID:
                return gr.update(choices=choices), gr.update(choices=choices), gr.update()
            name = params.get("dataset") if params.get("dataset") in choices else None
            return gr.update(choices=choices, value=name), gr.update(choices=choices), gr.update(selected=TAB_ID)

        outputs = [summary, rmodel, bar, rows] + plots
        ins = [dataset, unit, rmodel]
        for event in (run.click, dataset.change, unit.input, rmodel.input):
            event(compute, ins, outputs).then(finish, ins, [summary, bar])
        map_outputs_ = [map_note, map_color, map_plot]
        run.click(draw_map, [dataset, map_color, rmodel], map_outputs_)
        dataset.change(draw_map, [dataset, map_color, rmodel], map_outputs_)
        map_color.input(draw_map, [dataset, map_color, rmodel], map_outputs_)
        rmodel.input(draw_map, [dataset, map_color, rmodel], map_outputs_)
        show.click(show_rows, [dataset, bar], [rows])
        bar.input(show_rows, [dataset, bar], [rows])
        check.click(run_check, [dataset, against, n, fld, threshold], [contam])
        export.click(run_export, [dataset, against, n, fld, threshold], [contam, clean_file])
        studio.on_load.append((on_open, [dataset, against, studio.tabs]))
