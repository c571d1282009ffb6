"""Principle-guided revision of a conversation's final assistant turn (SDSD, Direct Principle Feedback).

A model reads the conversation and a set of written principles, writes a critique of the final
assistant turn naming the principles it breaks (or none), then rewrites that turn. The revision
and the original final turn become a new preference pair (prompt = the conversation before the
final turn, chosen = the revision, rejected = the original), stored with full provenance.

The pieces, each usable on its own:

* principles -- the library in ``data/principles.json``, copied into the database once, where users
  edit it (every version kept); templates such as the "pink elephant" have slots to fill;
* prompts -- ``critique_messages`` / ``revision_messages`` and the context policy ``fit_context``
  (the oldest turns are dropped until the prompt fits, and the result says so);
* ``parse_critique`` -- never raises; the raw text is always kept;
* backends -- ``LocalBackend`` (transformers, loaded once and kept; CUDA in bf16 when present, else
  CPU in float32; streams token by token; batches many conversations per forward pass) and
  ``EndpointBackend`` (any OpenAI-compatible server: vLLM, TGI, ``transformers serve``);
* ``revise_stream`` -- one conversation, critique then revision, as a stream of updates;
* ``accept`` -- store a revision (possibly edited) as a pair in ``NAME-revisions``;
* jobs -- ``start_job`` / ``run_job``: many conversations, resumable, results pending review.

torch and transformers are imported only when a local model is used.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
import uuid
import weakref
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable, Iterator

from .store import Database, DatabaseError

PRINCIPLES_FILE = Path(__file__).resolve().parent.parent / "data" / "principles.json"
SIDES = ("chosen", "rejected")


class RevisionError(Exception):
    """A revision that could not run, explained in one line."""


# =================================================================================================
# Principles
# =================================================================================================


@dataclass(frozen=True)
class Principle:
    id: str
    group: str
    title: str
    text: str
    template: bool = False
    params: tuple[str, ...] = ()
    default: bool = False
    version: int = 1
    values: tuple[tuple[str, str], ...] = ()  # the filled slots of a template

    def as_dict(self) -> dict:
        d = {"id": self.id, "version": self.version, "group": self.group, "title": self.title, "text": self.text}
        if self.values:
            d["values"] = dict(self.values)
        return d

    def fill(self, values: dict[str, str]) -> "Principle":
        """A template with its slots filled in; raises RevisionError naming any slot left empty.

        >>> p = Principle("pe", "pink elephant", "t", "Avoid {avoid}; talk about {steer}.", True, ("avoid", "steer"))
        >>> p.fill({"avoid": "cats", "steer": "dogs"}).text
        'Avoid cats; talk about dogs.'
        """
        missing = [k for k in self.params if not str(values.get(k) or "").strip()]
        if missing:
            raise RevisionError(
                f"principle {self.id!r} is a template: fill in {', '.join(missing)} "
                f"(e.g. {self.id}:" + ":".join(f"{k}=..." for k in self.params) + ")"
            )
        text = self.text
        for k in self.params:
            text = text.replace("{" + k + "}", str(values[k]).strip())
        return replace(self, text=text, values=tuple((k, str(values[k]).strip()) for k in self.params))


_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


def load_library(path: str | os.PathLike = PRINCIPLES_FILE) -> list[dict]:
    """The principles of a library file (JSON or YAML), checked: unique ids, a title and a text each."""
    path = Path(path)
    try:
        raw = path.read_text(encoding="utf-8")
        data = json.loads(raw) if path.suffix == ".json" else _yaml(raw)
    except (OSError, ValueError) as err:
        raise RevisionError(f"cannot read the principles library {path}: {err}") from None
    items = data.get("principles") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise RevisionError(f"{path}: expected a list of principles under 'principles'")
    seen = set()
    for i, p in enumerate(items):
        problem = check_principle(p)
        if problem:
            raise RevisionError(f"{path}: principle {i + 1}: {problem}")
        if p["id"] in seen:
            raise RevisionError(f"{path}: principle id {p['id']!r} appears twice")
        seen.add(p["id"])
    return items


def _yaml(text: str):
    import yaml

    return yaml.safe_load(text)


def check_principle(p: dict) -> str | None:
    """What is wrong with principle ``p`` (a dict), or None."""
    if not isinstance(p, dict):
        return "not an object"
    if not _ID.fullmatch(str(p.get("id") or "")):
        return f"id {p.get('id')!r} must be lower-case letters, digits, '.', '_' or '-' (at most 64)"
    for key in ("title", "text"):
        if not str(p.get(key) or "").strip():
            return f"{p['id']}: {key} is empty"
    slots = set(re.findall(r"\{(\w+)\}", p["text"]))
    params = set(p.get("params") or [])
    if p.get("template") and not params:
        return f"{p['id']}: a template needs params (the names of its {{slots}})"
    if params and slots != params:
        return f"{p['id']}: params {sorted(params)} do not match the slots {sorted(slots)} of its text"
    return None


_seeded: "weakref.WeakKeyDictionary[Database, set[str]]" = weakref.WeakKeyDictionary()
_seed_lock = threading.Lock()


def ensure_principles(db: Database, path: str | os.PathLike = PRINCIPLES_FILE) -> None:
    """Copy the library's principles the database has never seen (once per open database)."""
    with _seed_lock:
        done = _seeded.setdefault(db, set())
        if str(path) in done:
            return
        db.seed_principles(load_library(path))
        done.add(str(path))


def principles(db: Database) -> list[Principle]:
    ensure_principles(db)
    return [_principle(r) for r in db.principles()]


def _principle(r: dict) -> Principle:
    return Principle(id=r["id"], group=r["grp"], title=r["title"], text=r["text"], template=bool(r["template"]),
                     params=tuple(r["params"] or ()), default=bool(r["is_default"]), version=r["version"])


def save_principle(db: Database, p: dict, author: str | None = None) -> Principle:
    """Create or edit a principle (a new version; the old one stays in the history)."""
    ensure_principles(db)
    p = {k: (v.strip() if isinstance(v, str) else v) for k, v in p.items()}
    if p.get("params") is None:
        p["params"] = sorted(set(re.findall(r"\{(\w+)\}", p.get("text") or "")))
        p["template"] = bool(p["params"])
    problem = check_principle(p)
    if problem:
        raise RevisionError(problem)
    return _principle(db.save_principle(p, author))


