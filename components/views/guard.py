"""Every event handler checks its caller on the server.

Views declare the policy action of each handler with ``common.requires(policies.LABEL.create)``;
``secure(demo, ...)`` runs once at the end of building the page and wraps every handler of the Blocks
so that the caller is identified from the request (Gradio's sign-in, or the Hugging Face profile on
a Space) and refused when the action's policy does not allow them, before any of the handler's code
runs. A handler that is not a plain function declaring an action (a ``functools.partial``, a lambda)
stops the app from starting. Only the handlers named in ``PUBLIC_API`` stay in the scripting API
(gradio_client); every other handler is private.
"""

from __future__ import annotations

import functools
import inspect
from typing import Optional

import gradio as gr
from gradio.utils import get_type_hints

from .. import access, policies
from ..policies import Action
from ..store import Database
from .common import ROLE_ATTR

PUBLIC_API = frozenset({"search", "datasets", "next_pair", "label", "show_row"})
"""The documented endpoints scripts may call; each still checks the caller's role."""

_REQUEST = "_studio_request"
_PROFILE = "_studio_profile"


class UndeclaredHandler(RuntimeError):
    """A handler without ``requires(...)``: the page would run it for anyone."""


def secure(demo: gr.Blocks, db: Database, mode: str) -> int:
    """Wrap every handler of ``demo`` with its policy check; returns how many were wrapped."""
    wrapped = 0
    for block_fn in demo.fns.values():
        fn = block_fn.fn
        if fn is None or (getattr(fn, "__module__", None) or "").startswith("gradio"):
            continue  # front-end only, or Gradio's own (the sign-in button)
        declared = getattr(fn, ROLE_ATTR, None)
        if not isinstance(declared, Action) or not inspect.isfunction(fn):
            name = f"{getattr(fn, '__module__', None)}.{getattr(fn, '__qualname__', None) or repr(fn)[:80]}"
            raise UndeclaredHandler(f"the handler {name} declares no policy action: define it as a function "
                                    "decorated with views.common.requires(policies.RESOURCE.action)")
        block_fn.fn = guarded(fn, declared, db=db, mode=mode)
        if block_fn.api_name not in PUBLIC_API:
            block_fn.api_visibility = "private"
        wrapped += 1
    return wrapped


def caller(db: Database, mode: str, request: gr.Request | None, profile=None) -> access.Identity:
    """The identity behind one request."""
    username = getattr(request, "username", None) if request is not None else None
    oauth_name = getattr(profile, "username", None) if profile is not None else None
    return access.identify(db, username=username, oauth_username=oauth_name, mode=mode)


def guarded(fn, action: Action, db: Database, mode: str):
    """``fn`` behind the check: Gradio injects the request (and the OAuth profile on a Space) into
    extra parameters of the wrapper; the wrapper resolves the caller, checks ``action``'s policy and
    passes the identity on as ``who`` when ``fn`` asks for it."""
    sig = inspect.signature(fn)
    wants_who = "who" in sig.parameters
    inner = sig.replace(parameters=[p for p in sig.parameters.values() if p.name != "who"])
    extra = [inspect.Parameter(_REQUEST, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None,
                               annotation=gr.Request)]
    if mode == "oauth":  # elsewhere a profile parameter would make Gradio mock a Hugging Face sign-in
        extra.append(inspect.Parameter(_PROFILE, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None,
                                       annotation=Optional[gr.OAuthProfile]))
    params = list(inner.parameters.values())
    cut = next((i for i, p in enumerate(params) if p.kind not in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)),
               len(params))
    outer = inner.replace(parameters=params[:cut] + extra + params[cut:])

    def check(args, kwargs):
        bound = outer.bind(*args, **kwargs)
        request = bound.arguments.pop(_REQUEST, None)
        profile = bound.arguments.pop(_PROFILE, None)
        who = caller(db, mode, request, profile)
        try:
            policies.allow(action, who)
        except access.AccessDenied as err:
            raise gr.Error(str(err), print_exception=False) from None
        call = inspect.BoundArguments(inner, bound.arguments)
        kw = dict(call.kwargs, who=who) if wants_who else call.kwargs
        return call.args, kw

    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            a, kw = check(args, kwargs)
            yield from fn(*a, **kw)
    else:
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            a, kw = check(args, kwargs)
            return fn(*a, **kw)

    hints = {k: v for k, v in get_type_hints(fn).items() if k != "who"}
    hints[_REQUEST] = gr.Request
    if mode == "oauth":
        hints[_PROFILE] = Optional[gr.OAuthProfile]
    wrapper.__signature__ = outer
    wrapper.__annotations__ = hints
    setattr(wrapper, ROLE_ATTR, action)
    return wrapper
