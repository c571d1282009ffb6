"""Text encoders: any sentence-transformers model, or a plain transformers encoder (which
sentence-transformers wraps with mean pooling), giving L2-normalized float32 vectors.

A model is named as the user names it: a local folder or a Hugging Face Hub id (read from the local
cache; nothing is downloaded when ``HF_HUB_OFFLINE`` is set). Its revision -- the Hub commit, or a
hash of a local folder's weights files -- is kept with every vector, so that vectors of two versions
of a model are never mixed. Loaded models are kept once per process.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import numpy as np

from .errors import SemanticError

WEIGHTS = (".safetensors", ".bin", ".pt", ".onnx", ".h5", ".msgpack")
MAX_LENGTH = 256
"""Tokens of a text that are embedded (longer texts are cut: a sentence encoder's usual window)."""

_MODELS: dict[tuple[str, str, str], object] = {}
_LOCK = threading.Lock()
_REVISIONS: dict[tuple, str] = {}


def _weights_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in WEIGHTS)


def model_revision(model: str) -> str:
    """The revision of ``model``: ``local-`` and the first 16 hex digits of a SHA-256 over its
    weights files (names and bytes) for a local folder, else the Hub commit of its cached snapshot.
    Raises SemanticError when the model is neither."""
    folder = Path(model).expanduser()
    if folder.is_dir():
        files = _weights_files(folder)
        if not files:
            raise SemanticError(f"{model} holds no model weights (.safetensors or .bin files)")
        key = tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files)
        if key not in _REVISIONS:
            digest = hashlib.sha256()
            for p in files:
                digest.update(str(p.relative_to(folder)).encode() + b"\0")
                with open(p, "rb") as fh:
                    for block in iter(lambda: fh.read(1 << 20), b""):
                        digest.update(block)
            _REVISIONS[key] = "local-" + digest.hexdigest()[:16]
        return _REVISIONS[key]
    if os.path.sep in model.strip("/").replace("/", "", 1) or model.startswith((".", "~")):
        raise SemanticError(f"no model folder {model}")
    try:
        from huggingface_hub import snapshot_download

        path = snapshot_download(model, local_files_only=True)
    except Exception as err:  # not cached here, or not a Hub id at all
        raise SemanticError(f"model {model!r} is neither a folder nor a Hub model in the local cache "
                            f"({type(err).__name__})") from None
    return Path(path).name


def _device(device: str | None) -> str:
    if device:
        return device
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:  # pragma: no cover - torch is a requirement
        return "cpu"


def load_model(model: str, revision: str | None = None, device: str | None = None, max_length: int = MAX_LENGTH):
    """The sentence-transformers model for ``model`` (loaded once per process and device)."""
    revision = revision or model_revision(model)
    device = _device(device)
    key = (model, revision, device)
    with _LOCK:
        loaded = _MODELS.get(key)
        if loaded is None:
            from sentence_transformers import SentenceTransformer

            try:
                loaded = SentenceTransformer(str(Path(model).expanduser()) if Path(model).expanduser().is_dir()
                                             else model, device=device, local_files_only=True)
            except Exception as err:
                raise SemanticError(f"cannot load {model} as a text encoder: {str(err).splitlines()[0][:200]}") from None
            loaded.max_seq_length = min(max_length, loaded.max_seq_length or max_length)
            if len(_MODELS) >= 4:
                _MODELS.pop(next(iter(_MODELS)))
            _MODELS[key] = loaded
    return loaded


def encode(model, texts: list[str], batch_size: int = 32) -> np.ndarray:
    """L2-normalized float32 vectors of ``texts`` (one row each) from a loaded model."""
    if not texts:
        dim = model.get_embedding_dimension() if hasattr(model, "get_embedding_dimension") \
            else model.get_sentence_embedding_dimension()
        return np.zeros((0, dim or 0), np.float32)
    vectors = model.encode(list(texts), batch_size=batch_size, normalize_embeddings=True,
                           convert_to_numpy=True, show_progress_bar=False)
    return np.ascontiguousarray(vectors, dtype=np.float32)


def encode_query(model: str, revision: str, text: str) -> np.ndarray:
    """The vector of one query text with ``model`` at ``revision`` (the revision the stored vectors
    have: a model changed on disk since is refused)."""
    now = model_revision(model)
    if now != revision:
        raise SemanticError(f"{model} has changed since the vectors were made (revision {revision}, now {now}): "
                            f"embed the dataset again")
    return encode(load_model(model, revision), [text])[0]
