"""Small helpers shared by the views: turning records into what Gradio components show."""

from __future__ import annotations

import html
import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import urlencode

import gradio as gr

from ..store import Database
from ..policies import DATASET
from .. import catalogue


@dataclass
class Studio:
    """What every view is built with."""

    db: Database
    tabs: Any = None  # the gr.Tabs of the page, for switching tabs from a handler
    on_load: list = field(default_factory=list)  # (fn, outputs) run when a page opens (deep links)
    mode: str = "open"  # how people sign in: open | password | oauth (components/access.py)
    data_dir: str | None = None  # the folder of server files admins may load (None: none, once sign-in is on)
    lists: list = field(default_factory=list)  # (dropdown, choices_fn): the dataset lists of every view
    _changed: Any = None

    # -- every dataset list follows every change, without a page reload --------------------------

    @property
    def datasets_changed(self) -> gr.State:
        """The page's hidden "datasets changed" trigger. A handler that adds, renames or deletes a
        dataset, or builds or drops an index, puts ``dataset_change(...)`` into it (as one of its
        outputs); every list registered with ``follow`` then refreshes in that browser."""
        if self._changed is None:
            self._changed = gr.State(None)  # not drawn: made inside whichever view asks first
        return self._changed

    def follow(self, dropdown, choices_fn: Callable[[], list]) -> None:
        """Keep ``dropdown``'s choices at ``choices_fn()`` after every dataset change. Its value stays;
        it moves with a rename, and is cleared when its dataset is deleted."""
        self.lists.append((dropdown, choices_fn))

        @requires(DATASET.list)
        def refresh(change, current):
            return refreshed(choices_fn(), current, change)

        self.datasets_changed.change(refresh, [self.datasets_changed, dropdown], dropdown, show_progress="hidden")

    def refresh_lists(self, *values, change: dict | None = None) -> list:
        """A gr.update for each followed list (in ``lists`` order), given their current values."""
        return [refreshed(fn(), v, change) for (_, fn), v in zip(self.lists, values)]


_TAG_START = re.compile(r"<(?=[A-Za-z/!?])")
_FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.S)


def marker(words: list[str] | None) -> re.Pattern | None:
    """A pattern finding any of ``words`` (case-insensitive, at the start of a word), for ``<mark>``."""
    words = sorted({w.strip() for w in words or [] if w and w.strip()}, key=len, reverse=True)
    if not words:
        return None
    return re.compile(r"(?<![&\w])(" + "|".join(re.escape(w) for w in words) + ")", re.I)


def safe_markdown(text: str | None, mark: re.Pattern | None = None) -> str:
    """Dataset text for a Markdown chat bubble: anything that would start an HTML tag outside code is
    escaped, so ``<script>`` shows as text instead of being dropped (the Chatbot sanitizes too).
    With ``mark`` (from ``marker``), the words it finds outside code are wrapped in ``<mark>``.

    >>> safe_markdown("a <b>x</b> `<i>` 1 < 2")
    'a &lt;b>x&lt;/b> `<i>` 1 < 2'
    >>> safe_markdown("Green tea, `tea`", marker(["tea"]))
    'Green <mark>tea</mark>, `tea`'
    """
    def plain(piece: str) -> str:
        piece = _TAG_START.sub("&lt;", piece)
        return mark.sub(r"<mark>\1</mark>", piece) if mark else piece

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
            pieces.append(plain(line[last:span.start()]))
            pieces.append(span.group(0))
            last = span.end()
        pieces.append(plain(line[last:]))
        out.append("".join(pieces))
    return "".join(out)


def chat(messages: list[dict] | None, mark: re.Pattern | None = None) -> list[dict]:
    """Messages for gr.Chatbot, text made safe (system and other roles shown as labeled notes), the
    words ``mark`` finds highlighted."""
    out = []
    for m in messages or []:
        role = (m.get("role") or "").lower()
        content = safe_markdown(m.get("content") or "", mark)
        if role in ("user", "assistant"):
            out.append({"role": role, "content": content})
        else:
            out.append({"role": "assistant", "content": f"**{escape(role or 'unknown').title()}:** {content}"})
    return out


def chatbot(**kw) -> gr.Chatbot:
    """A read-only chat pane for untrusted text: sanitized, Markdown on, no custom tags, no feedback, and no
    LaTeX (a "$5 or $10" in a response stays money, not math)."""
    classes = ["studio-readonly", *([kw.pop("elem_classes")] if isinstance(kw.get("elem_classes"), str)
                                    else kw.pop("elem_classes", None) or [])]
    kw.setdefault("buttons", ["copy"])
    return gr.Chatbot(autoscroll=False, allow_tags=False, sanitize_html=True, render_markdown=True,
                      latex_delimiters=[], feedback_options=None, elem_classes=classes, **kw)


