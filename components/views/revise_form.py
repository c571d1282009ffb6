"""What the Revise tab's controls mean: typed choices read from the form, and one stop switch per session.

The single revision and the batch read the same controls (principles, model, settings); a
``RevisionForm`` holds those components and turns their values into ``RevisionRequest``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import gradio as gr

from .. import personas as pz
from .. import revise as rv
from ..access import Identity
from ..store import Database
from .common import as_int, deep_link, escape

TEMPLATE = "pink-elephant"
"""The template principle whose two slots have their own boxes (avoid, steer)."""


@dataclass
class PrincipleChoice:
    """The principles ticked, and the slot values typed for templates."""

    ids: list[str] = field(default_factory=list)
    avoid: str = ""
    steer: str = ""
    other: str = ""  # "name=value; ..." for the slots of other templates

    def values(self) -> dict:
        """Slot values: the pink elephant's two boxes, plus ``name=value; ...`` for other templates.

        >>> PrincipleChoice(avoid="x", steer="y", other="tone=warm; n=2").values()
        {'tone': 'warm', 'n': '2', 'avoid': 'x', 'steer': 'y'}
        """
        values = {}
        for part in (self.other or "").split(";"):
            k, sep, v = part.partition("=")
            if sep and k.strip():
                values[k.strip()] = v.strip()
        for k in ("avoid", "steer"):
            if (getattr(self, k) or "").strip():
                values[k] = getattr(self, k).strip()
        return values

    def resolve(self, db: Database) -> list[rv.Principle]:
        return rv.resolve_principles(db, self.ids or [], self.values())


def with_template(ids: list[str] | None, avoid: str | None, steer: str | None) -> list[str]:
    """The ticked principles, with the pink elephant ticked once its avoid or steer box has text.

    >>> with_template(["concise"], "crypto", "")
    ['concise', 'pink-elephant']
    >>> with_template(["concise"], " ", None)
    ['concise']
    """
    ids = list(ids or [])
    if ((avoid or "").strip() or (steer or "").strip()) and TEMPLATE not in ids:
        ids.append(TEMPLATE)
    return ids


@dataclass
class ModelChoice:
    """Which model writes: an entry of the model list (``pick``, its id), or -- typed, admins only --
    a local one (Hub id or folder) or the model an endpoint serves. Typed text wins over the pick."""

    kind: str = "local"  # local | endpoint
    model: str = ""
    endpoint: str = ""
    pick: str | None = None

    def backend(self, db: Database, who: Identity) -> rv.Backend:
        """Decided on the server from the model list: see ``revise.models.choose``."""
        return rv.choose(db, who, self.pick, self.kind or "local", self.model or "", self.endpoint or "")

    def needs_loading(self, db: Database) -> bool:
        """A local model not loaded yet (the first run loads it, which takes a while)."""
        name, kind = (self.model or "").strip(), self.kind
        if not name:
            entry = rv.get_model(db, self.pick)
            name, kind = (entry.model, entry.kind) if entry else ("", "local")
        return kind != "endpoint" and bool(name) and not any(
            d.startswith(name + " ·") for d in rv.loaded_models())


@dataclass
class GenerationChoice:
    """The sliders: how much and how the model writes."""

    max_new_tokens: float | int | None = 256
    temperature: float | None = 0.7
    top_p: float | None = 0.95
    seed: float | int | None = 0
    context_tokens: float | int | None = 0  # 0: the model's own

    def settings(self, batch_size=None) -> rv.Settings:
        return rv.Settings(max_new_tokens=as_int(self.max_new_tokens, 256), temperature=float(self.temperature or 0),
                           top_p=float(self.top_p or 1.0), seed=as_int(self.seed, 0),
                           context_tokens=as_int(self.context_tokens, 0) or None,
                           batch_size=as_int(batch_size, 0) or None).checked()


@dataclass
class RevisionRequest:
    """One conversation (dataset, row, side) with the principles, model and settings to revise it with."""

    dataset: str | None
    row: int
    side: str
    principles: PrincipleChoice
    model: ModelChoice
    generation: GenerationChoice
    persona: str | None = None  # revise for this persona (its name), or for no one in particular

    def persona_provenance(self, db: Database) -> dict | None:
        """The chosen persona's name, version and system message; RevisionError when it is unknown."""
        if not (self.persona or "").strip():
            return None
        try:
            return pz.resolve(db, self.persona.strip()).provenance()
        except pz.PersonaError as err:
            raise rv.RevisionError(str(err)) from None


@dataclass
class RevisionForm:
    """The components a revision reads, by name."""

    dataset: gr.Dropdown
    row: gr.Number
    side: gr.Radio
    picks: gr.CheckboxGroup
    avoid: gr.Textbox
    steer: gr.Textbox
    kind: gr.Radio
    model: gr.Textbox
    endpoint: gr.Textbox
    pick: gr.Dropdown
    max_new: gr.Slider
    temperature: gr.Slider
    top_p: gr.Slider
    seed: gr.Number
    context: gr.Number
    persona: gr.Dropdown

    def components(self) -> set:
        return set(vars(self).values())

    def read(self, values: dict) -> RevisionRequest:
        """The request the form shows, from the ``{component: value}`` Gradio passes a handler."""
        v = {name: values.get(comp) for name, comp in vars(self).items()}
        return RevisionRequest(
            dataset=v["dataset"] or None, row=as_int(v["row"], 0), side=v["side"] or "chosen",
            principles=PrincipleChoice(list(v["picks"] or []), v["avoid"] or "", v["steer"] or ""),
            model=ModelChoice(v["kind"] or "local", v["model"] or "", v["endpoint"] or "", v["pick"] or None),
            generation=GenerationChoice(v["max_new"], v["temperature"], v["top_p"], v["seed"], v["context"]),
            persona=v["persona"] or None,
        )


def accept_result(db: Database, result: dict | None, text: str | None, who: str | None, into: str | None,
                  stored: bool = False) -> str:
    """Accept a revision (as the user left ``text``) as a pair; a line saying where it went, or why not."""
    if not result:
        return "⚠️ Nothing to accept: run a revision first."
    try:
        name, row = rv.accept(db, result, text, who, into, stored=stored)
    except rv.RevisionError as err:
        return f"⚠️ {escape(err)}"
    edited = " (edited)" if (text or "").strip() != (result.get("revision") or "").strip() else ""
    persona = result.get("persona")
    who_for = f" for persona **{escape(persona['name'])}**" if persona else ""
    return f"✅ Accepted{edited}{who_for} as row {row} of **{escape(name)}** · [open it]({deep_link(name, row)})"


# -- Stop: one switch per browser session and activity ------------------------------------------------

_stops: dict[tuple[str, str], threading.Event] = {}
_stops_lock = threading.Lock()


def new_stop(session: str, what: str) -> threading.Event:
    """A fresh stop event for this browser session's ``what`` (revise | batch)."""
    ev = threading.Event()
    with _stops_lock:
        _stops[(session, what)] = ev
    return ev


def request_stop(session: str, what: str) -> bool:
    with _stops_lock:
        ev = _stops.get((session, what))
    if ev is None:
        return False
    ev.set()
    return True


def session_of(request: gr.Request | None) -> str:
    return getattr(request, "session_hash", None) or "cli"
