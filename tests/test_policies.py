"""A policy per resource: every page handler and every CLI command names a policy action, and each
action's check runs on the server: the role just below the action's is refused before the handler
runs, the action's own role passes the check."""

from __future__ import annotations

import functools
import inspect
from types import SimpleNamespace

import gradio as gr
import pytest

from components import access, policies, ui
from components.policies import ACTIONS, COMMANDS
from components.store import Database
from components.views import guard
from components.views.common import ROLE_ATTR, requires

import app

USERS = {"vic": "viewer", "ann": "annotator", "rev": "reviewer", "adm": "admin"}


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    db = Database(tmp_path_factory.mktemp("policies") / "studio.duckdb")
    for name, role in USERS.items():
        access.add_user(db, name, role, f"{name}-password-1")
    demo = ui.build_app(db, mode="password")
    handlers = [f.fn for f in demo.fns.values()
                if f.fn is not None and not (getattr(f.fn, "__module__", None) or "").startswith("gradio")]
    yield db, handlers
    db.close()


def test_every_page_handler_names_a_policy_action(page):
    _, handlers = page
    assert len(handlers) > 80
    undeclared = [f"{fn.__module__}.{fn.__qualname__}" for fn in handlers if getattr(fn, ROLE_ATTR, None) not in ACTIONS]
    assert undeclared == []
    used = {getattr(fn, ROLE_ATTR) for fn in handlers}
    # the page uses every resource's policy but the CLI-only ones
    assert {a.resource for a in used} == {
        "page", "dataset", "label", "revision", "principle", "persona", "model", "project"}


def test_every_cli_command_names_a_policy_action():
    sub = next(a for a in app.parser()._actions if a.__class__.__name__ == "_SubParsersAction")
    assert set(sub.choices) == set(COMMANDS)
    assert all(action in ACTIONS for action in COMMANDS.values())
    # the CLI runs as the machine's owner, passed explicitly; a stranger's identity is refused
    assert policies.command("users") == access.LOCAL
    with pytest.raises(access.AccessDenied, match="adding a user needs the admin role"):
        policies.command("users", access.Identity("ann", "annotator", "password"))
    with pytest.raises(access.AccessDenied, match="names no policy action"):
        policies.command("rm-rf")


def _call(fn, username):
    """Call a guarded handler as ``username`` with None for every input: the check runs first."""
    sig = inspect.signature(fn)
    args = [None for p in sig.parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name != "_studio_request"]
    kwargs = {"_studio_request": SimpleNamespace(username=username)}
    out = fn(*args, **kwargs)
    if inspect.isgenerator(out):
        next(out, None)
    return out


def _below(role: str) -> str | None:
    i = access.ROLES.index(role)
    return None if i == 0 else [u for u, r in USERS.items() if r == access.ROLES[i - 1]][0]


def test_each_action_refuses_the_role_below_it_before_the_handler_runs(page):
    _, handlers = page
    by_action = {}
    for fn in handlers:
        by_action.setdefault(getattr(fn, ROLE_ATTR), fn)
    checked = 0
    for action, fn in sorted(by_action.items(), key=lambda kv: str(kv[0])):
        # a removed user's session may do nothing; below the action's role is refused with its words
        for username in filter(None, ("gone", _below(action.role))):
            with pytest.raises(gr.Error) as err:
                _call(fn, username)
            assert err.value.message.startswith(f"{action.what} needs the {action.role} role"), (action, username)
            checked += 1
        # the action's own role gets past the check (the handler may then fail on its None inputs)
        own = [u for u, r in USERS.items() if r == action.role][0]
        try:
            _call(fn, own)
        except gr.Error as err:
            assert "needs the" not in err.message, (action, err.message)
        except Exception:  # the handler's own code ran on None inputs: the check had let it through
            pass
    assert len(by_action) >= 30
    assert checked == len(by_action) + sum(1 for a in by_action if a.role != "viewer")


def test_a_handler_that_is_not_a_declared_function_stops_the_app_from_starting(tmp_path):
    db = Database(tmp_path / "s.duckdb")

    @requires(policies.DATASET.list)
    def listing(x):
        return x

    try:
        for handler in (functools.partial(listing, 1), lambda x: x):
            with gr.Blocks() as demo:
                box = gr.Textbox()
                gr.Button().click(handler, box, box)
            with pytest.raises(guard.UndeclaredHandler, match="declares no policy action"):
                guard.secure(demo, db, "password")
        with gr.Blocks() as demo:
            box = gr.Textbox()
            gr.Button().click(listing, box, box)
        assert guard.secure(demo, db, "password") == 1
    finally:
        db.close()


def test_a_signed_in_annotator_labels_only_as_themselves():
    ann = access.Identity("ann", "annotator", "password")
    assert policies.label_as(ann, "mallory") == "ann"
    assert policies.label_as(access.ANONYMOUS, "mallory") is None
    assert policies.label_as(access.SIGNED_OUT, "mallory") is None
    assert policies.label_as(access.LOCAL, "bo") == "bo"  # the open local tool: the name typed in