def parse_principle_specs(spec: str | Iterable[str] | None) -> list[tuple[str, dict]]:
    """``"a,b,pink-elephant:avoid=cats:steer=dogs"`` -> ``[("a", {}), ("b", {}), ("pink-elephant", {...})]``.

    >>> parse_principle_specs("honest, pink-elephant:avoid=the weather:steer=gardening")
    [('honest', {}), ('pink-elephant', {'avoid': 'the weather', 'steer': 'gardening'})]
    """
    if spec is None:
        return []
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    out = []
    for item in items:
        item = item.strip()
        if not item:
            continue
        pid, *slots = item.split(":")
        values = {}
        for s in slots:
            k, sep, v = s.partition("=")
            if not sep:
                raise RevisionError(f"principle {pid.strip()!r}: expected NAME=VALUE after ':', got {s!r}")
            values[k.strip()] = v.strip()
        out.append((pid.strip(), values))
    return out


def resolve_principles(db: Database, spec=None, values: dict | None = None) -> list[Principle]:
    """The principles named by ``spec`` (ids, or ``id:slot=value:...``), templates filled in.

    No spec: the library's default principles. ``values`` fills template slots not given in the spec.
    """
    library = {p.id: p for p in principles(db)}
    chosen = parse_principle_specs(spec)
    if not chosen:
        chosen = [(p.id, {}) for p in library.values() if p.default]
    out = []
    for pid, slots in chosen:
        p = library.get(pid)
        if p is None:
            close = [k for k in library if pid.lower() in k]
            hint = f" (did you mean {', '.join(close[:3])}?)" if close else ""
            raise RevisionError(f"no principle {pid!r}{hint}; list them in the Revise tab or data/principles.json")
        if p.template:
            p = p.fill({**(values or {}), **slots})
        out.append(p)
    if not out:
        raise RevisionError("choose at least one principle")
    return out


# =================================================================================================
# Conversations and prompts
# =================================================================================================


@dataclass
class Source:
    """The conversation being revised: ``prompt`` (every turn before the final one) and ``final``."""

    dataset: str
    row: int
    side: str
    version: int | None
    prompt: list[dict]
    final: dict


def conversation(db: Database, dataset: str, row: int, side: str = "chosen") -> Source:
    """Row ``row`` of ``dataset`` as a conversation ending in an assistant turn (``side`` of a pair)."""
    info = db.dataset(dataset)
    if info is None:
        raise RevisionError(f"no dataset named {dataset!r}")
    if info.kind == "documents":
        raise RevisionError(f"{dataset} holds documents, not conversations: nothing to revise")
    if side not in SIDES:
        raise RevisionError(f"side must be chosen or rejected, not {side!r}")
    if side == "rejected" and info.kind != "pairs":
        raise RevisionError(f"{dataset} holds {info.kind}: only its conversation (side chosen) can be revised")
    rec = db.record(dataset, int(row))
    if rec is None:
        raise RevisionError(f"row {row} is not in {dataset} (rejected at ingest, or past the end)")
    messages = [_msg(m) for m in (rec.get("prompt") or []) + (rec.get(side) or [])]
    if not messages or messages[-1]["role"] != "assistant" or not messages[-1]["content"].strip():
        raise RevisionError(f"row {row} of {dataset} does not end in an assistant turn: nothing to revise")
    return Source(dataset, int(row), side, info.version, messages[:-1], messages[-1])


def _msg(m: dict) -> dict:
    return {"role": str(m.get("role") or "user").lower(), "content": str(m.get("content") or "")}


CRITIQUE_SYSTEM = (
    "You review the final assistant turn of a conversation against written principles. "
    "Judge only that final turn, in the context of the conversation before it."
)
CRITIQUE_FORMAT = (
    "Answer in this form:\n"
    "Violations: <the ids of the principles the final turn breaks, separated by commas, or none>\n"
    "Critique: <for each broken principle, one or two sentences on what is wrong and what would fix it>"
)
REVISION_SYSTEM = (
    "You rewrite the final assistant turn of a conversation so that it follows every principle given, "
    "while staying as helpful, specific and natural as the original."
)


def render_transcript(messages: list[dict]) -> str:
    names = {"user": "User", "assistant": "Assistant", "system": "System"}
    return "\n\n".join(f"{names.get(m['role'], m['role'].title())}: {m['content']}" for m in messages)


def render_principles(ps: list[Principle]) -> str:
    return "\n".join(f"- [{p.id}] {p.title}: {p.text}" for p in ps)


def critique_messages(prompt: list[dict], final: dict, ps: list[Principle]) -> list[dict]:
    """The chat that asks for a critique of ``final`` (the last assistant turn) after ``prompt``."""
    body = (
        f"Principles:\n{render_principles(ps)}\n\n"
        f"Conversation:\n{render_transcript(prompt) if prompt else '(no earlier turns)'}\n\n"
        f"Final assistant turn to review:\n{final['content']}\n\n"
        f"{CRITIQUE_FORMAT}"
    )
    return [{"role": "system", "content": CRITIQUE_SYSTEM}, {"role": "user", "content": body}]


def revision_messages(prompt: list[dict], final: dict, ps: list[Principle], critique: str) -> list[dict]:
    """The chat that asks for the rewritten final turn, given the critique."""
    body = (
        f"Principles:\n{render_principles(ps)}\n\n"
        f"Conversation:\n{render_transcript(prompt) if prompt else '(no earlier turns)'}\n\n"
        f"Final assistant turn:\n{final['content']}\n\n"
        f"Critique of that turn:\n{critique.strip() or '(none given)'}\n\n"
        "Write the final assistant turn again so that it follows every principle above. "
        "If it already does, return it unchanged. Reply with the new turn only, with no preamble."
    )
    return [{"role": "system", "content": REVISION_SYSTEM}, {"role": "user", "content": body}]


def fit_context(prompt: list[dict], final: dict, ps: list[Principle], count: Callable[[list[dict]], int],
                context: int | None, max_new_tokens: int) -> tuple[list[dict], list[str]]:
    """Drop the oldest turns of ``prompt`` until both prompts fit ``context`` tokens; say what was dropped.

    Policy: the revision prompt (which carries the conversation, the final turn, and a critique of up
    to ``max_new_tokens``) plus ``max_new_tokens`` of revision must fit the context. The oldest turns
    go first (a system turn counts as the oldest); the last user turn is always kept. If even that
    does not fit, RevisionError says how many tokens were needed.
    """
    if not context:
        return prompt, []
    budget = context - max_new_tokens

    def need(p):
        return count(revision_messages(p, final, ps, "")) + max_new_tokens

    kept = list(prompt)
    dropped = 0
    last_user = max((i for i, m in enumerate(kept) if m["role"] == "user"), default=len(kept) - 1)
    while need(kept) > budget and last_user > 0:
        kept.pop(0)
        dropped += 1
        last_user -= 1
    needed = need(kept)
    if needed > budget:
        raise RevisionError(
            f"context too long: the final exchange needs about {needed + max_new_tokens:,} tokens "
            f"(prompt, critique and {max_new_tokens:,} new tokens) but the model takes {context:,}; "
            "lower max new tokens or use a model with a longer context"
        )
    notes = []
    if dropped:
        notes.append(f"dropped the {dropped} oldest of {len(prompt)} earlier turns to fit the model's context "
                     f"of {context:,} tokens")
    return kept, notes


