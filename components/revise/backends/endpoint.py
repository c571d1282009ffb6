"""Any server speaking OpenAI's chat completions API (vLLM, TGI, ``transformers serve``), through ``openai``.

The client gets the key the user gave -- an explicit argument, else ``$STUDIO_ENDPOINT_API_KEY`` --
and never reads ``$OPENAI_API_KEY`` by itself (an unrelated key, or a placeholder another library
left there, is not sent to a server the user merely named). Without a key it sends a harmless
fixed value. Retries (connection errors, 429 and 5xx answers) are the client's ``max_retries``.
"""

from __future__ import annotations

import os
import re
import time

import openai

from ...text import first_line
from ..errors import RevisionError
from .base import Backend, Generation, Settings, Stream

API_KEY_VARIABLE = "STUDIO_ENDPOINT_API_KEY"
NO_KEY = "none"


def endpoint_api_key(api_key: str | None = None) -> str:
    """The key to send: the one given, else ``$STUDIO_ENDPOINT_API_KEY``, else a harmless placeholder.

    >>> endpoint_api_key("sk-given")
    'sk-given'
    """
    key = (api_key or "").strip() or os.environ.get(API_KEY_VARIABLE, "").strip()
    return key or NO_KEY


def base_url(url: str) -> str:
    """The API root of ``url`` (what the client appends ``/chat/completions`` to).

    >>> base_url("http://localhost:8000"), base_url("http://h:1/v1/chat/completions")
    ('http://localhost:8000/v1', 'http://h:1/v1')
    """
    url = url.strip().rstrip("/")
    if url.endswith("/chat/completions"):
        return url[: -len("/chat/completions")]
    return url if url.endswith("/v1") else url + "/v1"


class EndpointBackend(Backend):
    """A model served at an OpenAI-compatible URL; generation is streamed, a batch is concurrent requests."""

    kind = "endpoint"
    device = "remote"
    dtype = "server's"

    def __init__(self, url: str, model: str, api_key: str | None = None, timeout: float = 300.0,
                 max_retries: int = 2):
        url = (url or "").strip().rstrip("/")
        if not re.match(r"https?://", url):
            raise RevisionError(f"endpoint URL must start with http:// or https://, got {url!r}")
        if not (model or "").strip():
            raise RevisionError("give the model name the endpoint serves (--model NAME)")
        self.endpoint = url
        self.model = model.strip()
        self.timeout = timeout
        self.client = openai.OpenAI(base_url=base_url(url), api_key=endpoint_api_key(api_key),
                                    timeout=openai.Timeout(timeout, connect=10.0), max_retries=max_retries)

    def describe(self) -> str:
        return f"{self.model} · endpoint {self.endpoint}"

    def context_length(self, settings: Settings) -> int | None:
        """The given limit, else the ``max_model_len`` the server lists for the model (vLLM does), else
        unknown (then only the server can refuse a prompt that is too long)."""
        if settings.context_tokens:
            return settings.context_tokens
        if not hasattr(self, "_max_len"):
            self._max_len = None
            try:
                listed = self.client.with_options(max_retries=0, timeout=5.0).models.list()
                for m in listed.data:
                    length = (m.model_extra or {}).get("max_model_len")
                    if m.id == self.model and isinstance(length, int):
                        self._max_len = length
            except (openai.OpenAIError, ValueError):  # the model list is optional: many servers lack it
                pass
        return self._max_len

    def _request(self, messages: list[dict], settings: Settings) -> dict:
        body = {"model": self.model, "messages": messages, "stream": True, "max_tokens": settings.max_new_tokens,
                "temperature": settings.temperature, "seed": settings.seed,
                "stream_options": {"include_usage": True}}
        if settings.temperature > 0:
            body["top_p"] = settings.top_p
        return body

    def stream(self, messages, settings, stop=None) -> Stream:
        out = Stream(iter(()))

        def chunks():
            started = time.perf_counter()
            first = None
            pieces: list[str] = []
            usage = None
            finish = "stop"
            stopped = False
            try:
                with self.client.chat.completions.create(**self._request(messages, settings)) as response:
                    for chunk in response:
                        if stop is not None and stop.is_set():
                            stopped = True
                            break
                        usage = chunk.usage or usage
                        for choice in chunk.choices:
                            if choice.finish_reason:
                                finish = "length" if choice.finish_reason == "length" else "stop"
                            piece = choice.delta.content if choice.delta else None
                            if piece:
                                pieces.append(piece)
                                out.tokens += 1
                                first = first or time.perf_counter()
                                yield piece
            except openai.OpenAIError as err:
                raise RevisionError(self.error_line(err)) from None
            tokens = usage.completion_tokens if usage is not None and not stopped else None
            out.result = Generation("".join(pieces), int(tokens if tokens is not None else out.tokens),
                                    None if first is None else first - started, time.perf_counter() - started,
                                    "stopped" if stopped else finish, usage.prompt_tokens if usage else None)

        out._chunks = chunks()
        return out

    def error_line(self, err: openai.OpenAIError) -> str:
        """One line for an error of the client: what went wrong, with the server's own words."""
        where = f"endpoint {self.endpoint}"
        if isinstance(err, openai.APITimeoutError):
            return f"{where} did not answer within {self.timeout:.0f} s"
        if isinstance(err, openai.APIConnectionError):
            cause = first_line(err.__cause__) if err.__cause__ else "connection refused"
            return f"{where} is unreachable ({cause}): is the server running?"
        if isinstance(err, openai.APIStatusError):
            detail = _detail(err)
            status = err.status_code
            if isinstance(err, (openai.AuthenticationError, openai.PermissionDeniedError)):
                return f"{where} refused the key (HTTP {status}): set ${API_KEY_VARIABLE} ({detail})"
            if isinstance(err, openai.NotFoundError):
                return f"{where} answered 404 for {self.model!r}: is it an OpenAI-compatible API? ({detail})"
            if isinstance(err, openai.RateLimitError):
                return f"{where} is busy (HTTP 429) even after {self.client.max_retries} retries: {detail}"
            if isinstance(err, openai.InternalServerError):
                return f"{where} failed (HTTP {status}) even after {self.client.max_retries} retries: {detail}"
            return f"{where} refused the request (HTTP {status}): {detail}"
        return f"{where} failed: {first_line(err)}"

    def generate_batch(self, batch, settings, stop=None) -> list[Generation]:
        """Concurrent requests: the server batches them (continuous batching on vLLM/TGI)."""
        from concurrent.futures import ThreadPoolExecutor

        def one(messages):
            s = self.stream(messages, settings, stop)
            for _ in s:
                pass
            return s.result

        with ThreadPoolExecutor(max_workers=max(1, min(len(batch), self.batch_size(settings)))) as pool:
            return list(pool.map(one, batch))


def _detail(err: openai.APIStatusError) -> str:
    """The server's explanation: OpenAI's ``{"error": {"message"}}``, FastAPI's ``{"detail"}``, or the text."""
    body = err.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        body = (inner.get("message") if isinstance(inner, dict) else inner) or body.get("detail") or body
    text = body if isinstance(body, str) else (err.response.text if body is None else str(body))
    return " ".join(str(text).split())[:240] or err.response.reason_phrase
