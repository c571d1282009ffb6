"""What the model reads: the conversation under review, the critique and revision prompts, the context
policy, and the reading of a critique's ``Violations:`` line (which never raises)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Iterable

from ..store import Database
from .errors import RevisionError
from .library import Principle
from .. import catalogue

SIDES = ("chosen", "rejected")


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
    info = catalogue.dataset_of(db, dataset, RevisionError, ("pairs", "conversations"), "nothing to revise")
    if side not in SIDES:
        raise RevisionError(f"side must be chosen or rejected, not {side!r}")
    if side == "rejected" and info.kind != "pairs":
        raise RevisionError(f"{dataset} holds {info.kind}: only its conversation (side chosen) can be revised")
    rec = catalogue.record(db, dataset, int(row))
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


PERSONA_CRITIQUE = " Judge it also by how well it serves the person described: what they value and prefer."
PERSONA_REVISION = " The new turn must also suit the person described: what they value and prefer."


def render_persona(persona: dict | None) -> str:
    """The block that conditions a critique or revision on a persona (its system message), or ''."""
    if not persona:
        return ""
    return f"The person the assistant is talking with (its system message):\n{persona['system_message']}\n\n"


def critique_messages(prompt: list[dict], final: dict, ps: list[Principle], persona: dict | None = None) -> list[dict]:
    """The chat that asks for a critique of ``final`` (the last assistant turn) after ``prompt``;
    with ``persona`` ({name, version, system_message}), judged for that person too."""
    body = (
        f"{render_persona(persona)}"
        f"Principles:\n{render_principles(ps)}\n\n"
        f"Conversation:\n{render_transcript(prompt) if prompt else '(no earlier turns)'}\n\n"
        f"Final assistant turn to review:\n{final['content']}\n\n"
        f"{CRITIQUE_FORMAT}"
    )
    system = CRITIQUE_SYSTEM + (PERSONA_CRITIQUE if persona else "")
    return [{"role": "system", "content": system}, {"role": "user", "content": body}]


def revision_messages(prompt: list[dict], final: dict, ps: list[Principle], critique: str,
                      persona: dict | None = None) -> list[dict]:
    """The chat that asks for the rewritten final turn, given the critique (and the persona it is for)."""
    body = (
        f"{render_persona(persona)}"
        f"Principles:\n{render_principles(ps)}\n\n"
        f"Conversation:\n{render_transcript(prompt) if prompt else '(no earlier turns)'}\n\n"
        f"Final assistant turn:\n{final['content']}\n\n"
        f"Critique of that turn:\n{critique.strip() or '(none given)'}\n\n"
        "Write the final assistant turn again so that it follows every principle above"
        + (" and suits the person described" if persona else "") + ". "
        "If it already does, return it unchanged. Reply with the new turn only, with no preamble."
    )
    system = REVISION_SYSTEM + (PERSONA_REVISION if persona else "")
    return [{"role": "system", "content": system}, {"role": "user", "content": body}]


def fit_context(prompt: list[dict], final: dict, ps: list[Principle], count: Callable[[list[dict]], int],
                context: int | None, max_new_tokens: int, persona: dict | None = None) -> tuple[list[dict], list[str]]:
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
        return count(revision_messages(p, final, ps, "", persona)) + max_new_tokens

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