# =================================================================================================
# Critique parsing
# =================================================================================================


@dataclass
class Critique:
    raw: str
    violations: list[str]
    parsed: bool  # the model followed the "Violations:" format
    none: bool  # it said no principle is broken

    def summary(self) -> str:
        if not self.parsed:
            named = f" (mentions {', '.join(self.violations)})" if self.violations else ""
            return "the critique did not follow the format; raw text kept" + named
        return "no principle violated" if self.none else "violates " + ", ".join(self.violations)


_NONE = re.compile(r"^\W*(none|no\b|nothing|n/?a\b|no violations?)", re.I)


def parse_critique(text, principle_ids: Iterable[str]) -> Critique:
    """Read the ``Violations:`` line of a critique; anything else still gives a result.

    Never raises: a model that ignores the format gives ``parsed=False``, the principle ids it
    happens to mention, and the raw text.

    >>> parse_critique("Violations: no-fabrication, concise\\nCritique: ...", ["no-fabrication", "concise"]).violations
    ['no-fabrication', 'concise']
    >>> parse_critique("Violations: none", ["x"]).none
    True
    >>> parse_critique("\\x00 gibberish", ["x"]).parsed
    False
    """
    try:
        raw = text if isinstance(text, str) else ("" if text is None else str(text))
        ids = [str(i) for i in principle_ids]
        m = re.search(r"violations?\s*[:\-]\s*(.*)", raw, re.I)
        if m:
            line = m.group(1).strip()
            found = _ids_in(line, ids)
            if found:
                return Critique(raw, found, True, False)
            if _NONE.match(line) or not line:
                return Critique(raw, [], True, True)
            return Critique(raw, _ids_in(raw, ids), False, False)
        return Critique(raw, _ids_in(raw, ids), False, False)
    except Exception:  # a critique is model output: nothing in it may break the run
        return Critique(str(text), [], False, False)


def _ids_in(text: str, ids: list[str]) -> list[str]:
    low = text.lower()
    hits = []
    for pid in ids:
        pos = [m.start() for m in re.finditer(r"(?<![\w-])" + re.escape(pid.lower()) + r"(?![\w-])", low)]
        if pos:
            hits.append((pos[0], pid))
    return [pid for _, pid in sorted(hits)]


# =================================================================================================
# Backends
# =================================================================================================


@dataclass
class Settings:
    max_new_tokens: int = 256
    temperature: float = 0.7
    top_p: float = 0.95
    seed: int = 0
    batch_size: int | None = None  # None: 32 on CUDA, 4 on CPU, 8 for an endpoint
    context_tokens: int | None = None  # None: the model's own context length (unknown for an endpoint)

    def checked(self) -> "Settings":
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
        return sum(len(m["content"]) for m in messages) // 4 + 8 * len(messages)

    def stream(self, messages: list[dict], settings: Settings, stop: threading.Event | None = None) -> Stream:
        raise NotImplementedError

    def generate_batch(self, batch: list[list[dict]], settings: Settings,
                       stop: threading.Event | None = None) -> list[Generation]:
        raise NotImplementedError

    def batch_size(self, settings: Settings) -> int:
        return settings.batch_size or 8


# -- local transformers ------------------------------------------------------------------------

_models: dict[tuple, "LocalBackend"] = {}
_models_lock = threading.Lock()


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def local_backend(model: str, device: str | None = None) -> "LocalBackend":
    """The local model ``model`` (Hub id or path) on ``device`` (default: cuda when present, else cpu),
    loaded on first use and kept for the life of the process."""
    model = (model or "").strip()
    if not model:
        raise RevisionError("give a model: a local folder or a Hugging Face model id")
    if not device:
        _model_source(model)  # a missing model is reported before torch is even imported
    device = (device or "").strip() or ("cuda" if cuda_available() else "cpu")
    key = (model, device)
    with _models_lock:
        backend = _models.get(key)
        if backend is None:
            backend = LocalBackend(model, device)
            _models[key] = backend
        return backend


def loaded_models() -> list[str]:
    with _models_lock:
        return [b.describe() for b in _models.values()]


def _model_source(model: str) -> tuple[str, bool]:
    """Where to load ``model`` from, and whether from local files only; a clear error when nowhere.

    A folder must hold a config.json. A Hub id is taken from the local cache when it is there (no
    network needed); otherwise the Hub must be reachable, which is checked in a few seconds rather
    than after the minutes of retries a download attempt would take offline.
    """
    path = Path(model).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise RevisionError(f"{model} is not a transformers model folder (it has no config.json)")
        return str(path), True
    if model.startswith((".", "/", "~")) or model.count("/") > 1 or os.sep != "/" and os.sep in model:
        raise RevisionError(f"model folder {model} does not exist")
    if not re.fullmatch(r"[\w.-]+(/[\w.-]+)?", model):
        raise RevisionError(f"{model!r} is neither a model folder nor a Hugging Face model id (org/name)")
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(model, "config.json")
    except Exception:
        cached = None
    if isinstance(cached, str):
        return model, True
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    if offline or not _hub_reachable():
        why = "HF_HUB_OFFLINE is set" if offline else "the Hub cannot be reached (offline)"
        raise RevisionError(f"model {model!r} not found: not a local folder, not in the local cache, and {why}")
    return model, False


def _hub_reachable(timeout: float = 3.0) -> bool:
    import socket
    from urllib.parse import urlparse

    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or "huggingface.co"
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def _oom(err: BaseException) -> bool:
    return isinstance(err, MemoryError) or "out of memory" in str(err).lower() or type(err).__name__ == "OutOfMemoryError"


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return (text[0] if text else type(err).__name__)[:300]


