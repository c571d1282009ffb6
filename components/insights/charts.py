"""The statistics as plotly figures: titled, with axis labels, readable on light and dark pages
(transparent background, mid-grey text and grid), and downloadable as PNG from plotly's toolbar.

Each bar carries its ``key`` in ``customdata``: ``stats.rows_for`` turns it into the bar's rows.
"""

from __future__ import annotations

import html

import plotly.graph_objects as go

CHOSEN = "#2f9e6e"
REJECTED = "#e0733a"
OTHER = "#5b8def"
TEXT = "#8a8f98"
GRID = "rgba(138, 143, 152, 0.25)"
SERIES_COLORS = {"chosen": CHOSEN, "rejected": REJECTED}
LABEL_COLORS = {"chosen": CHOSEN, "rejected": REJECTED, "tie": "#9b7be0", "both_bad": "#d9534f", "skip": "#9aa0a6"}


def _layout(fig: go.Figure, title: str, x: str, y: str, height: int = 340) -> go.Figure:
    fig.update_layout(
        title={"text": title, "x": 0.01}, height=height, margin={"l": 60, "r": 20, "t": 50, "b": 60},
        paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="rgba(0,0,0,0)", font={"color": TEXT},
        legend={"orientation": "h", "y": 1.02, "x": 1, "xanchor": "right", "yanchor": "bottom"},
        barmode="overlay", bargap=0.05,
    )
    fig.update_xaxes(title_text=x, gridcolor=GRID, zerolinecolor=GRID)
    fig.update_yaxes(title_text=y, gridcolor=GRID, zerolinecolor=GRID)
    return fig


def histogram(h: dict, y: str = "pairs") -> go.Figure:
    """Overlaid histograms of ``stats`` histogram ``h`` (one or two series on shared bins)."""
    fig = go.Figure()
    several = len(h.get("series", {})) > 1
    for name, counts in h.get("series", {}).items():
        fig.add_bar(x=h["labels"], y=counts, name=name, customdata=h.get(f"keys_{name}", h["keys"]),
                    marker_color=SERIES_COLORS.get(name, OTHER), opacity=0.6 if several else 0.9,
                    hovertemplate="%{x}: %{y:,} " + y + "<extra>" + name + "</extra>")
    return _layout(fig, h.get("title", ""), h.get("x", ""), y)


def bars(labels: list, counts: list, keys: list | None, title: str, x: str, y: str = "pairs",
         color: str = OTHER, horizontal: bool = False) -> go.Figure:
    fig = go.Figure()
    if horizontal:
        fig.add_bar(y=[str(v) for v in labels], x=counts, orientation="h", customdata=keys, marker_color=color,
                    hovertemplate="%{y}: %{x:,}<extra></extra>")
        fig = _layout(fig, title, x, y, height=max(260, 40 + 26 * len(labels)))
        fig.update_yaxes(autorange="reversed")
        return fig
    fig.add_bar(x=[str(v) for v in labels], y=counts, customdata=keys, marker_color=color,
                hovertemplate="%{x}: %{y:,}<extra></extra>")
    return _layout(fig, title, x, y)


def length_difference(bias: dict) -> go.Figure:
    d = bias["by_difference"]
    colors = [REJECTED if i < 5 else (TEXT if i == 5 else CHOSEN) for i in range(len(d["labels"]))]
    fig = go.Figure(go.Bar(x=d["labels"], y=d["counts"], customdata=d["keys"], marker_color=colors,
                           hovertemplate="%{x}: %{y:,} pairs<extra></extra>"))
    share = bias.get("chosen_longer_share")
    title = "Length bias: chosen − rejected"
    if share is not None:
        title += f" (chosen longer: {share:.1%})"
    return _layout(fig, title, "difference of the final responses", "pairs")


