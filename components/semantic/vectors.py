"""The stored vectors: which datasets have them (for which field, model and revision, of which
dataset version), and reading one set of them into numpy.

A *vector set* is the vectors of one (dataset version, field, model, model revision). Searches use
a set of the dataset's current version only; a re-ingested dataset says it must be embedded again.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass

import numpy as np

from ..store import Database
from .errors import NoEmbeddings
from .. import catalogue


@dataclass(frozen=True)
class VectorSet:
    dataset: str
    dataset_version: int
    field: str
    model: str
    model_revision: str
    rows: int  # vectors in the set
    dim: int
    embedded_at: object  # the latest vector's time: the set's identity changes when it grows

    @property
    def key(self) -> tuple:
        return (self.dataset, self.dataset_version, self.field, self.model, self.model_revision, self.rows,
                str(self.embedded_at))

    def as_dict(self) -> dict:
        return asdict(self) | {"embedded_at": str(self.embedded_at)}


_SETS: dict[tuple, list[VectorSet]] = {}
_SETS_LOCK = threading.Lock()


def vector_sets(db: Database, dataset: str | None = None, current: bool = True) -> list[VectorSet]:
    """The vector sets of ``dataset`` (or of every dataset), newest first; only those of each
    dataset's current version with ``current``. Kept per database state (``db.generation``): a
    query reads them once, not the whole table each time (a million vectors: about 0.1 s)."""
    key = (str(db.path), id(db), db.generation, dataset, current)
    with _SETS_LOCK:
        found = _SETS.get(key)
    if found is not None:
        return list(found)
    found = _read_sets(db, dataset, current)
    with _SETS_LOCK:
        if len(_SETS) > 64:
            _SETS.clear()
        _SETS[key] = found
    return list(found)


def _read_sets(db: Database, dataset: str | None, current: bool) -> list[VectorSet]:
    where = "WHERE e.dataset = ?" if dataset else ""
    version = "AND e.dataset_version = d.version" if current else ""
    got = db.rows(
        f"""SELECT e.dataset, e.dataset_version, e.field, e.model, e.model_revision, count(*),
                   max(len(e.vector)), max(e.embedded_at)
            FROM embeddings e JOIN datasets d ON d.name = e.dataset {version}
            {where}
            GROUP BY ALL ORDER BY e.dataset, max(e.embedded_at) DESC""",
        [dataset] if dataset else [])
    return [VectorSet(*r) for r in got]


def datasets_with_embeddings(db: Database) -> list[str]:
    """The datasets that have vectors for their current version (what a page offers semantic search for)."""
    return sorted({s.dataset for s in vector_sets(db)})


def has_embeddings(db: Database, dataset: str) -> bool:
    return bool(vector_sets(db, dataset))


def current_set(db: Database, dataset: str, model: str | None = None, field: str | None = None) -> VectorSet:
    """The newest vector set of ``dataset``'s current version (of ``model`` and ``field`` when given).
    Raises NoEmbeddings, in one line, when there is none."""
    if catalogue.dataset(db, dataset) is None:
        raise NoEmbeddings(f"no dataset named {dataset!r}")
    sets = [s for s in vector_sets(db, dataset)
            if (model is None or s.model == model) and (field is None or s.field == field)]
    if not sets:
        what = " and ".join(x for x in (f"model {model}" if model else "", f"field {field}" if field else "") if x)
        raise NoEmbeddings(f"{dataset} has no embeddings{' of ' + what if what else ''} for its current version "
                           f"(make them with: python app.py embed {dataset} --model MODEL)")
    return sets[0]


def load_vectors(db: Database, vset: VectorSet) -> tuple[np.ndarray, np.ndarray]:
    """(rows, vectors) of ``vset``: int64 rows in ascending order and a float32 (rows, dim) matrix."""
    import pyarrow as pa

    table = db.arrow(
        """SELECT row, vector FROM embeddings
           WHERE dataset = $d AND dataset_version = $v AND field = $f AND model = $m AND model_revision = $r
           ORDER BY row""",
        {"d": vset.dataset, "v": vset.dataset_version, "f": vset.field, "m": vset.model, "r": vset.model_revision})
    rows = table.column("row").to_numpy().astype(np.int64)
    column = table.column("vector").combine_chunks()
    if isinstance(column, pa.ChunkedArray):  # pragma: no cover - an empty table
        column = pa.concat_arrays(column.chunks) if column.chunks else pa.array([], pa.list_(pa.float32()))
    values = column.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    dim = vset.dim or (len(values) // max(1, len(rows)))
    return rows, np.ascontiguousarray(values.reshape(len(rows), dim))
