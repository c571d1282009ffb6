"""The reward-model step: any ``AutoModelForSequenceClassification`` with one output scores the chosen
and the rejected conversation of every pair (the prompt and the response through the model's chat
template).

Each batch of pairs is one forward pass: its 2 x N conversations sorted by length and padded on the
right, with the attention mask, so the score is read at each conversation's last real token and
padding changes nothing. CPU runs in float32, a GPU in bfloat16. The step holds settings only and
loads the model once per process or Ray actor.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from ..text import sql_literal
from .store import write_scores

HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
WEIGHTS = ("*.safetensors", "*.bin", "*.pt", "*.pth")


class ScoreError(Exception):
    """A model or request that cannot be scored with; one line."""


def model_revision(model: str) -> str:
    """The revision that keys a model's scores: a hash of a local folder's config and weights files,
    or the commit of a Hub model (its cached snapshot)."""
    path = Path(model).expanduser()
    if path.is_dir():
        files = sorted(p for pattern in ("config.json", *WEIGHTS) for p in path.glob(pattern))
        if not any(p.name != "config.json" for p in files):
            raise ScoreError(f"{model}: no weights files (*.safetensors, *.bin) in that folder")
        h = hashlib.sha256()
        for p in files:
            h.update(p.name.encode())
            with open(p, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 22), b""):
                    h.update(chunk)
        return "sha256:" + h.hexdigest()[:16]
    if not HUB_ID.fullmatch(model):
        raise ScoreError(f"no model folder at {model!r}, and it is not a Hub id (owner/name)")
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(model, allow_patterns=["config.json"])).name
    except Exception as err:
        raise ScoreError(f"{model}: cannot reach it on the Hub nor in the local cache ({type(err).__name__})") from None


def pick_device(device: str | None = None) -> str:
    if device:
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@dataclass
class RewardStep:
    model: str
    revision: str
    device: str | None = None        # None: cuda when there is one, else cpu
    max_length: int | None = None    # None: the model's own limit
    kind: str = "score"
    _loaded: dict = field(default_factory=dict, repr=False, compare=False)

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_loaded"] = {}  # the model stays behind: a Ray actor loads its own
        return state

    def identity(self) -> dict:
        return {"step": "reward", "model": self.model, "model_revision": self.revision}

    def columns(self) -> list[str]:
        return ["prompt", "chosen", "rejected"]

    def load(self) -> None:
        if self._loaded:
            return
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer, PreTrainedTokenizerFast

        device = pick_device(self.device)
        local = Path(self.model).expanduser().is_dir()
        where = str(Path(self.model).expanduser()) if local else self.model
        dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
        try:
            if local and (Path(where) / "tokenizer.json").exists():
                tok = PreTrainedTokenizerFast.from_pretrained(where)
            else:
                tok = AutoTokenizer.from_pretrained(where, local_files_only=local)
            model = AutoModelForSequenceClassification.from_pretrained(where, dtype=dtype, local_files_only=local)
        except OSError as err:
            raise ScoreError(f"cannot load {self.model}: {str(err).splitlines()[0]}") from None
        if model.config.num_labels != 1:
            raise ScoreError(f"{self.model} has {model.config.num_labels} outputs: a reward model has one")
        if not tok.chat_template:
            raise ScoreError(f"{self.model}: its tokenizer has no chat template")
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        if pad is None:
            raise ScoreError(f"{self.model}: its tokenizer has neither a pad nor an end token")
        model.config.pad_token_id = pad
        model.to(device).eval()
        limit = self.max_length or min(int(getattr(model.config, "max_position_embeddings", 0) or 10**6),
                                       int(tok.model_max_length if tok.model_max_length < 10**8 else 10**6))
        self._loaded.update(tokenizer=tok, model=model, device=device, pad=pad, limit=limit, torch=torch)

    def tokens(self, messages: list[dict]) -> list[int]:
        """The ids of one conversation through the chat template."""
        enc = self._loaded["tokenizer"].apply_chat_template(messages, tokenize=True, return_dict=True)
        return list(enc["input_ids"])

    def score_ids(self, seqs: list[list[int]]) -> list[float]:
        """One forward pass over ``seqs``, sorted by length and right-padded; scores in input order."""
        torch, model, pad = self._loaded["torch"], self._loaded["model"], self._loaded["pad"]
        order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), pad, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for j, i in enumerate(order):
            ids[j, : len(seqs[i])] = torch.tensor(seqs[i], dtype=torch.long)
            mask[j, : len(seqs[i])] = 1
        device = self._loaded["device"]
        with torch.inference_mode():
            hidden = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
        # the model pools at each sequence's rightmost token that is not the pad token: with padding
        # on the right that is the conversation's own last token, padded or not
        values = hidden.float().reshape(len(seqs), -1)[:, 0].cpu().tolist()
        out = [0.0] * len(seqs)
        for j, i in enumerate(order):
            out[i] = values[j]
        return out

    def __call__(self, batch: pa.Table) -> pa.Table:
        self.load()
        rows = batch["row"].to_pylist()
        prompts, chosen, rejected = (batch[c].to_pylist() for c in ("prompt", "chosen", "rejected"))
        seqs, owners, errors = [], [], {}
        for k, row in enumerate(rows):
            sides = []
            for name, response in (("chosen", chosen[k]), ("rejected", rejected[k])):
                if not response:
                    errors[row] = f"the {name} side is empty"
                    break
                messages = [{"role": m["role"], "content": m["content"] or ""} for m in (prompts[k] or []) + response]
                try:
                    ids = self.tokens(messages)
                except Exception as err:  # a template that refuses these roles, say
                    errors[row] = f"chat template: {type(err).__name__}: {str(err)[:200]}"
                    break
                if len(ids) > self._loaded["limit"]:
                    errors[row] = f"the {name} conversation has {len(ids)} tokens, over the model's {self._loaded['limit']}"
                    break
                sides.append(ids)
            if row not in errors:
                seqs += sides
                owners.append(row)
        scores = self.score_ids(seqs) if seqs else []
        by_row = {row: (scores[2 * n], scores[2 * n + 1]) for n, row in enumerate(owners)}
        return pa.table({
            "row": pa.array(rows, pa.int64()),
            "error": pa.array([errors.get(r) for r in rows], pa.string()),
            "score_chosen": pa.array([by_row.get(r, (None, None))[0] for r in rows], pa.float64()),
            "score_rejected": pa.array([by_row.get(r, (None, None))[1] for r in rows], pa.float64()),
        })

    def done_rows(self, db, dataset: str, version: int) -> str:
        return (f"SELECT row FROM pair_scores WHERE dataset = {sql_literal(dataset)} AND dataset_version = {int(version)}"
                f" AND model = {sql_literal(self.model)} AND model_revision = {sql_literal(self.revision)}")

    def write(self, db, job_id: str, started_by: str, dataset: str, version: int, results: pa.Table) -> int:
        return write_scores(db, results, dataset=dataset, version=version, model=self.model, revision=self.revision,
                            kind="reward", job=job_id, scored_by=started_by)


def reward_step(model: str, device: str | None = None, max_length: int | None = None) -> RewardStep:
    """The step for ``model`` (a folder or a Hub id), its revision resolved here, on the server."""
    model = (model or "").strip()
    if not model:
        raise ScoreError("name a reward model: a folder or a Hub id")
    if os.environ.get("STUDIO_SCORE_DEVICE") and not device:
        device = os.environ["STUDIO_SCORE_DEVICE"]
    return RewardStep(model=model, revision=model_revision(model), device=device, max_length=max_length)
