"""The agreement screen of the Compare tab: kappa and alpha, labels per annotator, a confusion table,
and the disagreements (a click opens one on the labeling screen)."""

from __future__ import annotations

import gradio as gr

from .. import labels
from ..labels import LabelError
from ..store import Database
from .common import as_int, escape, requires
from .label import LabelScreen, name_or_none, new_queue
from ..policies import LABEL

LABEL_COLORS = {"chosen": "#16a34a", "rejected": "#dc2626", "tie": "#6b7280", "both_bad": "#f59e0b"}

# -- plain functions (what the handlers call; tests call them too) ---------------------------------


def _figure(x: float | None, percent: bool = False) -> str:
    if x is None:
        return "n/a"
    return f"{x:.0%}" if percent else f"{x:.3f}"


def agreement_markdown(agr: labels.Agreement) -> str:
    if len(agr.annotators) < 2:
        return (f"**{escape(agr.dataset)}**: {len(agr.annotators)} annotator(s), {agr.judged:,} pairs judged. "
                "Agreement needs two annotators labeling the same pairs.")
    lines = [f"**{escape(agr.dataset)}** · {len(agr.annotators)} annotators · {agr.items:,} pairs judged by two or "
             f"more (of {agr.judged:,} judged)", ""]
    if len(agr.annotators) == 2:
        lines.append(f"- **Cohen's kappa:** {_figure(agr.kappa)} (scikit-learn)")
    lines.append(f"- **Krippendorff's alpha** (nominal): {_figure(agr.alpha)} (krippendorff)")
    lines.append(f"- **Raw agreement** (pairs of annotators giving the same label): {_figure(agr.raw, True)}"
                 f" · unanimous pairs: {_figure(agr.unanimous, True)}")
    lines.append(f"- **Disagreements:** {len(agr.disagreements):,} pairs — click one below to open it")
    if agr.alpha is None and agr.items:
        lines.append("\n_n/a: every label given is the same, so chance-corrected agreement is undefined._")
    return "\n".join(lines)


