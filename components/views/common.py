"""Small helpers shared by the views: turning records into what Gradio components show."""

from __future__ import annotations

import html
import re
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


_TAG_START = re.compile(r"<(?=[A-Za-z/!?])")
_FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.S)


def safe_markdown(text: str | None) -> str:
    """Dataset text for a Markdown chat bubble: anything that would start an HTML tag outside code is
    escaped, so ``<script>`` shows as text instead of being dropped (the Chatbot sanitizes too).

    >>> safe_markdown("a <b>x</b> `<i>` 1 < 2")
    'a &lt;b>x&lt;/b> `<i>` 1 < 2'
    """
    out = []
    fence = None
    for line in (text or "").splitlines(keepends=True):
        m = _FENCE.match(line)
        if fence:
            out.append(line)
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence):
                fence = None
            continue
        if m:
            fence = m.group(1)
            out.append(line)
            continue
        pieces, last = [], 0
        for span in _CODE_SPAN.finditer(line):
            pieces.append(_TAG_START.sub("&lt;", line[last:span.start()]))
            pieces.append(span.group(0))
            last = span.end()
        pieces.append(_TAG_START.sub("&lt;", line[last:]))
        out.append("".join(pieces))
    return "".join(out)


def chat(messages: list[dict] | None) -> list[dict]:
    """Messages for gr.Chatbot, text made safe (system and other roles shown as labeled notes)."""
    out = []
    for m in messages or []:
        role = (m.get("role") or "").lower()
        content = safe_markdown(m.get("content") or "")
        if role in ("user", "assistant"):
            out.append({"role": role, "content": content})
        else:
            out.append({"role": "assistant", "content": f"**{escape(role or 'unknown').title()}:** {content}"})
    return out


def chatbot(**kw) -> gr.Chatbot:
    """A read-only chat pane for untrusted text: sanitized, Markdown on, no custom tags, no feedback, and no
    LaTeX (a "$5 or $10" in a response stays money, not math)."""
    return gr.Chatbot(autoscroll=False, allow_tags=False, sanitize_html=True, render_markdown=True,
                      latex_delimiters=[], feedback_options=None, buttons=["copy"], **kw)


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