def longer_rate(bias: dict, labeled: dict | None = None) -> go.Figure:
    """How often the longer response is the chosen one, by how much longer: in the data, and in the
    current labels (how often annotators pick the longer one)."""
    g = bias["by_gap"]
    fig = go.Figure()
    fig.add_bar(x=g["labels"], y=[None if v is None else 100 * v for v in g["chosen_longer_rate"]],
                customdata=g["keys"], name="data: chosen is the longer", marker_color=CHOSEN,
                text=[f"n={n:,}" for n in g["pairs"]], textposition="outside",
                hovertemplate="%{x}: %{y:.1f}% (%{text})<extra></extra>")
    if labeled and labeled.get("judgments"):
        fig.add_bar(x=g["labels"], y=[None if v is None else 100 * v for v in labeled["by_gap"]],
                    customdata=g["keys"], name="labels: annotator picked the longer", marker_color=OTHER,
                    text=[f"n={n:,}" for n in labeled["judgments_by_gap"]], textposition="outside",
                    hovertemplate="%{x}: %{y:.1f}% (%{text})<extra></extra>")
    fig.add_hline(y=50, line_dash="dot", line_color=TEXT)
    fig = _layout(fig, "Is the longer response chosen? (by difference in characters)", "difference in characters",
                  "% of pairs")
    fig.update_layout(barmode="group")
    fig.update_yaxes(range=[0, 110])
    return fig


def per_annotator(p: dict) -> go.Figure:
    fig = go.Figure()
    for lab in p["labels"]:
        if any(p["counts"][lab]):
            fig.add_bar(x=p["annotators"], y=p["counts"][lab], name=lab, customdata=p["keys"][lab],
                        marker_color=LABEL_COLORS.get(lab, OTHER), hovertemplate="%{x}: %{y:,} " + lab + "<extra></extra>")
    fig = _layout(fig, "Labels per annotator", "annotator", "labels")
    fig.update_layout(barmode="stack")
    return fig


def progress(p: dict) -> go.Figure:
    fig = go.Figure()
    for name, counts in p["series"].items():
        fig.add_scatter(x=p["times"], y=counts, name=name, mode="lines+markers", line_shape="hv")
    return _layout(fig, f"Labels over time (cumulative, per {p['unit'] or 'day'})", "time", "labels")


def per_tag(tags: list[dict]) -> go.Figure:
    fig = go.Figure(go.Bar(
        x=[t["tag"] for t in tags], y=[t["alpha"] for t in tags], customdata=[t["key"] for t in tags],
        text=[f"{t['items']} shared" for t in tags], textposition="outside", marker_color=OTHER,
        hovertemplate="%{x}: alpha %{y:.2f} over %{text}<extra></extra>"))
    return _layout(fig, "Agreement per tag (Krippendorff's alpha over pairs with the tag)", "tag", "alpha")


def kappa_heatmap(a: dict) -> go.Figure:
    names = a["annotators"]
    text = [[("" if v is None else f"{v:.2f}") + (f"<br>n={a['shared'][i][j]}" if i != j else "")
             for j, v in enumerate(row)] for i, row in enumerate(a["kappa"])]
    fig = go.Figure(go.Heatmap(z=a["kappa"], x=names, y=names, zmin=-1, zmax=1, colorscale="RdBu",
                               text=text, texttemplate="%{text}", hovertemplate="%{y} × %{x}: %{z:.2f}<extra></extra>",
                               colorbar={"title": {"text": "kappa"}}))
    fig = _layout(fig, "Cohen's kappa between annotators", "annotator", "annotator",
                  height=max(320, 120 + 40 * len(names)))
    fig.update_yaxes(autorange="reversed")
    return fig


