"""One revision: critique the final turn, then rewrite it, streamed as updates for the page.

The last update carries the revision record (the columns of the ``revisions`` table), which
``results.accept`` stores as a pair and ``jobs`` stores for review.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Iterator

from ..store import Database
from .backends import Backend, Generation, Settings
from .library import Principle, resolve_principles
from .prompts import Critique, Source, conversation, critique_messages, fit_context, parse_critique, revision_messages

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
                  stop: threading.Event | None = None, persona: dict | None = None) -> Iterator[Update]:
    """Critique then revise ``source``'s final turn, yielding an Update per chunk of text.

    ``persona`` ({name, version, system_message}, e.g. ``personas.Persona.provenance()``) conditions the
    critique and the revision on that person; the accepted pair's prompt then starts with its system message.

    The last update carries ``result``: everything ``accept`` stores. Setting ``stop`` ends the
    generation early (``phase == "stopped"``); whatever was written so far is kept.
    """
    settings = settings.checked()
    stop = stop or threading.Event()
    started = time.perf_counter()
    prompt, notes = fit_context(source.prompt, source.final, ps, backend.count, backend.context_length(settings),
                                settings.max_new_tokens, persona)
    critique_text = ""
    yield Update("critique", notes=notes)
    s = backend.stream(critique_messages(prompt, source.final, ps, persona), settings, stop)
    for piece in s:
        critique_text += piece
        yield Update("critique", critique_text, "", s.tokens, notes)
    crit_gen = s.result
    critique = parse_critique(critique_text, [p.id for p in ps])
    rev_gen = None
    revision_text = ""
    if crit_gen.finish != "stopped":
        s = backend.stream(revision_messages(prompt, source.final, ps, critique_text, persona), settings, stop)
        for piece in s:
            revision_text += piece
            yield Update("revision", critique_text, revision_text, crit_gen.tokens + s.tokens, notes)
        rev_gen = s.result
    stopped = crit_gen.finish == "stopped" or (rev_gen is not None and rev_gen.finish == "stopped")
    if stopped:
        notes = notes + ["stopped by the user" + (" during the critique" if rev_gen is None else " during the revision")]
    result = build_result(source, ps, backend, settings, critique, revision_text.strip(), crit_gen, rev_gen,
                          time.perf_counter() - started, notes, persona=persona)
    yield Update("stopped" if stopped else "done", critique_text, revision_text, result["tokens"]["total"], notes,
                 result)


def build_result(source: Source, ps: list[Principle], backend: Backend, settings: Settings, critique: Critique,
                 revision: str, crit_gen: Generation, rev_gen: Generation | None, latency: float,
                 notes: list[str], job_id: str | None = None, seed: int | None = None,
                 persona: dict | None = None) -> dict:
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
        "persona": dict(persona) if persona else None,
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
               stop: threading.Event | None = None, persona: dict | None = None) -> dict:
    """Run ``revise_stream`` to the end and return the revision record (not stored)."""
    source = conversation(db, dataset, row, side)
    ps = resolve_principles(db, principles_spec)
    last = None
    for last in revise_stream(source, ps, backend, settings or Settings(), stop, persona):
        pass
    return last.result

