"""The embedding step of the job system (components/jobs/step.py): one Arrow batch of records in,
one L2-normalized vector per row out; the server keeps them in the ``embeddings`` table.

The step holds settings only (model, its revision, the field); the model is loaded on first use,
once per process or Ray actor, so the same object runs here, over an endpoint or on Ray.
"""

from __future__ import annotations

from dataclasses import dataclass, field as dataclass_field

import pyarrow as pa

from ..text import first_line, sql_literal, utc_now
from .encoder import MAX_LENGTH, encode, load_model, model_revision
from .errors import SemanticError

FIELDS = ("prompt", "chosen", "rejected", "text")
"""What a vector can be made of: a side's messages (their contents joined) or a document's text."""
RESULT_SCHEMA = pa.schema([("row", pa.int64()), ("error", pa.string()), ("vector", pa.list_(pa.float32()))])


def field_text(value) -> str:
    """The text of one record field as embedded: a document's text, or a side's message contents
    joined by blank lines.

    >>> field_text([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yes?"}])
    'Hi\\n\\nYes?'
    >>> field_text(None), field_text("A note.")
    ('', 'A note.')
    """
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return "\n\n".join(m.get("content") or "" for m in value if m and m.get("content"))


def default_field(kind: str) -> str:
    """The field embedded when none is named: the text of a documents dataset, else the prompt."""
    return "text" if kind == "documents" else "prompt"


@dataclass
class EmbedStep:
    """Embeds ``field`` of each row with ``model`` (a sentence-transformers model or a plain
    transformers encoder, mean-pooled); ``revision`` is resolved from the model when not given."""

    model: str
    field: str = "prompt"
    revision: str = ""
    batch_size: int = 32
    max_length: int = MAX_LENGTH
    device: str | None = None
    kind: str = "embed"
    _encoder: object = dataclass_field(default=None, repr=False, compare=False)

    def __post_init__(self):
        if self.field not in FIELDS:
            raise SemanticError(f"cannot embed {self.field!r}: pick one of {', '.join(FIELDS)}")
        self.revision = self.revision or model_revision(self.model)

    def __getstate__(self):  # the loaded model never travels (Ray pickles the step)
        state = dict(self.__dict__)
        state["_encoder"] = None
        return state

    def identity(self) -> dict:
        return {"model": self.model, "model_revision": self.revision, "field": self.field}

    def columns(self) -> list[str]:
        return [self.field]

    def load(self) -> None:
        if self._encoder is None:
            self._encoder = load_model(self.model, self.revision, self.device, self.max_length)

    def __call__(self, batch: pa.Table) -> pa.Table:
        rows = [int(r) for r in batch.column("row").to_pylist()]
        texts = [field_text(v) for v in batch.column(self.field).to_pylist()]
        errors: list[str | None] = [None if t.strip() else f"the {self.field} is empty" for t in texts]
        vectors: list[list[float] | None] = [None] * len(rows)
        todo = [i for i, e in enumerate(errors) if e is None]
        if todo:
            try:
                self.load()
                got = encode(self._encoder, [texts[i] for i in todo], self.batch_size)
            except Exception as err:  # the whole batch failed: each row says why, the job goes on
                message = first_line(err)
                errors = [e or message for e in errors]
            else:
                for i, v in zip(todo, got):
                    vectors[i] = v
        return pa.table({
            "row": pa.array(rows, pa.int64()), "error": pa.array(errors, pa.string()),
            "vector": pa.array([None if v is None else list(map(float, v)) for v in vectors], pa.list_(pa.float32())),
        }, schema=RESULT_SCHEMA)

    def done_rows(self, db, dataset: str, version: int) -> str:
        return (f"SELECT row FROM embeddings WHERE dataset = {sql_literal(dataset)} AND dataset_version = {int(version)} "
                f"AND field = {sql_literal(self.field)} AND model = {sql_literal(self.model)} "
                f"AND model_revision = {sql_literal(self.revision)}")

    def write(self, db, job_id: str, started_by: str, dataset: str, version: int, results: pa.Table) -> int:
        import pyarrow.compute as pc

        good = results.filter(pc.and_(pc.is_null(results["error"]), pc.is_valid(results["vector"])))
        if good.num_rows == 0:
            return 0
        batch = pa.table({"row": good["row"], "vector": good["vector"]})

        def run(cur):
            cur.register("embedded_batch", batch)
            try:
                cur.execute(
                    """INSERT OR REPLACE INTO embeddings
                       SELECT ?, ?, row, ?, ?, ?, vector, ?, ?, ? FROM embedded_batch""",
                    [dataset, int(version), self.field, self.model, self.revision, job_id, started_by, utc_now()])
            finally:
                cur.unregister("embedded_batch")
            return good.num_rows

        return db.write(run)