class LocalBackend(Backend):
    """A causal LM with a chat template, loaded once: bf16 on CUDA, float32 on CPU."""

    kind = "local"

    def __init__(self, model: str, device: str):
        import torch
        from transformers import AutoModelForCausalLM
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        self.model = model
        self.device = device
        self.dtype_obj = torch.bfloat16 if device.startswith("cuda") else torch.float32
        self.dtype = str(self.dtype_obj).replace("torch.", "")
        self.lock = threading.Lock()  # one generation at a time: seeds stay reproducible, memory bounded
        started = time.perf_counter()
        where, local_only = _model_source(model)
        try:
            self.tokenizer = self._tokenizer(where, local_only)
            self.lm = AutoModelForCausalLM.from_pretrained(where, dtype=self.dtype_obj, local_files_only=local_only)
            self.lm.to(device)
            self.lm.eval()
        except Exception as err:
            raise RevisionError(self._load_error(model, err)) from None
        if not getattr(self.tokenizer, "chat_template", None):
            raise RevisionError(f"model {model} has no chat template: use an instruction-tuned (chat) model")
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.load_seconds = time.perf_counter() - started
        config = self.lm.config
        self.max_context = getattr(config, "max_position_embeddings", None)
        self.parameters = sum(p.numel() for p in self.lm.parameters())

    @staticmethod
    def _tokenizer(model: str, local_only: bool):
        from transformers import AutoTokenizer, PreTrainedTokenizerFast

        cfg = Path(model) / "tokenizer_config.json"
        if cfg.is_file():
            try:
                cls = json.loads(cfg.read_text()).get("tokenizer_class")
            except ValueError:
                cls = None
            if cls in ("PreTrainedTokenizerFast", "TokenizersBackend"):
                # a plain tokenizer.json: AutoTokenizer would swap in the model type's own class
                return PreTrainedTokenizerFast.from_pretrained(model)
        return AutoTokenizer.from_pretrained(model, local_files_only=local_only)

    @staticmethod
    def _load_error(model: str, err: Exception) -> str:
        if _oom(err):
            return f"out of memory while loading {model}: choose a smaller model or free the GPU"
        detail = " ".join(str(err).split())[:240] or type(err).__name__
        if isinstance(err, OSError) and not Path(model).exists():
            return f"model {model!r} not found on the Hugging Face Hub or in the local cache ({detail})"
        return f"cannot load {model}: {detail}"

    def context_length(self, settings: Settings) -> int | None:
        return settings.context_tokens or self.max_context

    def batch_size(self, settings: Settings) -> int:
        return settings.batch_size or (32 if self.device.startswith("cuda") else 4)

    def _text(self, messages: list[dict]) -> str:
        try:
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        except Exception as err:  # a template that rejects system turns, for example
            if messages and messages[0]["role"] == "system":
                merged = [{"role": "user", "content": messages[0]["content"] + "\n\n" + messages[1]["content"]}]
                return self.tokenizer.apply_chat_template(merged + messages[2:], tokenize=False,
                                                          add_generation_prompt=True)
            raise RevisionError(f"the chat template of {self.model} failed: {_first_line(err)}") from None

    def count(self, messages: list[dict]) -> int:
        return len(self.tokenizer(self._text(messages), add_special_tokens=False)["input_ids"])

    def _gen_kwargs(self, settings: Settings, stop: threading.Event | None) -> dict:
        from transformers import StoppingCriteriaList

        kw = {"max_new_tokens": settings.max_new_tokens, "do_sample": settings.temperature > 0,
              "pad_token_id": self.tokenizer.pad_token_id}
        if settings.temperature > 0:
            kw |= {"temperature": settings.temperature, "top_p": settings.top_p}
        else:
            kw |= {"temperature": None, "top_p": None, "top_k": None}
        if stop is not None:
            kw["stopping_criteria"] = StoppingCriteriaList([_StopOnEvent(stop)])
        return kw

    def stream(self, messages, settings, stop=None) -> Stream:
        from transformers import TextIteratorStreamer

        text = self._text(messages)
        enc = self.tokenizer(text, return_tensors="pt", add_special_tokens=False).to(self.device)
        prompt_tokens = int(enc["input_ids"].shape[1])
        streamer = _TokenStreamer(self.tokenizer, TextIteratorStreamer)
        kw = self._gen_kwargs(settings, stop) | {"streamer": streamer}
        failure: list[BaseException] = []
        out = Stream(iter(()))

        def work():
            import torch

            try:
                with self.lock, torch.inference_mode():
                    torch.manual_seed(settings.seed)
                    streamer.started = time.perf_counter()
                    self.lm.generate(**enc, **kw)
            except BaseException as err:  # reported by the reader, in its thread
                failure.append(err)
                streamer.end()

        def chunks():
            started = time.perf_counter()
            worker = threading.Thread(target=work, daemon=True, name="revise-generate")
            worker.start()
            pieces = []
            read_all = False
            try:
                for piece in streamer:
                    out.tokens = streamer.tokens
                    if piece:
                        pieces.append(piece)
                        yield piece
                read_all = True
            finally:
                if not read_all and stop is not None:
                    stop.set()  # the reader went away (closed stream): end the generation too
                worker.join()
            if failure:
                raise RevisionError(self._run_error(failure[0], settings))
            stopped = stop is not None and stop.is_set() and streamer.tokens < settings.max_new_tokens \
                and not streamer.saw_eos
            finish = "stopped" if stopped else ("length" if streamer.tokens >= settings.max_new_tokens else "stop")
            ttft = (streamer.first_at - (streamer.started or started)) if streamer.first_at else None
            out.result = Generation("".join(pieces), streamer.tokens, ttft, time.perf_counter() - started, finish,
                                    prompt_tokens)

        out._chunks = chunks()
        return out

    def _run_error(self, err: BaseException, settings: Settings) -> str:
        if _oom(err):
            return (f"out of memory on {self.device} while generating with {self.model}: lower max new tokens "
                    f"({settings.max_new_tokens}) or the batch size, or use a smaller model")
        if isinstance(err, RevisionError):
            return str(err)
        return f"generation failed on {self.device}: {_first_line(err)}"

    def generate_batch(self, batch, settings, stop=None) -> list[Generation]:
        """Many conversations per forward pass: left-padded, one ``generate`` for the whole batch."""
        import torch

        if not batch:
            return []
        tok = self.tokenizer
        texts = [self._text(m) for m in batch]
        old_side = tok.padding_side
        tok.padding_side = "left"
        try:
            enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
        finally:
            tok.padding_side = old_side
        clock = _Clock()
        kw = self._gen_kwargs(settings, stop) | {"streamer": clock}
        started = time.perf_counter()
        try:
            with self.lock, torch.inference_mode():
                torch.manual_seed(settings.seed)
                out = self.lm.generate(**enc, **kw)
        except Exception as err:
            raise RevisionError(self._run_error(err, settings)) from None
        seconds = time.perf_counter() - started
        new = out[:, enc["input_ids"].shape[1]:].tolist()
        eos = self._eos_ids()
        stopped = stop is not None and stop.is_set()
        gens = []
        for i, ids in enumerate(new):
            n = len(ids)
            ended = False
            for j, t in enumerate(ids):
                if t in eos:
                    n, ended = j + 1, True
                    break
            while not ended and n and ids[n - 1] == tok.pad_token_id and tok.pad_token_id not in eos:
                n -= 1
            text = tok.decode(ids[:n], skip_special_tokens=True)
            finish = "stop" if ended else ("length" if n >= settings.max_new_tokens else ("stopped" if stopped else "stop"))
            gens.append(Generation(text, n, clock.ttft(started), seconds, finish,
                                   int(enc["attention_mask"][i].sum())))
        return gens

    def _eos_ids(self) -> set[int]:
        ids = self.lm.generation_config.eos_token_id
        ids = set(ids if isinstance(ids, list) else [ids]) if ids is not None else set()
        if self.tokenizer.eos_token_id is not None:
            ids.add(self.tokenizer.eos_token_id)
        return ids


