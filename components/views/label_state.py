"""What the labeling screen shows and does, as plain functions over a queue state (a dict the page
keeps per browser): which pair is on screen, how it is drawn, labeling, undo and moving on. The
screen (``views.label``) calls them; so do the tests."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from .. import diff, labels
from ..labels import LabelError
from ..labels.settings import blind_title, is_blind, swapped, unblind
from ..search.find import terms
from ..store import Database
from .common import chat, escape, marker


@dataclass
class LabelForm:
    """What goes with a label besides the label itself."""

    confidence: Any = None  # 1-3, or 0/None for none
    note: str | None = None
    tags: list[str] | None = None
    shown_row: int | None = None  # the pair on screen when the key was pressed


def pair_datasets(db: Database) -> list[str]:
    return [d.name for d in db.datasets() if d.kind == "pairs"]


def signed_in(who) -> bool:
    """Whether the caller signed in (a password or Hugging Face): then labels carry their name."""
    return who is not None and getattr(who, "via", None) in ("password", "oauth")


def annotator_for(typed: str | None, who=None) -> str:
    """The annotator of a label: the signed-in user's name whatever was typed (or sent to ``/label``);
    in the open local tool, the name typed in.

    >>> from components.access import Identity
    >>> annotator_for("mallory", Identity("ada", "annotator", "password")), annotator_for(" bo ", None)
    ('ada', 'bo')
    """
    if signed_in(who):
        if not who.name:
            raise LabelError("sign in to label")
        return labels.check_annotator(who.name)
    if who is not None and getattr(who, "via", None) == "anonymous":
        raise LabelError("sign in to label")
    return labels.check_annotator(typed)


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
             "diff": "", "metadata": {}, "swapped": False, "open_earlier": False}
    if not dataset or row is None:
        return empty
    rec = db.record(dataset, int(row))
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
    meta |= {k: v for k, v in (rec.get("metadata") or {}).items() if not (blind and ("chosen" in k or "rejected" in k))}
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
    }


def new_queue(db: Database, dataset: str | None, mode: str = "unlabeled", query: str | None = None,
              annotator: str | None = None, row: int | None = None) -> dict:
    """A labeling queue positioned at ``row`` if given, else where ``annotator`` left off."""
    state = {"dataset": dataset, "mode": mode, "query": query or "", "rows": [], "pos": None, "auto": row is None,
             "engine": None, "message": "", "blind": is_blind(db, dataset) if dataset and db.dataset(dataset) else False,
             "overlap": labels.overlap(db, dataset) if dataset and db.dataset(dataset) else None}
    if not dataset:
        state["message"] = "Pick a dataset of preference pairs."
        return state
    try:
        queue = labels.open_queue(db, dataset, mode, query)
    except LabelError as err:
        state["message"] = f"⚠️ {escape(err)}"
        return state
    state["rows"] = rows = queue.rows
    state["engine"] = queue.engine
    if row is not None:
        if row in rows:
            state["pos"] = rows.index(row)
        elif (rec := db.record(dataset, row)) is not None and rec.get("rejected") is not None:
            state["rows"] = rows = [row, *rows]  # a pair outside this queue, opened by a link: show it first
            state["pos"] = 0
        else:
            state["message"] = f"⚠️ row {row} is not a pair of {escape(dataset)} (past the end, or rejected at ingest)"
    if state["pos"] is None and rows:
        state["pos"] = resume(db, state, annotator)
    if not rows:
        state["message"] = {"search": "No pair matches that search.",
                            "disagreements": "No disagreements: no pair has two annotators with different labels."
                            }.get(mode, "This dataset has no pairs.")
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


def label_current(db: Database, state: dict, label: str, annotator: str, form: LabelForm | None = None,
                  options: dict | None = None) -> dict:
    """Label the pair on screen and move to the next one; returns the new state (message set)."""
    form = form or LabelForm()
    state = dict(state)
    row = form.shown_row if form.shown_row is not None else current_row(state)
    if row is None:
        raise LabelError("no pair on screen to label" + (": every pair in this queue is labeled (← reviews them)"
                                                        if state.get("rows") else ""))
    blind = bool(state.get("blind"))
    flip = blind and swapped(state["dataset"], row)
    shown = state.get("shown_at") if state.get("shown_row") == row else None
    event = labels.submit(db, state["dataset"], row, unblind(label, flip), annotator, form.confidence, form.note,
                          form.tags, options=(options or {}) | {"queue": state["mode"], "query": state["query"] or None,
                                                                "via": "ui"} | ({"blind": True} if blind else {}),
                          seconds=time.time() - shown if shown else None)
    pos = state["rows"].index(row) if row in state["rows"] else state["pos"] or 0
    state["pos"] = resume(db, state, event["annotator"], pos + 1)
    state["auto"] = False
    state["message"] = (f"Row {row}: **{title_of(event['label'], state, row)}**"
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
    queue = labels.QUEUES.get(state["mode"], state["mode"])
    if state["mode"] == "search":
        queue += f" for “{escape(state['query'])}” ({state.get('engine') or 'text match'})"
    return (f"**{escape(state['dataset'])}** · row **{row}** · pair {state['pos'] + 1:,} of {len(state['rows']):,} "
            f"in *{queue}*")


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