def agreement_figure(agr: labels.Agreement):
    """Labels per annotator (stacked bars) and, with two or more, the pairwise kappa heatmap (plotly)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    names = agr.annotators
    in_pairs = sorted({p["a"] for p in agr.pairwise} | {p["b"] for p in agr.pairwise}, key=names.index)
    two = len(in_pairs) >= 2
    busiest = " (the busiest annotators)" if len(in_pairs) < len(names) else ""
    fig = make_subplots(rows=1, cols=2 if two else 1, column_widths=[0.55, 0.45] if two else None,
                        subplot_titles=["Labels per annotator"] + ([f"Pairwise Cohen's kappa{busiest}"] if two else []))
    for lab in labels.JUDGMENTS:
        fig.add_trace(go.Bar(name=labels.BY_NAME[lab].title, x=names, y=[agr.counts[a].get(lab, 0) for a in names],
                             marker_color=LABEL_COLORS[lab]), row=1, col=1)
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


def confusion_table(db: Database, dataset: str, first: str | None, second: str | None) -> list[list]:
    if not first or not second or first == second:
        return []
    names, m = labels.confusion(db, dataset, first, second)
    return [[f"{first}: {labels.BY_NAME[names[i]].title}", *m[i]] for i in range(len(names))]


def disagreement_table(agr: labels.Agreement) -> list[list]:
    return [
        [d["row"], ", ".join(f"{a}: {labels.BY_NAME[lab].title}" for a, lab in d["labels"].items()),
         labels.BY_NAME[d["majority"]].title if d["majority"] else "no majority"]
        for d in agr.disagreements
    ]


def pair_to_compare(agr: labels.Agreement, first: str | None, second: str | None) -> tuple[str, str] | None:
    """The two annotators the confusion table shows: the ones picked, else the busiest pair."""
    if first in agr.annotators and second in agr.annotators and first != second:
        return first, second
    return labels.busiest_pair(agr)


# -- the view ---------------------------------------------------------------------------------------


def build(db: Database, screen: LabelScreen, tabs: gr.Tabs, tab: gr.Tab) -> None:
    """The agreement screen's layout (inside ``tab``) and its event wiring; a disagreement clicked
    opens on ``screen`` (the labeling screen, in ``tabs``)."""
    c = screen.controls
    with gr.Row(equal_height=False):
        annotators = gr.Dropdown(label="Annotators (empty: everyone)", multiselect=True, choices=[], scale=4,
                                 elem_id="agr-annotators")
        compute = gr.Button("Compute agreement", variant="primary", scale=1, elem_id="agr-compute")
    summary = gr.Markdown(elem_id="agr-summary")
    plot = gr.Plot(elem_id="agr-plot", show_label=False)
    gr.Markdown("#### Confusion table (first annotator's labels down, second's across)")
    with gr.Row():
        first = gr.Dropdown(label="First annotator", choices=[], elem_id="agr-a")
        second = gr.Dropdown(label="Second annotator", choices=[], elem_id="agr-b")
    confusion = gr.Dataframe(headers=["", *(labels.BY_NAME[x].title for x in labels.JUDGMENTS)], interactive=False,
                             elem_id="agr-confusion")
    gr.Markdown("#### Disagreements (click a row to open the pair)")
    table = gr.Dataframe(headers=["row", "labels", "majority"], interactive=False, wrap=True,
                         elem_id="agr-disagreements", column_widths=["10%", "70%", "20%"])
    shown_rows = gr.State([])

    @requires(LABEL.agreement)
    def compute_agreement(dataset, chosen_annotators, first_name, second_name):
        unchanged = [gr.update(), gr.update(), gr.update(), [], [], gr.update()]
        if not dataset:
            return ["Pick a dataset.", None, *unchanged]
        try:
            agr = labels.agreement(db, dataset, chosen_annotators or None)
        except LabelError as err:
            return [f"⚠️ {escape(err)}", None, *unchanged]
        everyone = labels.label_annotators(db, dataset)
        pair = pair_to_compare(agr, first_name, second_name)
        return [
            agreement_markdown(agr),
            agreement_figure(agr) if agr.annotators else None,
            gr.update(choices=everyone, value=[x for x in (chosen_annotators or []) if x in everyone]),
            gr.update(choices=agr.annotators, value=pair[0] if pair else None),
            gr.update(choices=agr.annotators, value=pair[1] if pair else None),
            confusion_table(db, dataset, *pair) if pair else [],
            disagreement_table(agr),
            [d["row"] for d in agr.disagreements],
        ]

    inputs = [c.dataset, annotators, first, second]
    outputs = [summary, plot, annotators, first, second, confusion, table, shown_rows]
    compute.click(compute_agreement, inputs, outputs)
    tab.select(compute_agreement, inputs, outputs)
    @requires(LABEL.agreement)
    def show_confusion(dataset, first_name, second_name):
        return confusion_table(db, dataset, first_name, second_name)

    for picker in (first, second):
        picker.input(show_confusion, [c.dataset, first, second], confusion)

    @requires(LABEL.queue)
    def open_disagreement(dataset, rows, typed_name, with_diff, evt: gr.SelectData, *, who=None):
        row = as_int((evt.row_value or [None])[0], -1)
        name = name_or_none(typed_name, who)
        state = new_queue(db, dataset, "disagreements", None, name, row if row >= 0 else None)
        if rows and row in rows:  # the list as shown (it may be among some annotators only)
            state["rows"], state["pos"] = list(rows), list(rows).index(row)
        return [gr.update(selected="label"), gr.update(value="disagreements"), gr.update(visible=False),
                *screen.render(state, name, with_diff, reset=True)]

    table.select(open_disagreement, [c.dataset, shown_rows, c.annotator, c.diff_toggle],
                 [tabs, c.queue, c.query, *screen.outputs, *screen.form])
