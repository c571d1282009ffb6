"""A local transformers model: loaded once and kept, bf16 on CUDA, float32 on CPU, streamed token by token.

torch and transformers are imported only when a local model is first used. On a ZeroGPU Space each
``generate`` runs as a ``spaces.GPU`` task (``zerogpu``).
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from pathlib import Path

from ...text import first_line
from ..errors import RevisionError
from . import loaded, zerogpu
from .base import Backend, Generation, Settings, Stream

_models = loaded.MODELS
_models_lock = loaded.LOCK


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
    except (ValueError, OSError):  # an id the Hub would refuse, an unreadable cache
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
    import torch

    return isinstance(err, (MemoryError, torch.OutOfMemoryError))


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
        self.key = (model, device)  # as in _models: how a ZeroGPU task finds this model
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
            raise RevisionError(f"the chat template of {self.model} failed: {first_line(err)}") from None

    def _on_device(self, enc):
        """Tokenized inputs on the model's device (on ZeroGPU they stay here: the task moves them)."""
        return enc if zerogpu.on_zero_gpu() else enc.to(self.device)

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
        enc = self._on_device(self.tokenizer(text, return_tensors="pt", add_special_tokens=False))
        prompt_tokens = int(enc["input_ids"].shape[1])
        streamer = _TokenStreamer(self.tokenizer, TextIteratorStreamer)
        kw = self._gen_kwargs(settings, stop) | {"streamer": streamer}
        failure: list[BaseException] = []
        out = Stream(iter(()))

        def work():
            import torch

            try:
                if zerogpu.on_zero_gpu():  # a task in another process: its token ids come back as lists
                    with self.lock:
                        streamer.started = time.perf_counter()
                        for ids in zerogpu.stream_ids(self.key, _lists(enc), self._gen_kwargs(settings, None),
                                                      settings.seed):
                            streamer.put(torch.tensor(ids))
                            if stop is not None and stop.is_set():
                                break
                    streamer.end()
                    return
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
        return f"generation failed on {self.device}: {first_line(err)}"

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
            enc = self._on_device(tok(texts, return_tensors="pt", padding=True, add_special_tokens=False))
        finally:
            tok.padding_side = old_side
        clock = _Clock()
        kw = self._gen_kwargs(settings, stop) | {"streamer": clock}
        started = time.perf_counter()
        try:
            if zerogpu.on_zero_gpu():  # a task in another process: plain values in and out
                with self.lock:
                    out = torch.tensor(zerogpu.generate_ids(self.key, _lists(enc), self._gen_kwargs(settings, None),
                                                            settings.seed))
            else:
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


def _lists(enc) -> dict[str, list]:
    """A tokenizer's tensors as plain lists (what crosses to a ZeroGPU task)."""
    return {k: v.tolist() for k, v in enc.items()}


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