def _TokenStreamer(tokenizer, base):
    """A TextIteratorStreamer that hands over text after every token (not only at word ends),
    counts the generated tokens, and notes when the first one arrived."""

    class TokenStreamer(base):
        def __init__(self):
            super().__init__(tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=None)
            self.tokens = 0
            self.first_at: float | None = None
            self.started: float | None = None
            self.saw_eos = False
            self._eos = tokenizer.eos_token_id

        def put(self, value):
            if self.skip_prompt and self.next_tokens_are_prompt:
                self.next_tokens_are_prompt = False
                return
            ids = value.reshape(-1).tolist()
            if not ids:
                return
            if self.first_at is None:
                self.first_at = time.perf_counter()
            self.tokens += len(ids)
            self.saw_eos = self.saw_eos or self._eos in ids
            self.token_cache.extend(ids)
            text = self.tokenizer.decode(self.token_cache, **self.decode_kwargs)
            if text.endswith("\ufffd"):
                return  # half of a multi-byte character: wait for the rest
            piece = text[self.print_len:]
            if text.endswith("\n"):
                self.token_cache, self.print_len = [], 0
            else:
                self.print_len = len(text)
            self.on_finalized_text(piece)

    return TokenStreamer()


class _Clock:
    """A streamer for batched generate that only notes when the first new tokens were made."""

    def __init__(self):
        self.calls = 0
        self.first_at: float | None = None

    def put(self, value):
        self.calls += 1
        if self.calls == 2 and self.first_at is None:  # the first call carries the prompt
            self.first_at = time.perf_counter()

    def end(self):
        pass

    def ttft(self, started: float) -> float | None:
        return None if self.first_at is None else self.first_at - started


