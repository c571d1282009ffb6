"""The Search tab's hit cards: what ranked each hit (BM25, similarity, or fused rank), where its
snippet comes from, its ratings and label status, and links to its row and to the rows like it; and
the link that labels a page's hits. Plain functions of a search's ``Results``: the text they show is
escaped here, the snippets arrive escaped with their marks."""

from __future__ import annotations

from urllib.parse import urlencode

from .. import search as engine
from .common import compare_link, escape
from .search_form import TAB_ID


def _number(x: float) -> str:
    return f"{x:g}"


def score_html(h: engine.Hit, ranking: str = "bm25") -> str:
    """What ranked the hit: its BM25 score, its cosine similarity, or its fused score and places."""
    if ranking == "hybrid":
        places = " · ".join(f"{name} #{r}" for name, r in (("BM25", getattr(h, "bm25_rank", None)),
                                                           ("semantic", getattr(h, "semantic_rank", None))) if r)
        return (f'<span class="sr-score" title="reciprocal rank fusion of the BM25 and the semantic ranking">'
                f'fused {h.score:.4f} ({escape(places)})</span>')
    if ranking in ("semantic", "similar") and getattr(h, "similarity", None) is not None:
        return f'<span class="sr-score" title="cosine similarity of the embeddings">similarity {h.similarity:.4f}</span>'
    if ranking == "similar":
        return f'<span class="sr-score" title="BM25 score of the MoreLikeThis query">MoreLikeThis {h.score:.4f}</span>'
    return f'<span class="sr-score" title="BM25 relevance score">BM25 {h.score:.4f}</span>'


def hit_html(h: engine.Hit, ranking: str = "bm25") -> str:
    """One hit card: where its snippet comes from, what ranked it, ratings, margin, label status, and
    a link to the rows like it."""
    similar = urlencode({"tab": TAB_ID, "similar": h.row, "datasets": h.dataset})
    meta = [f'<span class="sr-rank">#{h.rank}</span>',
            f'<a class="sr-open" href="{escape(h.link)}">{escape(h.dataset)} · row {h.row}</a>',
            score_html(h, ranking)]
    if h.part:
        who = f" · {escape(h.speaker)}" if h.speaker else ""
        turn = f", turn {h.turn}" if h.turn else ""
        meta.append(f'<span class="sr-part side-{escape(h.part)}">{escape(h.part)}{who}{turn}</span>')
    if h.score_chosen is not None or h.score_rejected is not None:
        ratings = [f"{side} {_number(v)}" for side, v in (("chosen", h.score_chosen), ("rejected", h.score_rejected))
                   if v is not None]
        if h.margin is not None:
            ratings.append(f"margin {h.margin:+g}")
        meta.append(f'<span class="sr-ratings">{escape(" · ".join(ratings))}</span>')
    if h.labels:
        votes = ", ".join(f"{label} {n}" for label, n in h.labels.items())
        meta.append(f'<span class="sr-label">labeled: {escape(votes)}</span>')
    else:
        meta.append('<span class="sr-label">unlabeled</span>')
    if h.source_id:
        meta.append(f"<span>id {escape(h.source_id)}</span>")
    meta.append(f'<a class="sr-similar" href="?{escape(similar)}" title="rows like this one">similar</a>')
    return (f'<div class="sr-hit" data-dataset="{escape(h.dataset)}" data-row="{h.row}">'
            f'<div class="sr-meta">{"".join(meta)}</div><div class="sr-snippet">{h.snippet}</div></div>')


def results_html(res: engine.Results, like: int | None = None) -> str:
    """The hit cards of one page (``data-query``: the query they answer, for scripts that wait for them;
    ``like``: the row a search for rows like it started from)."""
    query = escape(res.query)
    if not res.hits:
        return f'<div class="sr-empty" data-query="{query}">No hits.</div>'
    ranking = getattr(res, "ranking", "bm25")
    if ranking == "similar":  # the queue of the same rows: the row itself (``like``), then those like it
        link = "?" + urlencode({"tab": "compare", "dataset": res.datasets[0], "queue": "similar", "q": like})
        label = f'<a class="sr-label-hits" href="{escape(link)}">Label these rows in {escape(res.datasets[0])} →</a>'
    elif ranking == "bm25":  # the search queue finds pairs by BM25
        label = "".join(
            f'<a class="sr-label-hits" href="{escape(compare_link(ds, None, res.query))}">Label these hits in {escape(ds)} →</a>'
            for ds in dict.fromkeys(h.dataset for h in res.hits))
    else:
        label = ""
    return (f'<div class="sr-list" data-query="{query}"><div class="sr-actions">{label}</div>'
            + "".join(hit_html(h, ranking) for h in res.hits) + "</div>")
