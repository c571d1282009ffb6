"""Principle-guided revision of a conversation's final assistant turn (SDSD, Direct Principle Feedback).

A model reads the conversation and a set of written principles, writes a critique of the final
assistant turn naming the principles it breaks (or none), then rewrites that turn. The revision
and the original final turn become a new preference pair (prompt = the conversation before the
final turn, chosen = the revision, rejected = the original), stored with full provenance.

The pieces, each usable on its own:

* ``library`` -- the principles: ``data/principles.json`` copied into the database once, where users
  edit them (every version kept); templates such as the "pink elephant" have slots to fill;
* ``prompts`` -- the conversation under review, ``critique_messages`` / ``revision_messages``, the
  context policy ``fit_context``, and ``parse_critique`` (never raises; the raw text is kept);
* ``backends`` -- ``LocalBackend`` (transformers, loaded once and kept; CUDA in bf16 when present,
  else CPU in float32; streams token by token; batches many conversations per forward pass) and
  ``EndpointBackend`` (any OpenAI-compatible server through the ``openai`` client);
* ``revision`` -- ``revise_stream``: one conversation, critique then revision, as a stream of updates;
* ``results`` -- ``accept`` a revision (possibly edited) as a pair of ``NAME-revisions``, ``reject``,
  ``pending``;
* ``jobs`` -- ``start_job`` / ``run_job``: many conversations, resumable, results pending review;
* ``models`` -- the models the page may run (admins add and remove them) and ``choose``, the rule of
  who may run what.

Any of these may be conditioned on a persona (``personas.Persona.provenance()``: name, version,
system message): the critique and the revision are written for that person, and the accepted pair's
prompt starts with the persona's system message, with the persona and its version in the provenance.

torch and transformers are imported only when a local model is used, ``openai`` only when an
endpoint is.
"""

from __future__ import annotations

from .backends import Backend, Generation, Settings, Stream, make_backend
from .backends.local import LocalBackend, cuda_available, loaded_models, local_backend
from .errors import RevisionError
from .jobs import (
    JobProgress, backend_for_job, get_job, job_principles, job_settings, list_jobs, parse_rows, run_job, search_rows,
    select_rows, start_batch, start_job,
)
from .models import (
    ModelEntry, add_model, check_listed, choose, default_model, ensure_models, get_model, model_history, models,
    parse_spec, remove_model,
)
from .library import (
    PRINCIPLES_FILE, Principle, check_principle, delete_principle, ensure_principles, load_library,
    parse_principle_specs, principle_history, principle_row, principles, resolve_principles, save_principle,
    seed_principles,
)
from .prompts import (
    SIDES, Critique, Source, conversation, critique_messages, fit_context, parse_critique, render_persona,
    render_principles, render_transcript, revision_messages,
)
from .results import (
    accept, default_into, get_revision, pair_of, pending, reject, revisions, target_name, with_system,
)
from .revision import Update, build_result, revise_one, revise_stream


def __getattr__(name: str):
    """``EndpointBackend`` on first use (it imports ``openai``)."""
    if name == "EndpointBackend":
        from .backends.endpoint import EndpointBackend

        return EndpointBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