READONLY_CSS = """
.studio-readonly button[aria-label="Clear"] { display: none; }  /* read-only panes: nothing to clear */
.studio-readonly mark { background: rgba(250, 204, 21, 0.45); color: inherit; border-radius: 2px; padding: 0 1px; }
.dark .studio-readonly mark { background: rgba(250, 204, 21, 0.35); }
"""
"""CSS for the panes ``chatbot`` makes (a view module adds it to its ``CSS``)."""


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
    return [d.name for d in catalogue.datasets(db) if kinds is None or d.kind in kinds]


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


# -- the current dataset, and dataset lists that follow changes ------------------------------------


def dataset_change(event: str, dataset: str | None = None, to: str | None = None) -> dict:
    """What a handler puts into ``Studio.datasets_changed``: ``event`` is added, renamed, deleted or
    indexed; ``to`` is the new name of a renamed dataset."""
    return {"at": time.time_ns(), "event": event, "dataset": dataset, "to": to}


def refreshed(choices: list, current: Any, change: dict | None = None):
    """A dropdown's update after ``change``: the new choices, its value kept (moved with a rename,
    cleared when its dataset went away).

    >>> refreshed(["a", "b2"], "b", dataset_change("renamed", "b", "b2"))["value"]
    'b2'
    >>> refreshed(["a"], "b", dataset_change("deleted", "b"))["value"] is None
    True
    >>> refreshed(["a", "c"], ["a", "b"], dataset_change("renamed", "b", "c"))["value"]
    ['a', 'c']
    """
    change = change or {}
    names = [c[1] if isinstance(c, tuple) else c for c in choices]
    if isinstance(current, list):  # a multiselect keeps each value that still exists
        moved = [change.get("to") if v == change.get("dataset") and change.get("event") == "renamed" else v
                 for v in current]
        return gr.update(choices=choices, value=[v for v in moved if v in names])
    if change.get("event") == "renamed" and current == change.get("dataset"):
        current = change.get("to")
    return gr.update(choices=choices, value=current if current in names else None)


def resolve_dataset(db: Database, wanted: str | None, kinds: tuple[str, ...] | None = None) -> tuple[str | None, str]:
    """The dataset a deep link (``?dataset=NAME``) asks for, and a one-line note when it cannot be
    shown: it does not exist, or holds another kind. Nothing else is silently shown instead.

    >>> resolve_dataset(None, None)
    (None, '')
    """
    if not wanted:
        return None, ""
    info = catalogue.dataset(db, str(wanted))
    if info is None:
        return None, f"⚠️ No dataset named **{escape(clip_name(wanted))}**: it was deleted or renamed, or the link is mistyped."
    if kinds and info.kind not in kinds:
        return None, f"⚠️ Dataset **{escape(info.name)}** holds {info.kind}, not {' or '.join(kinds)}."
    return info.name, ""


def clip_name(name: Any) -> str:
    text = str(name)
    return text if len(text) <= 80 else text[:79] + "…"


def compare_link(dataset: str, row: int | None = None, query: str | None = None) -> str:
    """The link that opens ``row`` of ``dataset`` (or, without a row, a queue of the pairs ``query``
    finds) in the Compare tab; a click on it opens the pair in the page, without a reload.

    >>> compare_link("demo", 3, "green tea")
    '?tab=compare&dataset=demo&row=3&q=green+tea'
    """
    params: dict[str, Any] = {"tab": "compare", "dataset": dataset}
    if row is not None:
        params["row"] = row
    if query:
        params["q"] = query
    return "?" + urlencode(params)


def similar_links(dataset: str, row: int, queue: bool = True) -> str:
    """Markdown links to the rows like ``row``: as a search, and (``queue``: a dataset of pairs) as a
    labeling queue.

    >>> similar_links("demo", 3)
    '[rows like this](?tab=search&similar=3&datasets=demo) · [label rows like this](?tab=compare&dataset=demo&queue=similar&q=3)'
    """
    search = urlencode({"tab": "search", "similar": row, "datasets": dataset})
    labeling = urlencode({"tab": "compare", "dataset": dataset, "queue": "similar", "q": row})
    return f"[rows like this](?{search})" + (f" · [label rows like this](?{labeling})" if queue else "")


# -- who may call a handler ------------------------------------------------------------------------

ROLE_ATTR = "__studio_role__"


def requires(action):
    """Declare the policy action a handler performs (``components.policies``, e.g. ``LABEL.create``).

    ``ui.build_app`` wraps every declared handler so that the caller is identified on the server and
    refused (a one-line error) when the action's policy does not allow them; a handler that wants to
    know who called adds a keyword-only parameter ``who`` (an ``access.Identity``). A handler that
    declares nothing stops the app from starting: no event reaches unchecked code.
    """
    from ..policies import ACTIONS

    if action not in ACTIONS:
        raise ValueError(f"not a policy action: {action!r}")

    def mark(fn):
        setattr(fn, ROLE_ATTR, action)
        return fn

    return mark


def acting_name(typed: str | None, who=None) -> str | None:
    """The name recorded for what someone did: ``policies.recorded_name``."""
    from ..policies import recorded_name

    return recorded_name(who, typed)
