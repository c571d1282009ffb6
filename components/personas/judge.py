"""A model that role-plays a persona and labels pairs as that person would (PERSONA's method).

The judge reads the persona's profile as who it is, the pair's conversation and its two replies (in
an order that is fixed per pair and persona, so a position bias does not always favour one side),
and answers ``Preference: A``, ``B`` or ``tie``. Its verdict becomes an ordinary label event through
``labels.add_label`` under an annotator name that says model and persona (``sim-PERSONA@MODEL``),
with the persona, its version and ``simulated: true`` in the label's options, so human and simulated
labels of the same persona compare directly. An answer that cannot be read is counted and left
unlabeled: no label is ever guessed.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

from ..store import Database
from ..text import clip
from .library import Persona
from .. import catalogue

JUDGE_SYSTEM = (
    "You are role-playing a real person. Stay in character: judge as this person would, by their values, "
    "needs and preferences, not by your own.\n\nWho you are ({name}):\n{profile}"
)
JUDGE_FORMAT = (
    "Which reply would you, as this person, prefer? Answer on the first line with exactly one of:\n"
    "Preference: A\nPreference: B\nPreference: tie\nThen one sentence on why."
)
VERDICT_LABELS = {("A", False): "chosen", ("B", False): "rejected", ("A", True): "rejected", ("B", True): "chosen",
                  ("tie", False): "tie", ("tie", True): "tie"}


def annotator_name(persona: str, model: str) -> str:
    """The annotator a judge's labels are stored under: ``sim-PERSONA@MODEL`` (at most 64 characters).

    >>> annotator_name("retired-teacher", "Qwen/Qwen2.5-0.5B-Instruct")
    'sim-retired-teacher@Qwen2.5-0.5B-Instruct'
    """
    slug = re.sub(r"[^\w.+-]+", "-", re.split(r"[/\\]", str(model).rstrip("/\\"))[-1]).strip("-") or "model"
    head = f"sim-{persona}@"
    return head + slug[:max(1, 64 - len(head))]


def swapped(dataset: str, row: int, persona: str) -> bool:
    """Whether the judge sees the rejected reply first for this pair and persona (stable, about half).

    >>> swapped("d", 3, "p") == swapped("d", 3, "p")
    True
    """
    return hashlib.sha1(f"{dataset}\x00{row}\x00{persona}".encode()).digest()[0] % 2 == 1


def _text(messages: list[dict] | None) -> str:
    from ..revise import render_transcript

    ms = [{"role": str(m.get("role") or "assistant"), "content": str(m.get("content") or "")} for m in messages or []]
    if len(ms) == 1 and ms[0]["role"] == "assistant":
        return ms[0]["content"]
    return render_transcript(ms)


def judge_messages(persona: Persona, prompt: list[dict], first: list[dict], second: list[dict]) -> list[dict]:
    """The chat that asks the persona which of two replies (A = ``first``, B = ``second``) it prefers."""
    from ..revise import render_transcript

    turns = [{"role": str(m.get("role") or "user"), "content": str(m.get("content") or "")} for m in prompt or []]
    body = (f"Here is a conversation and two possible replies from an assistant.\n\n"
            f"Conversation:\n{render_transcript(turns) if turns else '(no earlier turns)'}\n\n"
            f"Reply A:\n{_text(first)}\n\nReply B:\n{_text(second)}\n\n{JUDGE_FORMAT}")
    return [{"role": "system", "content": JUDGE_SYSTEM.format(name=persona.name, profile=persona.profile())},
            {"role": "user", "content": body}]


_VERDICT = re.compile(r"preferen\w*\s*[:\-]?\s*\**\s*(?:reply\s+|response\s+)?(a|b|tie|neither|equal\w*)\b", re.I)
_LEAD = re.compile(r"^\W*(?:[Rr]eply\s+|[Rr]esponse\s+)?(A|B|[Tt]ie)(?=[.:,;)!\n]|$)")
"""A verdict given first and closed by punctuation or the line's end: a capital A or B (a lower-case
"a" is an article; "A and B are..." is no verdict), or tie."""
_MENTION = re.compile(r"\b(?:reply|response)\s+(a|b)\b", re.I)


def parse_verdict(text) -> str | None:
    """``A``, ``B`` or ``tie`` from a judge's answer; None when it cannot be read (never raises).

    >>> [parse_verdict(t) for t in ("Preference: B\\nIt is kinder.", "**Preference:** tie", "A. Shorter.",
    ...                              "Reply B is warmer than reply B's rival", "qzx A B", None)]
    ['B', 'tie', 'A', 'B', None, None]
    """
    if not isinstance(text, str):
        return None
    m = _VERDICT.search(text)
    if m:
        v = m.group(1).lower()
        return v.upper() if v in ("a", "b") else "tie"
    m = _LEAD.match(text)
    if m:
        v = m.group(1).lower()
        return v.upper() if v in ("a", "b") else "tie"
    mentioned = {x.upper() for x in _MENTION.findall(text)}
    return mentioned.pop() if len(mentioned) == 1 else None


@dataclass
class JudgeSummary:
    dataset: str
    persona: str
    persona_version: int
    annotator: str
    model: str
    backend: str
    rows: int  # pairs asked for
    labeled: int = 0  # labels written
    unparseable: int = 0  # answers that named no verdict: left unlabeled
    already: int = 0  # pairs this judge had labeled before (left as they are)
    too_long: int = 0  # pairs that do not fit the model's context
    counts: dict = field(default_factory=dict)  # label -> n
    unparseable_rows: list = field(default_factory=list)
    seconds: float = 0.0
    stopped: bool = False

    def as_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        text = (f"{self.dataset}: {self.labeled} of {self.rows} pairs labeled as {self.persona} (v{self.persona_version}) "
                f"by {self.model}, under annotator {self.annotator}")
        if self.counts:
            text += " · " + ", ".join(f"{n} {k}" for k, n in sorted(self.counts.items()))
        for n, what in ((self.unparseable, "unparseable answers (left unlabeled)"),
                        (self.already, "already labeled by this judge"), (self.too_long, "too long for the model")):
            if n:
                text += f" · {n} {what}"
        return text + f" · {self.seconds:.1f} s" + (" · stopped" if self.stopped else "")


def judge_pairs(db: Database, dataset: str, persona: Persona, backend, settings=None, rows=None, limit: int | None = None,
          again: bool = False, stop: threading.Event | None = None,
          progress: Callable[[int, int], None] | None = None) -> JudgeSummary:
    """Label pairs of ``dataset`` as ``persona`` with ``backend`` (a ``revise`` backend, local or endpoint).

    ``rows`` ("0-9", a list) or the first ``limit`` pairs. Pairs this judge already labeled are left as
    they are unless ``again``. Raises ``labels.LabelError`` for a dataset without pairs and
    ``revise.RevisionError`` for a model that cannot run.
    """
    from .. import labels, revise

    started = time.perf_counter()
    info = labels.check_pairs(db, dataset)
    settings = (settings or revise.Settings(max_new_tokens=32, temperature=0.0)).checked()
    chosen_rows = revise.select_rows(db, info.name, rows, None, limit)
    who = annotator_name(persona.name, backend.model)
    out = JudgeSummary(info.name, persona.name, persona.version, who, backend.model, backend.kind, len(chosen_rows))
    done = {} if again else labels.labeled_rows(db, info.name, who)
    todo = [r for r in chosen_rows if r not in done]
    out.already = len(chosen_rows) - len(todo)
    stop = stop or threading.Event()
    context = backend.context_length(settings)
    size = backend.batch_size(settings)
    report = progress or (lambda d, t: None)
    for start in range(0, len(todo), size):
        if stop.is_set():
            out.stopped = True
            break
        chunk, asks = [], []
        for rec in catalogue.rows_of(db, info.name, todo[start:start + size]):
            flip = swapped(info.name, rec["row"], persona.name)
            a, b = (rec["rejected"], rec["chosen"]) if flip else (rec["chosen"], rec["rejected"])
            messages = judge_messages(persona, rec["prompt"], a, b)
            if context and backend.count(messages) + settings.max_new_tokens > context:
                out.too_long += 1
                continue
            chunk.append((rec["row"], flip))
            asks.append(messages)
        gens = backend.generate_batch(asks, settings, stop) if asks else []
        if stop.is_set():
            out.stopped = True
            break
        for (row, flip), gen in zip(chunk, gens):
            verdict = parse_verdict(gen.text)
            if verdict is None:
                out.unparseable += 1
                out.unparseable_rows.append(row)
                continue
            label = VERDICT_LABELS[(verdict, flip)]
            labels.add_label(db, info.name, row, label, who, options={
                "persona": persona.name, "persona_version": persona.version, "simulated": True,
                "judge": {"model": backend.model, "backend": backend.kind, "endpoint": backend.endpoint,
                          "order": "rejected-first" if flip else "chosen-first", "verdict": verdict,
                          "answer": clip(gen.text, 400), "seed": settings.seed,
                          "max_new_tokens": settings.max_new_tokens, "temperature": settings.temperature}})
            out.labeled += 1
            out.counts[label] = out.counts.get(label, 0) + 1
        report(min(start + size, len(todo)), len(todo))
    out.seconds = round(time.perf_counter() - started, 3)
    return out
