"""What the labeling screen shows and does, as plain functions over a queue state (a dict the page
keeps per browser): which pair is on screen, how it is drawn, labeling, undo and moving on. The
screen (``views.label``) calls them; so do the tests."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from .. import diff, labels
from ..labels import LabelError
from ..labels import suggestions
from .. import policies, triage
from ..triage import SCORE_QUEUES
from ..labels.label_schema import flip_choice, flip_grade, scale_keys
from ..labels.settings import label_schema
from ..labels.ranking import record_responses
from ..labels.settings import blind_title, is_blind, swapped, unblind
from ..search.find import terms
from ..store import Database
from .common import chat, escape, marker, similar_links
from .. import catalogue


@dataclass
class LabelForm:
    """What goes with a label besides the label itself."""

    confidence: Any = None  # 1-3, or 0/None for none
    note: str | None = None
    tags: list[str] | None = None
    shown_row: int | None = None  # the pair on screen when the key was pressed


def pair_datasets(db: Database) -> list[str]:
    return [d.name for d in catalogue.datasets(db) if d.kind == "pairs"]


def signed_in(who) -> bool:
    """Whether the caller signed in (a password or Hugging Face): then labels carry their name."""
    return policies.signed_in(who)


def annotator_for(typed: str | None, who=None) -> str:
    """The annotator of a label (``policies.label_as``): the signed-in user's name whatever was typed
    (or sent to ``/label``); in the open local tool, the name typed in; nobody else labels.

    >>> from components.access import Identity
    >>> annotator_for("mallory", Identity("ada", "annotator", "password")), annotator_for(" bo ", None)
    ('ada', 'bo')
    """
    name = policies.label_as(who, typed)
    if name is None and who is not None:
        raise LabelError("sign in to label")
    return labels.check_annotator(name)


def name_or_none(typed: str | None, who=None) -> str | None:
    """The annotator whose queue the screen shows: None for a signed-in caller who may not label (a
    viewer's queue would hold pairs in a project with an overlap)."""
    if signed_in(who) and not who.can("annotator"):
        return None
    try:
        return annotator_for(typed, who)
    except LabelError:
        return None


def response_text(messages: list[dict] | None) -> str:
    return "\n\n".join((m.get("content") or "") for m in messages or [])


def lengths(text: str) -> str:
    chars, words = diff.counts(text)
    return f"{chars:,} characters · {words:,} words"


def diff_html(left: str, right: str, names: tuple[str, str] = ("Chosen", "Rejected")) -> str:
    a, b = diff.word_diff(left, right)
    first, second = (escape(n) for n in names)
    return (
        f'<div class="wd-cols"><div class="wd-side"><h4>{first} (words not in {second.lower()} struck out)</h4>'
        f'{a}</div><div class="wd-side"><h4>{second} (words not in {first.lower()} highlighted)</h4>{b}</div></div>'
    )


SIDES = {False: ("Chosen", "Rejected"), True: ("A", "B")}
"""What the two panes are called: as in the source, or blind."""


def pair_view(db: Database, dataset: str | None, row: int | None, with_diff: bool = False, blind: bool = False,
              query: str | None = None) -> dict:
    """Everything the labeling screen shows for one pair (empty fields when there is none). Blind, the
    sides are A and B in the pair's drawn order, and the scores that would tell them apart are left
    out; with ``query``, its words are marked and ``open_earlier`` says whether they are in an earlier turn."""
    empty = {"found": False, "prompt": [], "earlier": [], "left": [], "right": [], "left_len": "", "right_len": "",
             "diff": "", "metadata": {}, "swapped": False, "open_earlier": False, "responses": None}
    if not dataset or row is None:
        return empty
    rec = catalogue.record(db, dataset, int(row))
    if rec is None or rec.get("rejected") is None:
        return empty
    flip = blind and swapped(dataset, int(row))
    prompt = rec.get("prompt") or []
    last = max((i for i, m in enumerate(prompt) if m.get("role") == "user"), default=len(prompt) - 1)
    left, right = (rec.get("rejected"), rec.get("chosen")) if flip else (rec.get("chosen"), rec.get("rejected"))
    left_text, right_text = response_text(left), response_text(right)
    hidden = ("score_chosen", "score_rejected") if blind else ()
    meta = {key: rec[key] for key in ("score_chosen", "score_rejected", "source_id")
            if rec.get(key) is not None and key not in hidden}
    responses = record_responses(rec.get("metadata"))
    meta |= {k: v for k, v in (rec.get("metadata") or {}).items()
             if not (blind and ("chosen" in k or "rejected" in k)) and k != "responses"}
    meta["word_overlap"] = round(diff.similarity(left_text, right_text), 3)
    mark = marker(terms(query)) if query else None
    earlier = prompt[:last] if prompt else []
    return {
        "found": True,
        "prompt": chat(prompt[last:] if prompt else [], mark),
        "earlier": chat(earlier, mark),
        "left": chat(left, mark),
        "right": chat(right, mark),
        "left_len": lengths(left_text),
        "right_len": lengths(right_text),
        "diff": diff_html(left_text, right_text, SIDES[blind]) if with_diff else "",
        "metadata": meta,
        "swapped": flip,
        "open_earlier": bool(mark and any(mark.search(m.get("content") or "") for m in earlier)),
        "responses": responses,
    }


def new_queue(db: Database, dataset: str | None, mode: str = "unlabeled", query: str | None = None,
              annotator: str | None = None, row: int | None = None, model: str | None = None,
              model2: str | None = None) -> dict:
    """A labeling queue positioned at ``row`` if given, else where ``annotator`` left off. ``model``
    (default: the first model that scored the dataset) gives the suggestions and orders the score
    queues; ``model2`` is the second model of "two models disagree"."""
    info = catalogue.dataset(db, dataset) if dataset else None
    state = {"dataset": dataset, "mode": mode, "query": query or "", "rows": [], "pos": None, "auto": row is None,
             "engine": None, "message": "", "blind": is_blind(db, dataset) if info else False,
             "overlap": labels.overlap(db, dataset) if info else None, "models": [], "model": None, "model2": None,
             "suggest": None, "schema": label_schema(db, dataset) if info else None}
    if info is not None and info.kind == "pairs":
        from ..scores.store import scoring_models

        models = state["models"] = scoring_models(db, info.name)
        state["model"] = model if model in models else (models[0] if models else None)
        others = [m for m in models if m != state["model"]]
        state["model2"] = model2 if model2 in others else (others[0] if others else None)
        state["suggest"] = suggestions.source(db, info.name, info.version, state["model"])
    if not dataset:
        state["message"] = "Pick a dataset of preference pairs."
        return state
    try:
        queue = triage.open_queue(db, dataset, mode, query, state["model"], state["model2"])
    except LabelError as err:
        state["message"] = f"⚠️ {escape(err)}"
        return state
    state["rows"] = rows = queue.rows
    state["engine"] = queue.engine
    if row is not None:
        if row in rows:
            state["pos"] = rows.index(row)
        elif (rec := catalogue.record(db, dataset, row)) is not None and rec.get("rejected") is not None:
            state["rows"] = rows = [row, *rows]  # a pair outside this queue, opened by a link: show it first
            state["pos"] = 0
        else:
            state["message"] = f"⚠️ row {row} is not a pair of {escape(dataset)} (past the end, or rejected at ingest)"
    if state["pos"] is None and rows:
        state["pos"] = resume(db, state, annotator)
    if not rows:
        state["message"] = {"search": "No pair matches that search.",
                            "disagreements": "No disagreements: no pair has two annotators with different labels."
                            }.get(mode, "No pair in this queue." if mode in triage.QUEUES and mode != "unlabeled"
                                  else "This dataset has no pairs.")
    return state


def resume(db: Database, state: dict, annotator: str | None, start: int = 0) -> int | None:
    """Where ``annotator`` goes next: the first pair they have not labeled at or after ``start``."""
    rows = state["rows"]
    if not rows:
        return None
    if state["mode"] == "disagreements":
        return min(start, len(rows) - 1) if start < len(rows) else None
    if state["mode"] == "unlabeled" and state.get("overlap") and annotator:
        return _project_next(db, state, annotator)
    done = labels.labeled_rows(db, state["dataset"], annotator) if annotator else {}
    pos = labels.next_unlabeled(rows, done, start)
    if pos is None:
        state["message"] = (f"✅ You have labeled every pair in this queue ({len(rows):,}). <kbd>←</kbd> goes back "
                            "through them; or pick another dataset or queue.")
    return pos


def _project_next(db: Database, state: dict, annotator: str) -> int | None:
    """The pair the overlap queue hands ``annotator`` (reserved for them), or why there is none."""
    try:
        row = labels.next_pair(db, state["dataset"], annotator)
    except LabelError as err:
        state["message"] = f"⚠️ {escape(err)}"
        return None
    if row is None:
        p = labels.project_progress(db, state["dataset"])
        state["message"] = ("✅ " + labels.progress_line(p) if p["done"] else
                            "Nothing for you right now: you labelled every pair that still needs labels, or the "
                            "rest are with other annotators. Start / resume again in a few minutes.")
        return None
    if row not in state["rows"]:
        state["rows"] = [row, *state["rows"]]  # a new list: the queue's rows may be a shared cache
    return state["rows"].index(row)


def title_of(label: str, state: dict, row: int) -> str:
    """A stored label as the screen names it (A/B when blind)."""
    if state.get("blind"):
        return blind_title(label, swapped(state["dataset"], row))
    return labels.BY_NAME[label].title


def current_row(state: dict | None) -> int | None:
    if not state or state.get("pos") is None or not state.get("rows"):
        return None
    return state["rows"][state["pos"]]


def label_current(db: Database, state: dict, label: str | None, annotator: str, form: LabelForm | None = None,
                  options: dict | None = None, accept: bool = False, graded: dict | None = None) -> dict:
    """Label the pair on screen and move to the next one; returns the new state (message set). With
    ``accept``, the label is the model's suggestion shown for the pair; every label given beside a
    suggestion records it (``labels.suggestions.label_options``). ``graded`` holds what the label
    schema adds (``grade`` and ``aspects`` as given on the A/B screen, ``reasons``, ``rationale``)
    or a ``ranking`` of an N-response pair."""
    form = form or LabelForm()
    state = dict(state)
    row = form.shown_row if form.shown_row is not None else current_row(state)
    if row is None:
        raise LabelError("no pair on screen to label" + (": every pair in this queue is labeled (← reviews them)"
                                                        if state.get("rows") else ""))
    blind = bool(state.get("blind"))
    flip = blind and swapped(state["dataset"], row)
    shown = state.get("shown_at") if state.get("shown_row") == row else None
    suggestion = state.get("suggestion")
    suggestion = suggestion if suggestion and suggestion.get("row") == row and not blind else None
    if accept and blind:
        raise LabelError("blind labeling shows no suggestions")
    extra = suggestions.label_options(suggestion, accept)
    if accept:
        label, flip = suggestion["label"], False
    g = dict(graded or {})
    if g.get("aspects"):
        g["aspects"] = {k: flip_choice(v, flip) for k, v in g["aspects"].items() if v}
    grade = g.get("grade")
    if flip and grade not in (None, ""):
        try:
            grade = flip_grade(int(grade), True)
        except (TypeError, ValueError):
            raise LabelError(f"a grade is a whole number, not {grade!r}") from None
    event = labels.submit(db, state["dataset"], row, unblind(label, flip) if label else label, annotator,
                          form.confidence, form.note, form.tags,
                          options=(options or {}) | {"queue": state["mode"], "query": state["query"] or None,
                                                     "via": "ui"} | ({"blind": True} if blind else {})
                          | extra, seconds=time.time() - shown if shown else None,
                          grade=grade, aspects=g.get("aspects"), reasons=g.get("reasons"),
                          rationale=g.get("rationale"), ranking=g.get("ranking"))
    pos = state["rows"].index(row) if row in state["rows"] else state["pos"] or 0
    state["pos"] = resume(db, state, event["annotator"], pos + 1)
    state["auto"] = False
    state["message"] = (f"Row {row}: **{title_of(event['label'], state, row)}**"
                        + (" (the model's suggestion)" if accept else "")
                        + (f" (confidence {event['confidence']})" if event["confidence"] else "")
                        + " · <kbd>U</kbd> undoes it." + (" " + state["message"] if state["pos"] is None else ""))
    return state


def undo_last(db: Database, state: dict, annotator: str) -> dict:
    state = dict(state)
    undone = labels.undo(db, state["dataset"], annotator, options={"via": "ui"})
    if undone is None:
        state["message"] = "Nothing to undo: you have no label left in this dataset."
        return state
    if undone["row"] not in state["rows"]:
        state["rows"] = [undone["row"], *state["rows"]]
    state["pos"] = state["rows"].index(undone["row"])
    state["auto"] = False
    state["message"] = f"Undid **{title_of(undone['label'], state, undone['row'])}** on row {undone['row']}."
    return state


def move(state: dict, step: int) -> dict:
    state = dict(state)
    rows = state.get("rows") or []
    if not rows:
        return state
    pos = state["pos"] if state.get("pos") is not None else (len(rows) if step < 0 else -1)
    state["pos"] = min(max(pos + step, 0), len(rows) - 1)
    state["auto"] = False
    state["message"] = ""
    return state


def title_markdown(state: dict) -> str:
    row = current_row(state)
    if row is None:
        return state.get("message") or "No pair to show."
    queue = triage.QUEUES.get(state["mode"], state["mode"])
    if state["mode"] == "search":
        queue += f" for “{escape(state['query'])}” ({state.get('engine') or 'text match'})"
    elif state["mode"] == "similar":
        queue = f"Rows like row {escape(state['query'])} ({escape(state.get('engine') or '')})"
    elif state["mode"] in SCORE_QUEUES:
        models = [state.get("model"), state.get("model2") if state["mode"] == "models_disagree" else None]
        queue += " by " + " and ".join(escape(m) for m in models if m)
    return (f"**{escape(state['dataset'])}** · row **{row}** · pair {state['pos'] + 1:,} of {len(state['rows']):,} "
            f"in *{queue}* · {similar_links(state['dataset'], row)}")



def mine_markdown(db: Database, state: dict, annotator: str | None) -> str:
    row = current_row(state)
    if row is None:
        return ""
    labs = labels.pair_labels(db, state["dataset"], row)
    mine = next((lab for lab in labs if lab["annotator"] == annotator), None)
    others = [lab for lab in labs if lab["annotator"] != annotator]
    text = "Your label: " + (
        f"**{title_of(mine['label'], state, row)}**" + (f", confidence {mine['confidence']}" if mine["confidence"] else "")
        if mine else "none yet")
    if others:
        if state["mode"] == "disagreements":
            text += " · others: " + ", ".join(
                f"{escape(o['annotator'])}: {title_of(o['label'], state, row)}" for o in others)
        else:
            text += f" · {len(others)} other annotator{'s' if len(others) != 1 else ''} labeled it"
    return text


def progress_markdown(db: Database, state: dict, annotator: str | None) -> str:
    if not state or not state.get("dataset") or not state.get("rows"):
        return ""
    if state.get("overlap") and state["mode"] == "unlabeled":
        p = labels.project_progress(db, state["dataset"])
        mine = next((a["judgments"] for a in p["annotators"] if a["annotator"] == annotator), 0)
        return (f"**You:** {mine:,} labelled · **Project:** {escape(labels.progress_line(p))}" if annotator
                else f"**Project:** {escape(labels.progress_line(p))}")
    rows = None if state["mode"] == "unlabeled" else state["rows"]
    p = labels.progress(db, state["dataset"], annotator, rows)
    total = p["total"]
    you = (f"**You:** {p['mine']:,} of {total:,}" + (f" ({p['skipped']:,} skipped)" if p["skipped"] else "")
           if annotator else "**You:** enter your name to start")
    who_else = f"{p['annotators']} annotator{'s' if p['annotators'] != 1 else ''}"
    return f"{you} · **Everyone:** {p['anyone']:,} of {total:,} labeled ({who_else})"


def form_values(db: Database, state: dict, annotator: str | None) -> list:
    """Confidence, note and tags for the pair on screen: the annotator's earlier ones when they
    labeled it before, else empty."""
    row = current_row(state)
    mine = labels.current_label(db, state["dataset"], row, annotator) if row is not None and annotator else None
    if not mine or mine["label"] == "skip" and not (mine["note"] or mine["tags"]):
        return [0, "", []]
    return [mine["confidence"] or 0, mine["note"] or "", list(mine["tags"] or [])]


def with_suggestion(db: Database, state: dict) -> dict:
    """``state`` with the suggestion for the pair on screen (one lookup; none when blind)."""
    row = current_row(state)
    found = None if state.get("blind") or row is None else suggestions.lookup(db, state["dataset"], row,
                                                                              state.get("suggest"))
    return state if state.get("suggestion") == found else dict(state) | {"suggestion": found}


def suggestion_html(state: dict, can_label: bool) -> str:
    """The model's suggestion beside the pair: which side it prefers and by how much; read-only scores
    for whoever cannot label. Empty when blind or when the model did not score the pair."""
    s = state.get("suggestion")
    if not s or state.get("blind"):
        return ""
    model = escape(s["model"])
    scores = (f"chosen {s['score_chosen']:.3f} · rejected {s['score_rejected']:.3f} · "
              f"margin <b>{s['margin']:+.3f}</b>")
    if not can_label:
        return f"<div class='cmp-suggest'>Model scores ({model}): {scores}</div>"
    side = {"chosen": "the <b>chosen</b> side (left)", "rejected": "the <b>rejected</b> side (right)",
            "tie": "neither side (a tie)"}[s["label"]]
    return (f"<div class='cmp-suggest'>Suggestion: <b>{model}</b> prefers {side} by {abs(s['margin']):.3f} "
            f"<small>({scores})</small> · <kbd>A</kbd> accepts it</div>")


def graded_html(schema: dict | None, responses: list[dict] | None, blind: bool = False) -> str:
    """The keyboard panel of a graded schema or of an N-response pair (``static/compare.js`` reads
    its data attributes and keeps what is pressed until the label is sent); empty for a binary pair.

    Ranking: the numbered responses, then the order pressed. Graded: the scale's keys, then a row per
    aspect (Tab moves to it, 1 / 2 / 3 choose A, B or the same)."""
    import json

    if responses and len(responses) > 2:
        cards = "".join(
            f'<div class="cmp-resp" data-index="{i}"><div class="cmp-resp-head"><kbd>{i + 1}</kbd> Response {i + 1}'
            f'<span class="cmp-rank-place"></span></div><div class="cmp-resp-text">{escape(r["content"])}</div></div>'
            for i, r in enumerate(responses[:9]))
        return (f'<div id="cmp-graded-panel" data-mode="rank" data-n="{min(len(responses), 9)}">'
                f'<div class="cmp-graded-help">Rank the responses: press their numbers, best first '
                f'(<kbd>Backspace</kbd> takes the last one back). The last number sends the ranking.</div>'
                f'<div class="cmp-rank-order">Ranking: <b class="cmp-rank-now">none yet</b></div>'
                f'<div class="cmp-resps">{cards}</div></div>')
    if not schema or not schema.get("points"):
        return ""
    points = schema["points"]
    scale = "".join(f'<span class="cmp-point" data-grade="{g}"><kbd>{k}</kbd> {escape(t)}</span>'
                    for k, g, t in scale_keys(points))
    aspects = schema.get("aspects") or []
    rows = "".join(
        f'<div class="cmp-aspect" data-aspect="{escape(a)}" data-index="{i}"><span class="cmp-aspect-name">'
        f'{escape(a)}</span> <span class="cmp-choice" data-choice="chosen"><kbd>1</kbd> A</span>'
        f'<span class="cmp-choice" data-choice="rejected"><kbd>2</kbd> B</span>'
        f'<span class="cmp-choice" data-choice="tie"><kbd>3</kbd> same</span></div>' for i, a in enumerate(aspects))
    help_ = ("<kbd>Tab</kbd> picks an aspect (then <kbd>1</kbd> A · <kbd>2</kbd> B · <kbd>3</kbd> the same); "
             if aspects else "")
    sides = "A is the left response, B the right" + (" (blind)" if blind else "")
    return (f'<div id="cmp-graded-panel" data-mode="grade" data-points="{points}" '
            f'data-aspects="{escape(json.dumps(aspects))}">'
            f'<div class="cmp-graded-help">{help_}the overall grade <kbd>1</kbd>–<kbd>{points}</kbd> sends the '
            f'label ({sides}).</div>'
            f'<div class="cmp-overall cmp-row-active">Overall: {scale}</div>{rows}</div>')