def _StopOnEvent(event: threading.Event):
    from transformers import StoppingCriteria

    class StopOnEvent(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            import torch

            return torch.full((input_ids.shape[0],), event.is_set(), dtype=torch.bool, device=input_ids.device)

    return StopOnEvent()


# -- OpenAI-compatible endpoint ----------------------------------------------------------------


class EndpointBackend(Backend):
    """Any server speaking OpenAI's ``/v1/chat/completions`` with streaming (vLLM, TGI, transformers serve)."""

    kind = "endpoint"
    device = "remote"
    dtype = "server's"

    def __init__(self, url: str, model: str, api_key: str | None = None, timeout: float = 300.0):
        url = (url or "").strip().rstrip("/")
        if not re.match(r"https?://", url):
            raise RevisionError(f"endpoint URL must start with http:// or https://, got {url!r}")
        if not (model or "").strip():
            raise RevisionError("give the model name the endpoint serves (--model NAME)")
        if url.endswith("/chat/completions"):
            self.url = url
        elif url.endswith("/v1"):
            self.url = url + "/chat/completions"
        else:
            self.url = url + "/v1/chat/completions"
        self.endpoint = url
        self.model = model.strip()
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        self.timeout = timeout

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
                import httpx

                r = httpx.get(self.url.rsplit("/chat/completions", 1)[0] + "/models", timeout=5.0,
                              headers={"Authorization": f"Bearer {self.api_key}"} if self.api_key else {})
                for m in (r.json().get("data") or []) if r.status_code == 200 else []:
                    if m.get("id") == self.model and isinstance(m.get("max_model_len"), int):
                        self._max_len = m["max_model_len"]
            except Exception:  # the model list is optional: many servers lack it or answer oddly
                pass
        return self._max_len

    def _body(self, messages, settings) -> dict:
        body = {"model": self.model, "messages": messages, "stream": True,
                "max_tokens": settings.max_new_tokens, "temperature": settings.temperature,
                "seed": settings.seed, "stream_options": {"include_usage": True}}
        if settings.temperature > 0:
            body["top_p"] = settings.top_p
        return body

    def stream(self, messages, settings, stop=None) -> Stream:
        import httpx

        out = Stream(iter(()))
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

        def chunks():
            started = time.perf_counter()
            first = None
            pieces: list[str] = []
            n_chunks = 0
            usage = None
            finish = "stop"
            stopped = False
            timeout = httpx.Timeout(self.timeout, connect=10.0)
            try:
                with httpx.Client(timeout=timeout) as client:
                    with client.stream("POST", self.url, json=self._body(messages, settings), headers=headers) as r:
                        if r.status_code >= 400:
                            r.read()
                            raise RevisionError(self._http_error(r.status_code, r.text))
                        for line in r.iter_lines():
                            if stop is not None and stop.is_set():
                                stopped = True
                                break
                            if not line.startswith("data:"):
                                continue
                            data = line[5:].strip()
                            if data == "[DONE]":
                                break
                            try:
                                obj = json.loads(data)
                            except ValueError:
                                continue
                            if obj.get("error"):
                                raise RevisionError(self._http_error(200, json.dumps(obj)))
                            usage = obj.get("usage") or usage
                            for ch in obj.get("choices") or []:
                                piece = (ch.get("delta") or {}).get("content")
                                if ch.get("finish_reason"):
                                    finish = "length" if ch["finish_reason"] == "length" else "stop"
                                if piece:
                                    n_chunks += 1
                                    out.tokens = n_chunks
                                    if first is None:
                                        first = time.perf_counter()
                                    pieces.append(piece)
                                    yield piece
            except httpx.ConnectError as err:
                raise RevisionError(f"endpoint {self.endpoint} is unreachable ({_first_line(err) or 'connection refused'}): "
                                    "is the server running?") from None
            except httpx.TimeoutException:
                raise RevisionError(f"endpoint {self.endpoint} did not answer within {self.timeout:.0f} s") from None
            except httpx.HTTPError as err:
                raise RevisionError(f"endpoint {self.endpoint} failed: {_first_line(err)}") from None
            tokens = (usage or {}).get("completion_tokens") if not stopped else None
            out.result = Generation("".join(pieces), int(tokens if tokens is not None else n_chunks),
                                    None if first is None else first - started, time.perf_counter() - started,
                                    "stopped" if stopped else finish, (usage or {}).get("prompt_tokens"))

        out._chunks = chunks()
        return out

    def _http_error(self, status: int, body: str) -> str:
        detail = body
        try:
            obj = json.loads(body)
            err = obj.get("error") if isinstance(obj, dict) else None
            detail = (err.get("message") if isinstance(err, dict) else err) or obj.get("detail") or obj.get("message") or body
        except (ValueError, AttributeError):
            pass
        detail = " ".join(str(detail).split())[:240]
        low = detail.lower()
        if "out of memory" in low or "cuda oom" in low:
            return f"the endpoint ran out of memory: {detail}"
        if re.search(r"context|too long|maximum.*length|exceeds|max_model_len|input_ids", low) and status in (400, 413, 422):
            return f"context too long for {self.model} at {self.endpoint}: {detail}"
        if "model" in low and status in (400, 404):
            return f"model {self.model!r} not found at {self.endpoint}: {detail}"
        if status == 404:
            return f"{self.url} answered 404: is this an OpenAI-compatible endpoint? ({detail})"
        if status in (401, 403):
            return f"the endpoint refused the request (HTTP {status}): set OPENAI_API_KEY if it needs a key"
        return f"the endpoint answered HTTP {status}: {detail}"

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


def make_backend(model: str, endpoint: str | None = None, device: str | None = None,
                 api_key: str | None = None) -> Backend:
    """A local model (Hub id or path), or ``model`` served at ``endpoint``."""
    if endpoint and endpoint.strip():
        return EndpointBackend(endpoint, model, api_key=api_key)
    return local_backend(model, device)


# =================================================================================================
# One revision: critique, then revision, streamed
# =================================================================================================


@dataclass
class Update:
    """One step of a streamed revision, as the page shows it."""

    phase: str  # critique | revision | done | stopped
    critique: str = ""
    revision: str = ""
    tokens: int = 0
    notes: list[str] = field(default_factory=list)
    result: dict | None = None  # on done / stopped: the revision record (see ``accept``)


def revise_stream(source: Source, ps: list[Principle], backend: Backend, settings: Settings,
                  stop: threading.Event | None = None) -> Iterator[Update]:
    """Critique then revise ``source``'s final turn, yielding an Update per chunk of text.

    The last update carries ``result``: everything ``accept`` stores. Setting ``stop`` ends the
    generation early (``phase == "stopped"``); whatever was written so far is kept.
    """
    settings = settings.checked()
    stop = stop or threading.Event()
    started = time.perf_counter()
    prompt, notes = fit_context(source.prompt, source.final, ps, backend.count, backend.context_length(settings),
                                settings.max_new_tokens)
    critique_text = ""
    yield Update("critique", notes=notes)
    s = backend.stream(critique_messages(prompt, source.final, ps), settings, stop)
    for piece in s:
        critique_text += piece
        yield Update("critique", critique_text, "", s.tokens, notes)
    crit_gen = s.result
    critique = parse_critique(critique_text, [p.id for p in ps])
    rev_gen = None
    revision_text = ""
    if crit_gen.finish != "stopped":
        s = backend.stream(revision_messages(prompt, source.final, ps, critique_text), settings, stop)
        for piece in s:
            revision_text += piece
            yield Update("revision", critique_text, revision_text, crit_gen.tokens + s.tokens, notes)
        rev_gen = s.result
    stopped = crit_gen.finish == "stopped" or (rev_gen is not None and rev_gen.finish == "stopped")
    if stopped:
        notes = notes + ["stopped by the user" + (" during the critique" if rev_gen is None else " during the revision")]
    result = build_result(source, ps, backend, settings, critique, revision_text.strip(), crit_gen, rev_gen,
                          time.perf_counter() - started, notes)
    yield Update("stopped" if stopped else "done", critique_text, revision_text, result["tokens"]["total"], notes,
                 result)


def build_result(source: Source, ps: list[Principle], backend: Backend, settings: Settings, critique: Critique,
                 revision: str, crit_gen: Generation, rev_gen: Generation | None, latency: float,
                 notes: list[str], job_id: str | None = None, seed: int | None = None) -> dict:
    """The revision record (the columns of the ``revisions`` table) for one conversation."""
    tokens = {
        "prompt": crit_gen.prompt_tokens,
        "critique": crit_gen.tokens,
        "revision": rev_gen.tokens if rev_gen else 0,
    }
    tokens["total"] = tokens["critique"] + tokens["revision"]
    finish = {"critique": crit_gen.finish, "revision": rev_gen.finish if rev_gen else None}
    return {
        "id": uuid.uuid4().hex,
        "job_id": job_id,
        "dataset": source.dataset,
        "row": source.row,
        "side": source.side,
        "dataset_version": source.version,
        "prompt": source.prompt,
        "original": [source.final],
        "critique": critique.raw,
        "violations": critique.violations,
        "critique_parsed": critique.parsed,
        "revision": revision,
        "final_revision": None,
        "edited": None,
        "status": "pending" if revision else "failed",
        "error": None if revision else ("stopped before the revision" if finish["critique"] == "stopped"
                                        else "the model wrote an empty revision"),
        "principles": [p.as_dict() for p in ps],
        "model": backend.model,
        "backend": backend.kind,
        "endpoint": backend.endpoint,
        "device": backend.device,
        "dtype": backend.dtype,
        "settings": settings.as_dict() | {"finish": finish},
        "seed": settings.seed if seed is None else seed,
        "tokens": tokens,
        "latency_s": round(latency, 4),
        "ttft_s": None if crit_gen.ttft_s is None else round(crit_gen.ttft_s, 4),
        "notes": notes,
    }


def revise_one(db: Database, dataset: str, row: int, side: str = "chosen", principles_spec=None,
               backend: Backend | None = None, settings: Settings | None = None,
               stop: threading.Event | None = None) -> dict:
    """Run ``revise_stream`` to the end and return the revision record (not stored)."""
    source = conversation(db, dataset, row, side)
    ps = resolve_principles(db, principles_spec)
    last = None
    for last in revise_stream(source, ps, backend, settings or Settings(), stop):
        pass
    return last.result


# =================================================================================================
# Accepting: a revision becomes a pair
# =================================================================================================


def default_into(dataset: str) -> str:
    return f"{dataset}-revisions"


def pair_of(result: dict, final_text: str, edited: bool, reviewed_by: str | None) -> dict:
    """The preference pair of a revision, with its provenance as the record's metadata."""
    meta = {
        "source_dataset": result["dataset"],
        "source_row": result["row"],
        "source_side": result["side"],
        "source_version": result.get("dataset_version"),
        "principles": [p["id"] for p in result["principles"]],
        "principle_texts": result["principles"],
        "violations": list(result.get("violations") or []),
        "critique": result.get("critique"),
        "critique_parsed": result.get("critique_parsed"),
        "model": result["model"],
        "backend": result["backend"],
        "endpoint": result.get("endpoint"),
        "device": result["device"],
        "dtype": result["dtype"],
        "settings": result["settings"],
        "seed": result["seed"],
        "tokens": result["tokens"],
        "latency_s": result["latency_s"],
        "ttft_s": result.get("ttft_s"),
        "notes": list(result.get("notes") or []),
        "revised_at": _now(),
        "accepted_by": reviewed_by,
        "edited": bool(edited),
        "model_revision": result.get("revision") if edited else None,
        "revision_id": result["id"],
        "job_id": result.get("job_id"),
    }
    return {
        "prompt": result["prompt"],
        "chosen": [{"role": "assistant", "content": final_text}],
        "rejected": result["original"],
        "source_id": f"{result['dataset']}#{result['row']}:{result['side']}",
        "metadata": meta,
    }


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def accept(db: Database, result: dict, final_text: str | None = None, reviewed_by: str | None = None,
           into: str | None = None, stored: bool = False) -> tuple[str, int]:
    """Store ``result`` as a pair of dataset ``into`` (default ``DATASET-revisions``); return (into, row).

    ``final_text`` is the revision as the user left it: when it differs from the model's, the pair
    keeps the user's text and is marked edited (the model's text stays in the provenance).
    ``stored``: the revision is already in the database (a pending batch result).
    """
    model_text = (result.get("revision") or "").strip()
    final = (model_text if final_text is None else final_text).strip()
    if not final:
        raise RevisionError("the revision is empty: write one, or run the model again")
    edited = final != model_text
    into = (into or "").strip() or default_into(result["dataset"])
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", into):
        raise RevisionError(f"dataset name {into!r} must be letters, digits, '.', '_' or '-'")
    if stored:
        cur = db.revision(result["id"])
        if cur is None or cur["status"] != "pending":
            raise RevisionError(f"revision {result['id'][:8]} is no longer pending review")
    item = {"revision_id": result["id"], "final_revision": final, "edited": edited,
            "reviewed_by": (reviewed_by or "").strip() or None,
            "pair": pair_of(result, final, edited, (reviewed_by or "").strip() or None)}
    if not stored:
        item["new_revision"] = result
    try:
        rows = db.accept_revisions(into, [item])
    except DatabaseError as err:
        raise RevisionError(str(err)) from None
    return into, rows[0]


def reject(db: Database, revision_id: str, reviewed_by: str | None = None) -> None:
    db.reject_revision(revision_id, (reviewed_by or "").strip() or None)


# =================================================================================================
# Batch jobs: many conversations, resumable, results pending review (or accepted straight away)
# =================================================================================================


def parse_rows(text: str | Iterable[int] | None) -> list[int] | None:
    """``"0,1,5-7"`` -> ``[0, 1, 5, 6, 7]``; None or empty -> None.

    >>> parse_rows("3, 0-2")
    [3, 0, 1, 2]
    """
    if text is None:
        return None
    if not isinstance(text, str):
        return [int(r) for r in text]
    out: list[int] = []
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m:
            raise RevisionError(f"rows: expected numbers or ranges such as 0,1,5-9, got {part!r}")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if hi < lo or hi - lo > 1_000_000:
            raise RevisionError(f"rows: bad range {part!r}")
        out.extend(range(lo, hi + 1))
    seen = set()
    return [r for r in out if not (r in seen or seen.add(r))] or None


def select_rows(db: Database, dataset: str, rows=None, query: str | None = None, limit: int | None = None,
                notes: list[str] | None = None) -> list[int]:
    """The rows a batch revises: given rows (those that exist), a search's hits in rank order, or the
    dataset from its first row -- at most ``limit``. How a query was answered goes to ``notes``."""
    info = db.dataset(dataset)
    if info is None:
        raise RevisionError(f"no dataset named {dataset!r}")
    if info.kind == "documents":
        raise RevisionError(f"{dataset} holds documents, not conversations: nothing to revise")
    if limit is not None and limit < 1:
        raise RevisionError("limit must be at least 1")
    rows = parse_rows(rows)
    if rows is not None and query:
        raise RevisionError("give rows or a query, not both")
    if query and query.strip():
        found = search_rows(db, dataset, query.strip(), limit or 1000, notes if notes is not None else [])
    elif rows is not None:
        present = set(db.existing_rows(dataset, rows))
        found = [r for r in rows if r in present]
    else:
        found = db.first_rows(dataset, limit or info.row_count)
    found = found[:limit] if limit else found
    if not found:
        raise RevisionError(f"no rows of {dataset} to revise" + (f" match {query!r}" if query else ""))
    return found


def search_rows(db: Database, dataset: str, query: str, limit: int, notes: list[str]) -> list[int]:
    """Rows of ``dataset`` matching ``query``: BM25-ranked hits of its search index when it has an
    up-to-date one, else every row containing all the words, in source order (and a note says so)."""
    try:
        from . import search as engine
    except ImportError:
        engine = None
    if engine is not None:
        status = engine.index_status(db, dataset)
        if status is not None and status.ready:
            try:
                hits = engine.search(db, dataset, query, k=limit, snippets=False).hits
            except engine.SearchError as err:
                raise RevisionError(f"search {query!r}: {err}") from None
            notes.append(f"{len(hits)} rows ranked by the search index (BM25)")
            return [h.row for h in hits]
        why = status.problem() if status is not None else f"{dataset} has no search index"
        notes.append(f"{why}; took the rows containing every word of the query instead")
    terms = [a or b for a, b in re.findall(r'"([^"]+)"|(\S+)', query)]
    return db.rows_matching(dataset, terms, limit)


def job_key(dataset: str, side: str, rows: list[int], ps: list[Principle], backend: Backend, settings: Settings,
            accept_into: str | None) -> str:
    s = settings.as_dict()
    s.pop("batch_size", None)
    what = {"dataset": dataset, "side": side, "rows": rows, "principles": [p.as_dict() for p in ps],
            "backend": [backend.kind, backend.model, backend.endpoint], "settings": s, "into": accept_into}
    return hashlib.sha1(json.dumps(what, sort_keys=True).encode()).hexdigest()


def start_job(db: Database, dataset: str, rows: list[int], ps: list[Principle], backend: Backend,
              settings: Settings, side: str = "chosen", accept_into: str | None = None,
              selection: dict | None = None) -> tuple[dict, bool]:
    """The job for this request: an unfinished one with the same request is resumed, else a new one.
    Returns (job, resumed)."""
    settings = settings.checked()
    key = job_key(dataset, side, rows, ps, backend, settings, accept_into)
    old = db.revision_jobs(key=key, unfinished=True, limit=1)
    if old:
        return old[0], True
    job = {"id": uuid.uuid4().hex[:12], "key": key, "dataset": dataset, "side": side, "selection": selection or {},
           "rows": rows, "principles": [p.as_dict() | {"template_id": p.id} for p in ps],
           "backend": {"kind": backend.kind, "model": backend.model, "endpoint": backend.endpoint},
           "settings": settings.as_dict(), "accept_into": accept_into}
    return db.create_revision_job(job), False


def job_principles(job: dict) -> list[Principle]:
    return [Principle(id=p["id"], group=p.get("group", ""), title=p["title"], text=p["text"], version=p.get("version", 1),
                      values=tuple((p.get("values") or {}).items())) for p in job["principles"]]


def job_settings(job: dict) -> Settings:
    return Settings(**{k: v for k, v in job["settings"].items() if k in Settings.__dataclass_fields__})


def backend_for_job(job: dict, device: str | None = None) -> Backend:
    b = job["backend"]
    return make_backend(b["model"], b.get("endpoint"), device)


@dataclass
class JobProgress:
    job_id: str
    done: int
    total: int
    message: str


def run_job(db: Database, job_id: str, backend: Backend | None = None, stop: threading.Event | None = None,
            progress: Callable[[JobProgress], None] | None = None, batch_size: int | None = None) -> dict:
    """Revise the job's rows that have no result yet, a batch per forward pass, storing each batch as
    it finishes. Stopping (the event, Ctrl-C, a crash) leaves the job resumable: run it again and
    only the remaining rows are done."""
    job = db.revision_job(job_id)
    if job is None:
        raise RevisionError(f"no revision job {job_id!r}")
    backend = backend or backend_for_job(job)
    settings = job_settings(job)
    if batch_size:
        settings = replace(settings, batch_size=batch_size)
    ps = job_principles(job)
    stop = stop or threading.Event()
    done_rows = db.revision_job_done_rows(job_id)
    todo = [r for r in job["rows"] if r not in done_rows]
    total = len(job["rows"])
    done = total - len(todo)
    size = backend.batch_size(settings)
    report = progress or (lambda p: None)
    report(JobProgress(job_id, done, total, f"{done} of {total} done; {len(todo)} to go, {size} per batch"))
    db.set_revision_job_status(job_id, "running")
    status, message = "interrupted", None
    try:
        for start in range(0, len(todo), size):
            if stop.is_set():
                break
            chunk = todo[start:start + size]
            stored = _run_chunk(db, job, chunk, ps, backend, settings, stop, seed=settings.seed + job["rows"].index(chunk[0]))
            if stored is None:
                break  # stopped mid-batch: nothing of it stored, a resume redoes it
            done += len(chunk)
            report(JobProgress(job_id, done, total, f"rows {chunk[0]}..{chunk[-1]}: {stored}"))
        else:
            status = "done"
    except RevisionError as err:
        status, message = "failed", str(err)
        raise
    finally:
        db.set_revision_job_status(job_id, status, message)
    out = db.revision_job(job_id)
    out["stopped"] = status == "interrupted"
    return out


def _run_chunk(db, job, rows, ps, backend, settings, stop, seed) -> str | None:
    started = time.perf_counter()
    sources, results = [], []
    for row in rows:
        try:
            sources.append(conversation(db, job["dataset"], row, job["side"]))
        except RevisionError as err:
            results.append(_failed(job, row, str(err), backend, settings, ps))
    prompts, notes = [], []
    live = []
    for src in sources:
        try:
            p, n = fit_context(src.prompt, src.final, ps, backend.count, backend.context_length(settings),
                               settings.max_new_tokens)
        except RevisionError as err:
            results.append(_failed(job, src.row, str(err), backend, settings, ps))
            continue
        live.append(src), prompts.append(p), notes.append(n)
    run_settings = replace(settings, seed=seed)
    crits = backend.generate_batch([critique_messages(p, s.final, ps) for p, s in zip(prompts, live)], run_settings, stop)
    if stop.is_set():
        return None
    revs = backend.generate_batch([revision_messages(p, s.final, ps, c.text) for p, s, c in zip(prompts, live, crits)],
                                  run_settings, stop)
    if stop.is_set():
        return None
    each = (time.perf_counter() - started) / max(1, len(live))
    for src, p, n, c, r in zip(live, prompts, notes, crits, revs):
        res = build_result(src, ps, backend, settings, parse_critique(c.text, [x.id for x in ps]), r.text.strip(),
                           c, r, each, n + ([f"batch of {len(live)}"] if len(live) > 1 else []), job_id=job["id"],
                           seed=seed)
        results.append(res)
    results.sort(key=lambda r: rows.index(r["row"]))
    into = job.get("accept_into")
    good = [r for r in results if r["status"] == "pending"]
    bad = [r for r in results if r["status"] != "pending"]
    if into and good:
        try:
            db.accept_revisions(into, [
                {"revision_id": r["id"], "final_revision": r["revision"], "edited": False, "reviewed_by": None,
                 "new_revision": r, "pair": pair_of(r, r["revision"], False, None)} for r in good])
        except DatabaseError as err:
            raise RevisionError(str(err)) from None
        if bad:
            db.add_revisions(bad)
    else:
        db.add_revisions(results)
    word = "accepted" if into else "pending review"
    return f"{len(good)} {word}" + (f", {len(bad)} failed" if bad else "")


def _failed(job, row, error, backend, settings, ps) -> dict:
    return {"id": uuid.uuid4().hex, "job_id": job["id"], "dataset": job["dataset"], "row": row, "side": job["side"],
            "status": "failed", "error": error, "principles": [p.as_dict() for p in ps], "model": backend.model,
            "backend": backend.kind, "endpoint": backend.endpoint, "device": backend.device, "dtype": backend.dtype,
            "settings": settings.as_dict(), "seed": settings.seed, "tokens": None, "notes": []}


def pending(db: Database, job_id: str | None = None, limit: int = 500) -> list[dict]:
    return db.revisions(status="pending", job_id=job_id, limit=limit)
