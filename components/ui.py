"""The page: one tab per view, assembled from the view modules listed in ``VIEWS``."""

from __future__ import annotations

import importlib

import gradio as gr

from .store import Database
from .views.common import Studio

VIEWS = [
    "browse",
    "search",
    "compare",
    "revise",
    "data",
]
"""View modules under components/views, in tab order; each has ``build(studio)``."""

CSS = """
.gradio-container { max-width: 1500px !important; }
#app-title h1 { margin-bottom: 0; }
"""

HEAD = ""
"""Extra <head> content of the page itself; each view may add its own ``HEAD`` (key handlers)."""


def build_app(db: Database) -> gr.Blocks:
    with gr.Blocks(title="Preference Studio") as demo:
        gr.Markdown("# Preference Studio\nSearch, compare, label and revise preference data.", elem_id="app-title")
        with gr.Tabs() as tabs:
            studio = Studio(db=db, tabs=tabs)
            for name in VIEWS:
                importlib.import_module(f".views.{name}", __package__).build(studio)
        for fn, outputs in studio.on_load:
            demo.load(fn, None, outputs)
    return demo


def _from_views(attr: str) -> str:
    """The ``CSS`` or ``HEAD`` strings the view modules define, concatenated in tab order."""
    return "".join(getattr(importlib.import_module(f".views.{name}", __package__), attr, "") for name in VIEWS)


def launch_kwargs() -> dict:
    # run_history off: Gradio would otherwise copy every event's inputs and outputs (dataset text
    # included) into the browser's localStorage, which also slows each event down as the history grows
    return {"css": CSS + _from_views("CSS"), "head": HEAD + _from_views("HEAD"), "theme": gr.themes.Soft(),
            "run_history": False}
