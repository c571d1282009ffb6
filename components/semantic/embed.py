"""Embedding a dataset: the embedding step (step.py) run as a job of the job system
(components/jobs/runner.py), in this process or on a Ray cluster, resumable and cancellable."""

from __future__ import annotations

from ..store import Database
from .errors import SemanticError
from .step import FIELDS, EmbedStep, default_field
from .. import catalogue


def embed_step(db: Database, dataset: str, model: str, field: str | None = None, batch_size: int = 32,
               device: str | None = None) -> EmbedStep:
    """The step that embeds ``field`` of ``dataset`` (default: a document's text, else the prompt)
    with ``model``; a field the dataset's kind has not is refused in one line."""
    info = catalogue.dataset(db, dataset)
    if info is None:
        raise SemanticError(f"no dataset named {str(dataset)[:100]!r}")
    field = field or default_field(info.kind)
    if field not in FIELDS:
        raise SemanticError(f"cannot embed {field!r}: pick one of {', '.join(FIELDS)}")
    if info.kind == "documents" and field != "text":
        raise SemanticError(f"{dataset} holds documents: embed their text (--field text)")
    if info.kind != "documents" and field == "text":
        raise SemanticError(f"{dataset} holds {info.kind}: embed the prompt, chosen or rejected field")
    return EmbedStep(model=model, field=field, batch_size=batch_size, device=device)


def embed_dataset(db: Database, dataset: str, model: str, *, field: str | None = None, started_by: str,
                  rows=None, batch_size: int = 32, where: str = "process", workers: int = 1,
                  num_gpus: float | None = None, on_progress=None, cancel=None):
    """Embed the rows of ``dataset`` that have no vector yet for this model, revision and field, as a
    job (``jobs.runner.run``); returns its JobResult."""
    from ..jobs.runner import run

    step = embed_step(db, dataset, model, field, batch_size)
    return run(db, step, dataset, rows=rows, started_by=started_by, batch_size=batch_size, where=where,
               workers=workers, num_gpus=num_gpus, on_progress=on_progress, cancel=cancel)
