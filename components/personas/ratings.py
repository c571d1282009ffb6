"""The persona judge's per-side ratings: each reply of a pair rated 1-10, UltraFeedback-style, by a
model role-playing a persona, against chosen principles or the persona's own needs.

The judge of ``judge.py`` gives a verdict; here the same judge (the persona as who it is, the same
backends, local or over an endpoint) sees the conversation and one reply at a time, so the order of
the two replies cannot favour either, and answers ``Rating: N``. The two ratings of a pair are
stored as scores in ``pair_scores`` (kind ``judge``) under a model key that names persona, model and
principles (``sim-PERSONA@MODEL`` or ``sim-PERSONA@MODEL:P1+P2``), with a revision that hashes
everything the ratings depend on (persona version, principles, prompt, model, settings); queues,
suggestions and ``export --with-scores`` read them as they read a reward model's. An answer that
names no rating makes its pair unrated and counted: no rating is ever guessed.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from ..store import Database
from .judge import JUDGE_SYSTEM, _text, annotator_name
from .library import Persona
from .. import catalogue

RATING_FORMAT = (
    "On a scale from 1 (worst) to 10 (best), how would you, as this person, rate this reply{against}? "
    "Answer on the first line with exactly:\nRating: N\nwhere N is a whole number from 1 to 10. "
    "Then one sentence on why."
)


def ratings_model(persona: str, model: str, principles: list[str] | tuple[str, ...] = ()) -> str:
    """The model key the ratings are stored under in pair_scores.

    >>> ratings_model("rural-farmer", "Qwen/Qwen2.5-0.5B-Instruct", ["honest", "concise"])
    'sim-rural-farmer@Qwen2.5-0.5B-Instruct:honest+concise'
    >>> ratings_model("rural-farmer", "/models/judge/")
    'sim-rural-farmer@judge'
    """
    key = annotator_name(persona, model)
    return key + (":" + "+".join(principles) if principles else "")


def rating_messages(persona: Persona, prompt: list[dict], reply: list[dict], principles=()) -> list[dict]:
    """The chat that asks the persona to rate one reply, against ``principles`` when there are any."""
    from ..revise import render_transcript

    turns = [{"role": str(m.get("role") or "user"), "content": str(m.get("content") or "")} for m in prompt or []]
    rules = ""
    if principles:
        rules = "Principles to rate it against:\n" + "\n".join(f"- {p.title}: {p.text}" for p in principles) + "\n\n"
    against = " against these principles" if principles else ""
    body = (f"Here is a conversation and a possible reply from an assistant.\n\n"
            f"Conversation:\n{render_transcript(turns) if turns else '(no earlier turns)'}\n\n"
            f"Reply:\n{_text(reply)}\n\n{rules}{RATING_FORMAT.format(against=against)}")
    return [{"role": "system", "content": JUDGE_SYSTEM.format(name=persona.name, profile=persona.profile())},
            {"role": "user", "content": body}]


_RATING = re.compile(r"\b(?:rating|score)\s*[:=\-]?\s*\**\s*(\d{1,3})(?![.,]\d)(?:\s*(?:/|out\s+of)\s*(\d+))?", re.I)
_BARE = re.compile(r"\W*(\d{1,3})\s*(?:(?:/|out\s+of)\s*(\d+))?\s*[.!]?\s*", re.I)
"""A first line that is the number alone: "8", "8/10", "8 out of 10."."""


def parse_rating(text) -> int | None:
    """A whole rating from 1 to 10 from a judge's answer; None when it cannot be read (never raises).

    Read: ``Rating: N`` (or ``Score: N``, ``N/10``, bold), else a first line that is the number alone.
    Not read: no number, a number out of 1-10, a fraction (7.5), a scale other than 10, or two
    different ratings in one answer.

    >>> [parse_rating(t) for t in ("Rating: 8\\nClear and kind.", "**Rating:** 10/10", "7", "Score = 3 out of 10")]
    [8, 10, 7, 3]
    >>> [parse_rating(t) for t in ("Rating: 11", "Rating: 0", "Rating: 7.5", "Rating: 4/5", "Rating: 3, or rating: 9",
    ...                             "1. It is clear", "qzx 8 qzx", None)]
    [None, None, None, None, None, None, None, None]
    >>> parse_rating("Rating: 6. My rating: 6 because it is kind")
    6
    """
    if not isinstance(text, str):
        return None
    found = _RATING.findall(text)
    if not found:
        first = text.strip().split("\n", 1)[0] if text.strip() else ""
        m = _BARE.fullmatch(first)
        if not m:
            return None
        found = [m.groups(default="")]
    values = set()
    for number, scale in found:
        if scale and scale != "10":
            return None
        values.add(int(number))
    if len(values) != 1:
        return None
    value = values.pop()
    return value if 1 <= value <= 10 else None


def ratings_revision(backend, persona: Persona, principles, settings) -> str:
    """A hash of what the ratings depend on: the model (a local folder's config and weights, else its
    name and endpoint), the persona's version and profile, the principles, the prompt and the settings."""
    h = hashlib.sha256()
    where = Path(str(backend.model)).expanduser()
    if backend.endpoint is None and where.is_dir():
        from ..scores.reward import model_revision

        h.update(model_revision(str(where)).encode())
    else:
        h.update(f"{backend.model}\x00{backend.endpoint or ''}".encode())
    h.update(json.dumps({
        "persona": persona.name, "version": persona.version, "profile": persona.profile(),
        "principles": [p.as_dict() for p in principles], "system": JUDGE_SYSTEM, "format": RATING_FORMAT,
        "settings": {"max_new_tokens": settings.max_new_tokens, "temperature": settings.temperature,
                     "top_p": settings.top_p, "seed": settings.seed},
    }, sort_keys=True).encode())
    return "judge:" + h.hexdigest()[:16]


