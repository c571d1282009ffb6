"""Small helpers shared by the views: turning records into what Gradio components show."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import gradio as gr

from ..store import Database


@dataclass
class Studio:
    """What every view is built with."""

    db: Database
    tabs: Any = None  # the gr.Tabs of the page, for switching tabs from a handler
    on_load: list = field(default_factory=list)  # (fn, outputs) run when a page opens (deep links)


def chat(messages: list[dict] | None) -> list[dict]:
    """Messages as gr.Chatbot shows them (system turns shown as quoted assistant notes)."""
    out = []
    for m in messages or []:
        role = (m.get("role") or "").lower()
        content = m.get("content") or ""
        if role == "system":
            out.append({"role": "assistant", "content": "**System:** " + content})
        elif role in ("user", "assistant"):
            out.append({"role": role, "content": content})
        else:
            out.append({"role": "assistant", "content": f"**{role or 'unknown'}:** {content}"})
    return out


def deep_link(dataset: str, row: int, tab: str | None = None) -> str:
    """The query string that opens ``row`` of ``dataset`` (``?dataset=NAME&row=N``).

    >>> deep_link("demo", 3)
    '?dataset=demo&row=3'
    """
    params = {"dataset": dataset, "row": row}
    if tab:
        params["tab"] = tab
    return "?" + urlencode(params)


def escape(text: Any) -> str:
    """HTML-escape untrusted text (dataset content) for gr.HTML."""
    return html.escape("" if text is None else str(text), quote=True)


def dataset_choices(db: Database, kinds: tuple[str, ...] | None = None) -> list[str]:
    return [d.name for d in db.datasets() if kinds is None or d.kind in kinds]


def query_params(request: gr.Request | None) -> dict:
    if request is None:
        return {}
    try:
        return dict(request.query_params)
    except Exception:
        return {}


def as_int(value: Any, default: int = 0) -> int:
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return default
