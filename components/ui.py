"""The page: one tab per view, assembled from the view modules listed in ``VIEWS``."""

from __future__ import annotations

import importlib

import gradio as gr

from . import access
from .store import Database
from .views.common import Studio, requires
from .policies import PAGE

VIEWS = [
    "browse",
    "search",
    "stats",
    "compare",
    "revise",
    "personas",
    "data",
]
"""View modules under components/views, in tab order; each has ``build(studio)``."""

CSS = """
.gradio-container { max-width: 1500px !important; padding-top: 4px !important; }
#app-header { align-items: center; gap: 8px; }
#app-title h1 { font-size: 1.35rem; margin: 0; display: inline; }
#app-title p { display: inline; margin: 0 0 0 10px; color: var(--body-text-color-subdued); }
#app-user { text-align: right; font-size: 0.9em; }
"""

HEAD = ""
"""Extra <head> content of the page itself; each view may add its own ``HEAD`` (key handlers)."""


MODE_NOTES = {
    "open": "none (no users): the local single-user tool, everything allowed",
    "password": "users of this database sign in with their password",
    "oauth": "Hugging Face sign-in; roles from STUDIO_ADMINS, STUDIO_REVIEWERS, STUDIO_ANNOTATORS",
}


def signed_in_line(who: access.Identity, mode: str) -> str:
    """The header's note of who is using the page (nothing for the local single-user tool).

    >>> signed_in_line(access.Identity("ada", "annotator", "password"), "password")
    'Signed in as **ada** (annotator) · [sign out](/logout)'
    """
    if mode == "open":
        return ""
    if who.name is None:
        return "Browsing as a guest (viewer)" + (" · sign in to label" if mode == "oauth" else "")
    return f"Signed in as **{who.name}** ({who.role}) · [sign out](/logout)"


def build_app(db: Database, mode: str | None = None, data_dir: str | None = None) -> gr.Blocks:
    """The page over ``db``; ``mode`` is how people sign in (components/access.py), from the database
    and the environment when not given; ``data_dir`` the folder of server files admins may load."""
    from .views import guard

    mode = mode or access.sign_in_mode(db)
    # uploads are removed an hour after they came (checked every ten minutes), used or not
    with gr.Blocks(title="Preference Studio", delete_cache=(600, 3600)) as demo:
        with gr.Row(elem_id="app-header"):
            gr.Markdown("# Preference Studio\nSearch, compare, label and revise preference data.", elem_id="app-title")
            user_line = gr.Markdown(elem_id="app-user")
            if mode == "oauth":
                gr.LoginButton(size="sm", scale=0, elem_id="app-login")
        with gr.Tabs() as tabs:
            studio = Studio(db=db, tabs=tabs, mode=mode, data_dir=data_dir)
            for name in VIEWS:
                importlib.import_module(f".views.{name}", __package__).build(studio)

        @requires(PAGE.open)
        def whoami(*, who):
            return signed_in_line(who, mode)

        studio.on_load.append((whoami, [user_line]))
        for fn, outputs in studio.on_load:
            demo.load(fn, None, outputs)
        guard.secure(demo, db, mode)
    return demo


def _from_views(attr: str) -> str:
    """The ``CSS`` or ``HEAD`` strings the view modules define, concatenated in tab order."""
    return "".join(getattr(importlib.import_module(f".views.{name}", __package__), attr, "") for name in VIEWS)


def launch_kwargs(db: Database | None = None, mode: str | None = None, max_upload_mb: float = 512) -> dict:
    # run_history off: Gradio would otherwise copy every event's inputs and outputs (dataset text
    # included) into the browser's localStorage, which also slows each event down as the history grows
    kw = {"css": CSS + _from_views("CSS"), "head": HEAD + _from_views("HEAD"), "theme": gr.themes.Soft(),
          "run_history": False, "max_file_size": f"{max_upload_mb:g}mb"}
    if db is None:
        return kw
    mode = mode or access.sign_in_mode(db)
    from starlette.middleware import Middleware

    from .signin import SessionGuard

    # sign-in limits, removed users signed out, and uploads for those who may load data only
    kw["app_kwargs"] = {"middleware": [Middleware(SessionGuard, db=db, mode=mode)]}
    if mode == "password":
        kw["auth"] = access.password_check(db)
        kw["auth_message"] = "Sign in with the user name and password your admin gave you."
    return kw
