"""Where the text comes from: a local transformers model (``local``), or an OpenAI-compatible server
(``endpoint``). Each is imported when first used: torch and transformers for the one, ``openai`` for
the other, so that starting the app pays for neither."""

from __future__ import annotations

from . import zerogpu
from .base import Backend, Generation, Settings, Stream

if zerogpu.on_zero_gpu():  # ZeroGPU wants its GPU tasks declared while the app starts
    from . import local  # noqa: F401


def make_backend(model: str, endpoint: str | None = None, device: str | None = None,
                 api_key: str | None = None) -> Backend:
    """A local model (Hub id or path), or ``model`` served at ``endpoint``."""
    if endpoint and endpoint.strip():
        from .endpoint import EndpointBackend

        return EndpointBackend(endpoint, model, api_key=api_key)
    from .local import local_backend

    return local_backend(model, device)


__all__ = ["Backend", "Generation", "Settings", "Stream", "make_backend"]
