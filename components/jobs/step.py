"""The step interface: what the job runner asks of a model step.

A step is a small picklable object holding settings only; its model is loaded lazily, once per
process or Ray actor (``load``), so the same object runs in the web process, over an endpoint or in a
Ray Data ``map_batches`` actor pool. ``__call__`` turns one Arrow batch of records into one batch of
results and never touches the database (it may run on another machine); the server reads what is
done already (``done_rows``) and writes each batch of results (``write``).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import pyarrow as pa

KINDS = ("score", "judge", "embed", "revise")


@runtime_checkable
class Step(Protocol):
    kind: str  # "score" | "judge" | "embed" | "revise"

    def identity(self) -> dict:
        """JSON settings that key the job (model, revision, field...)."""
        ...

    def columns(self) -> list[str]:
        """The record columns the step reads, besides "row"."""
        ...

    def load(self) -> None:
        """Load the model and tokenizer once (idempotent)."""
        ...

    def __call__(self, batch: pa.Table) -> pa.Table:
        """In: the "row" column and columns(). Out: "row", "error" (string, null when fine) and the
        step's result columns, one row per input row. Must not touch the database."""
        ...

    def done_rows(self, db, dataset: str, version: int) -> set[int] | str:
        """The rows already done for this identity (a set, or a SQL query of one column "row")."""
        ...

    def write(self, db, job_id: str, started_by: str, dataset: str, version: int, results: pa.Table) -> int:
        """Write one batch of results (rows without an error) in one short db.write transaction;
        return the number of rows written."""
        ...


def error_table(rows, error: str, schema: pa.Schema | None = None) -> pa.Table:
    """A result batch in which every row failed with ``error`` (the step's other columns null)."""
    rows = [int(r) for r in rows]
    columns = {"row": pa.array(rows, pa.int64()), "error": pa.array([error] * len(rows), pa.string())}
    if schema is not None:
        for field in schema:
            if field.name not in columns:
                columns[field.name] = pa.nulls(len(rows), field.type)
    return pa.table(columns)


def ok_rows(results: pa.Table) -> pa.Table:
    """The rows of a result batch without an error."""
    import pyarrow.compute as pc

    if "error" not in results.column_names:
        return results
    return results.filter(pc.is_null(results["error"]))


class JobError(Exception):
    """A job that cannot start or run; its message is one line for the person who started it."""


def run_step(step: Step, batch: pa.Table) -> pa.Table:
    """The step on one batch; a step that raises fails each row of the batch with its message."""
    try:
        return step(batch)
    except (KeyboardInterrupt, MemoryError):
        raise
    except Exception as err:
        return error_table(batch["row"].to_pylist(), f"{type(err).__name__}: {err}"[:500])