def model_accuracy(rm: dict, dataset: str) -> go.Figure:
    """A reward model's accuracy per length-difference bin, against the data and against the people's
    majority; each bar's ``customdata`` is the key of the pairs of that bin the model got wrong."""
    d = rm["by_difference"]
    fig = go.Figure()
    pct = lambda xs: [None if v is None else 100 * v for v in xs]  # noqa: E731
    fig.add_bar(x=d["labels"], y=pct(d["accuracy"]), customdata=d["keys"], name="vs the data's chosen side",
                marker_color=CHOSEN, text=[f"n={n:,}" if n else "" for n in d["pairs"]], textposition="outside",
                hovertemplate="%{x}: %{y:.1f}% right (%{text}) · click: the pairs it got wrong<extra></extra>")
    if rm.get("judged"):
        fig.add_bar(x=d["labels"], y=pct(d["majority_accuracy"]), customdata=d["keys_majority"],
                    name="vs the people's majority", marker_color=OTHER,
                    text=[f"n={n:,}" if n else "" for n in d["judged"]], textposition="outside",
                    hovertemplate="%{x}: %{y:.1f}% agree (%{text}) · click: the pairs it got wrong<extra></extra>")
    fig.add_hline(y=50, line_dash="dot", line_color=TEXT)
    name = html.escape(rm["model"] if len(rm["model"]) <= 60 else "…" + rm["model"][-59:])
    fig = _layout(fig, f"Reward model {name}: accuracy by length difference<br><sup>% of pairs where it prefers "
                       "the chosen (or the majority's) side · click a bar to label the pairs it got wrong</sup>",
                  "chosen − rejected (characters of the final responses)", "% right", height=400)
    fig.update_layout(barmode="group", margin={"t": 80}, meta={"link": "queue", "dataset": dataset})
    fig.update_yaxes(range=[0, 115])
    return fig


MAP_COLORS = {**LABEL_COLORS, "no majority": "#c9a227", "unlabeled": "rgba(138, 143, 152, 0.55)"}
MAP_WEBGL = 5000
"""Points above which the map is drawn with WebGL (SVG slows down past a few thousand points)."""


def projection_map(p: dict) -> go.Figure:
    """The 2-D map of ``projection.projection``: one point a row (``customdata``), coloured by label
    (one legend entry per label) or by a number (a diverging scale around 0)."""
    fig = go.Figure()
    Scatter = go.Scattergl if p["shown"] > MAP_WEBGL else go.Scatter
    hover = [f"row {r}<br>{html.escape(t)}" for r, t in zip(p["rows"], p["prompts"])]
    marker = {"size": 6 if p["shown"] <= 2000 else 4, "opacity": 0.85}
    if p["color"] == "label":
        for lab in [*LABEL_COLORS, "no majority", "unlabeled"]:
            idx = [i for i, v in enumerate(p["values"]) if v == lab]
            if idx:
                fig.add_trace(Scatter(
                    x=[p["x"][i] for i in idx], y=[p["y"][i] for i in idx], mode="markers", name=lab,
                    customdata=[p["rows"][i] for i in idx], text=[hover[i] for i in idx],
                    marker={**marker, "color": MAP_COLORS[lab]}, hovertemplate="%{text}<extra>" + lab + "</extra>"))
    else:
        values = [v if v is not None else float("nan") for v in p["values"]]
        top = max((abs(v) for v in p["values"] if v is not None), default=1) or 1
        fig.add_trace(Scatter(
            x=p["x"], y=p["y"], mode="markers", customdata=p["rows"],
            text=[f"{h}<br>{html.escape(p['color_title'])}: " + ("–" if v is None else f"{v:,.3g}")
                  for h, v in zip(hover, p["values"])],
            marker={**marker, "color": values, "colorscale": "RdBu", "cmin": -top, "cmax": top,
                    "colorbar": {"title": {"text": html.escape(p["color_title"]), "side": "right"}}},
            hovertemplate="%{text}<extra></extra>", showlegend=False))
    ex = p["explained"]
    sampled = (f"a sample of {p['shown']:,} of {p['total']:,} rows" if p["sampled"] else f"{p['shown']:,} rows")
    title = (f"Map of the dataset: {sampled}, embeddings of the {html.escape(p['field'])} "
             f"<br><sup>{p['method']} of the {html.escape(p['model'][-60:])} vectors ({ex[0]:.0%} + {ex[1]:.0%} "
             f"of the variance) · coloured by {html.escape(p['color_title'])} · click a point to open its row</sup>")
    fig = _layout(fig, title, "first principal component", "second principal component", height=560)
    fig.update_layout(margin={"t": 80}, hovermode="closest", meta={"link": "row", "dataset": p["dataset"]})
    return fig