@dataclass
class RatingSummary:
    dataset: str
    persona: str
    persona_version: int
    model_key: str  # the model column of pair_scores
    revision: str
    model: str
    backend: str
    principles: list
    rows: int  # pairs asked for
    rated: int = 0  # pairs with both ratings stored
    unparseable: int = 0  # pairs with an answer that named no rating: nothing stored
    already: int = 0  # pairs this judge had rated before (left as they are)
    too_long: int = 0  # pairs with a side that does not fit the model's context
    unparseable_rows: list = field(default_factory=list)
    mean_chosen: float | None = None
    mean_rejected: float | None = None
    seconds: float = 0.0
    stopped: bool = False

    def as_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        text = (f"{self.dataset}: {self.rated} of {self.rows} pairs rated 1-10 as {self.persona} "
                f"(v{self.persona_version}) by {self.model}, stored as scores of {self.model_key}")
        if self.rated:
            text += f" · mean chosen {self.mean_chosen:.2f}, rejected {self.mean_rejected:.2f}"
        for n, what in ((self.unparseable, "unparseable answers (pairs left unrated)"),
                        (self.already, "already rated by this judge"), (self.too_long, "too long for the model")):
            if n:
                text += f" · {n} {what}"
        return text + f" · {self.seconds:.1f} s" + (" · stopped" if self.stopped else "")


def rate_pairs(db: Database, dataset: str, persona: Persona, backend, settings=None, principles=(), rows=None,
               limit: int | None = None, scored_by: str | None = None, stop: threading.Event | None = None,
               progress: Callable[[int, int], None] | None = None) -> RatingSummary:
    """Rate both replies of pairs of ``dataset`` 1-10 as ``persona`` with ``backend``; store the ratings.

    ``principles`` (``revise.Principle``s) to rate against; none: the persona's own needs. ``rows``
    ("0-9", a list) or the first ``limit`` pairs. Pairs this judge (same model key and revision) rated
    before are left as they are. Raises ``labels.LabelError`` for a dataset without pairs and
    ``revise.RevisionError`` for a model that cannot run.
    """
    import pyarrow as pa

    from .. import labels, revise
    from ..scores.store import write_scores

    started = time.perf_counter()
    info = labels.check_pairs(db, dataset)
    settings = (settings or revise.Settings(max_new_tokens=16, temperature=0.0)).checked()
    principles = list(principles or ())
    chosen_rows = revise.select_rows(db, info.name, rows, None, limit)
    key = ratings_model(persona.name, backend.model, [p.id for p in principles])
    revision = ratings_revision(backend, persona, principles, settings)
    out = RatingSummary(info.name, persona.name, persona.version, key, revision, backend.model, backend.kind,
                        [p.id for p in principles], len(chosen_rows))
    done = {r[0] for r in db.rows(
        "SELECT row FROM pair_scores WHERE dataset = ? AND dataset_version = ? AND model = ? AND model_revision = ?",
        [info.name, info.version, key, revision])}
    todo = [r for r in chosen_rows if r not in done]
    out.already = len(chosen_rows) - len(todo)
    stop = stop or threading.Event()
    context = backend.context_length(settings)
    size = max(1, backend.batch_size(settings) // 2)  # two answers a pair
    report = progress or (lambda d, t: None)
    sums = [0, 0]
    for start in range(0, len(todo), size):
        if stop.is_set():
            out.stopped = True
            break
        chunk, asks = [], []
        for rec in catalogue.rows_of(db, info.name, todo[start:start + size]):
            pair = [rating_messages(persona, rec["prompt"], rec[side], principles) for side in ("chosen", "rejected")]
            if context and max(backend.count(m) for m in pair) + settings.max_new_tokens > context:
                out.too_long += 1
                continue
            chunk.append(rec["row"])
            asks += pair
        gens = backend.generate_batch(asks, settings, stop) if asks else []
        if stop.is_set():
            out.stopped = True
            break
        got = {"row": [], "score_chosen": [], "score_rejected": []}
        for n, row in enumerate(chunk):
            a, b = parse_rating(gens[2 * n].text), parse_rating(gens[2 * n + 1].text)
            if a is None or b is None:
                out.unparseable += 1
                out.unparseable_rows.append(row)
                continue
            got["row"].append(row)
            got["score_chosen"].append(float(a))
            got["score_rejected"].append(float(b))
            sums[0] += a
            sums[1] += b
        if got["row"]:
            out.rated += write_scores(db, pa.table(got), dataset=info.name, version=info.version, model=key,
                                      revision=revision, kind="judge", job=None, scored_by=scored_by)
        report(min(start + size, len(todo)), len(todo))
    if out.rated:
        out.mean_chosen, out.mean_rejected = round(sums[0] / out.rated, 3), round(sums[1] / out.rated, 3)
    out.seconds = round(time.perf_counter() - started, 3)
    return out
