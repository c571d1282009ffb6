"""What every backend shares: generation settings, one generation's result, a stream of text, the interface."""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from typing import Iterator

from ..errors import RevisionError


@dataclass
class Settings:
    max_new_tokens: int = 256
    temperature: float = 0.7
    top_p: float = 0.95
    seed: int = 0
    batch_size: int | None = None  # None: 32 on CUDA, 4 on CPU, 8 for an endpoint
    context_tokens: int | None = None  # None: the model's own context length (unknown for an endpoint)

    def checked(self) -> "Settings":
        """These settings as numbers, within range; RevisionError says which one is not.

        >>> Settings(max_new_tokens="64", temperature=0).checked().max_new_tokens
        64
        """
        try:
            s = Settings(int(self.max_new_tokens), float(self.temperature), float(self.top_p), int(self.seed),
                         None if self.batch_size in (None, "", 0) else int(self.batch_size),
                         None if self.context_tokens in (None, "", 0) else int(self.context_tokens))
        except (TypeError, ValueError) as err:
            raise RevisionError(f"bad setting: {err}") from None
        if not 1 <= s.max_new_tokens <= 32768:
            raise RevisionError("max new tokens must be between 1 and 32768")
        if not 0 <= s.temperature <= 5:
            raise RevisionError("temperature must be between 0 and 5 (0 = greedy)")
        if not 0 < s.top_p <= 1:
            raise RevisionError("top-p must be above 0 and at most 1")
        if s.batch_size is not None and not 1 <= s.batch_size <= 1024:
            raise RevisionError("batch size must be between 1 and 1024")
        if s.context_tokens is not None and s.context_tokens < 16:
            raise RevisionError("context must be at least 16 tokens")
        return s

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Generation:
    text: str
    tokens: int
    ttft_s: float | None
    seconds: float
    finish: str  # stop | length | stopped
    prompt_tokens: int | None = None


class Stream:
    """Text chunks of one generation as they come (iterate), then ``.result`` (a Generation)."""

    def __init__(self, chunks: Iterator[str]):
        self._chunks = chunks
        self.tokens = 0  # generated so far
        self.result: Generation | None = None

    def __iter__(self):
        return self._chunks


class Backend:
    kind = "?"
    model = ""
    device = "?"
    dtype = "?"
    endpoint: str | None = None

    def describe(self) -> str:
        return f"{self.model} · {self.kind} · {self.device} · {self.dtype}"

    def context_length(self, settings: Settings) -> int | None:
        return settings.context_tokens

    def count(self, messages: list[dict]) -> int:
        """Tokens of ``messages`` as a prompt (a rough estimate unless the backend has the tokenizer)."""
        return sum(len(m["content"]) for m in messages) // 4 + 8 * len(messages)

    def stream(self, messages: list[dict], settings: Settings, stop: threading.Event | None = None) -> Stream:
        raise NotImplementedError

    def generate_batch(self, batch: list[list[dict]], settings: Settings,
                       stop: threading.Event | None = None) -> list[Generation]:
        raise NotImplementedError

    def batch_size(self, settings: Settings) -> int:
        return settings.batch_size or 8
