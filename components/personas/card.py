"""The persona card: a persona's name, attributes and system message as escaped HTML for ``gr.HTML``
(the Revise tab, the Personas tab, and beside a pair when labeling as a persona)."""

from __future__ import annotations

import html

from .library import Persona

CARD_CSS = """
.persona-card { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 8px 12px; }
.persona-card h4 { margin: 0 0 4px 0; }
.persona-card dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 10px; margin: 0; }
.persona-card dt { font-weight: 600; }
.persona-card dd { margin: 0; }
.persona-card details { margin-top: 6px; }
.persona-card pre { white-space: pre-wrap; font-size: 0.85em; }
"""


def card_html(p: Persona | None, system_message: bool = True) -> str:
    """The card of ``p`` (every text escaped); an empty string for no persona.

    >>> "&lt;b&gt;" in card_html(Persona("x", (("values", "<b>bold</b>"),)))
    True
    """
    if p is None:
        return ""
    esc = lambda s: html.escape(str(s), quote=True)  # noqa: E731
    rows = "".join(f"<dt>{esc(k.replace('_', ' '))}</dt><dd>{esc(v)}</dd>" for k, v in p.attributes)
    text = (f"<details><summary>System message</summary><pre>{esc(p.system_message)}</pre></details>"
            if system_message else "")
    return (f'<div class="persona-card" data-persona="{esc(p.name)}"><h4>{esc(p.name)} '
            f'<small>v{p.version}</small></h4><dl>{rows}</dl>{text}</div>')
