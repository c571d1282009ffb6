"""Vector indexes (Faiss): nearest vectors by inner product, which is cosine similarity for the
normalized vectors stored.

Up to ``EXACT_MAX`` vectors a set is searched exactly (``IndexFlatIP``). Above it an inverted-file
index with 8-bit scalar-quantized codes (``IndexIVFScalarQuantizer``, ``2 * sqrt(n)`` lists,
``NPROBE`` of them visited) finds ``REFINE`` times the wanted candidates, which are then scored
exactly against the full vectors: the similarities shown are always exact, only the candidate set
is approximate (its recall against exact search is measured in bench/bench_semantic.py). The IVF
index is trained once per vector set and kept on disk beside the search indexes
(``<index root>/.vectors/<dataset>/``).

A search may be restricted to allowed rows (the filters): a small allowed set is scored exactly in
numpy; a large one through Faiss's ``IDSelectorBitmap``, with more lists visited until enough pass.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import numpy as np

from ..names import check_dataset_name
from ..store import Database
from .vectors import VectorSet, load_vectors

EXACT_MAX = 200_000
"""Vector sets up to this size are searched exactly (one scan costs a few ms per 100k vectors)."""
NPROBE = 32
REFINE = 4
SUBSET_EXACT = 100_000
"""An allowed set up to this size is scored exactly in numpy, whatever the index."""


class VectorIndex:
    """One vector set in memory: ``rows`` (ascending), their vectors, and a Faiss index over them."""

    def __init__(self, vset: VectorSet | None, rows: np.ndarray, vectors: np.ndarray, approximate: bool | None = None,
                 saved: Path | None = None, nprobe: int = NPROBE):
        import faiss

        self.vset = vset
        self.rows = np.asarray(rows, np.int64)
        self.vectors = np.ascontiguousarray(vectors, np.float32)
        n, d = self.vectors.shape
        self.dim = d
        self.nprobe = nprobe
        approximate = n > EXACT_MAX if approximate is None else approximate
        if not approximate:
            self.kind = "exact"
            self.index = faiss.IndexFlatIP(d)
            if n:
                self.index.add(self.vectors)
            return
        self.kind = "ivf"
        if saved is not None and saved.exists():
            index = faiss.read_index(str(saved))
            if index.ntotal == n and index.d == d:
                self.index = index
                self.nlist = faiss.extract_index_ivf(index).nlist
                return
        self.nlist = max(16, min(16_384, int(2 * np.sqrt(n))))
        quantizer = faiss.IndexFlatIP(d)
        index = faiss.IndexIVFScalarQuantizer(quantizer, d, self.nlist, faiss.ScalarQuantizer.QT_8bit,
                                              faiss.METRIC_INNER_PRODUCT)
        sample = self.vectors
        if n > 32 * self.nlist:
            pick = np.random.default_rng(0).choice(n, 32 * self.nlist, replace=False)
            sample = self.vectors[np.sort(pick)]
        index.train(sample)
        index.add(self.vectors)
        self.index = index
        if saved is not None:
            saved.parent.mkdir(parents=True, exist_ok=True)
            part = saved.with_suffix(f".part-{os.getpid()}")
            faiss.write_index(index, str(part))
            os.replace(part, saved)

    def __len__(self) -> int:
        return len(self.rows)

    def positions(self, rows) -> np.ndarray:
        """The positions of ``rows`` (those that have a vector) in this index."""
        rows = np.asarray(list(rows) if not isinstance(rows, np.ndarray) else rows, np.int64)
        at = np.searchsorted(self.rows, rows)
        at = np.clip(at, 0, max(0, len(self.rows) - 1))
        return at[(len(self.rows) > 0) & (self.rows[at] == rows)] if len(rows) else at

    def vector_of(self, row: int) -> np.ndarray | None:
        at = self.positions([row])
        return self.vectors[at[0]] if len(at) else None

    def search(self, query: np.ndarray, n: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(rows, similarities) of the ``n`` vectors nearest ``query``, best first (ties by row);
        only positions in ``allowed`` (sorted positions, None: all) are considered."""
        q = np.ascontiguousarray(np.asarray(query, np.float32).reshape(1, -1))
        total = len(self.rows) if allowed is None else len(allowed)
        n = int(min(n, total))
        if n <= 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        if allowed is not None and len(allowed) <= SUBSET_EXACT:
            return self._best(np.asarray(allowed, np.int64), self.vectors[allowed] @ q[0], n)
        if self.kind == "exact":
            params = None if allowed is None else _selector_params(self, allowed, None)
            sims, ids = self.index.search(q, n, params=params) if params else self.index.search(q, n)
            keep = ids[0] >= 0
            return self._best(ids[0][keep], self.vectors[ids[0][keep]] @ q[0], n)
        nprobe = self.nprobe
        while True:
            params = _selector_params(self, allowed, nprobe)
            _, ids = self.index.search(q, n * REFINE, params=params)
            found = ids[0][ids[0] >= 0]
            if len(found) >= n or nprobe >= self.nlist:
                return self._best(found, self.vectors[found] @ q[0], n)
            nprobe = min(self.nlist, nprobe * 4)

    def _best(self, positions: np.ndarray, sims: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        if len(positions) > n:
            cut = np.argpartition(-sims, n - 1)[:n]
            # everything tied with the n-th best is kept, so that ties are broken by row, not by chance
            threshold = sims[cut].min()
            cut = np.flatnonzero(sims >= threshold)
            positions, sims = positions[cut], sims[cut]
        rows = self.rows[positions]
        order = np.lexsort((rows, -sims))[:n]
        return rows[order], sims[order].astype(np.float32)


def _selector_params(ix: VectorIndex, allowed: np.ndarray | None, nprobe: int | None):
    import faiss

    kwargs = {}
    if allowed is not None:
        bits = np.zeros(len(ix.rows), bool)
        bits[allowed] = True
        packed = np.packbits(bits, bitorder="little")
        selector = faiss.IDSelectorBitmap(len(ix.rows), faiss.swig_ptr(packed))
        selector.packed = packed  # kept alive with the selector
        kwargs["sel"] = selector
    if nprobe is None:
        return faiss.SearchParameters(**kwargs)
    params = faiss.SearchParametersIVF(nprobe=nprobe, **kwargs)
    params.keep = kwargs.get("sel")
    return params


_INDEXES: dict[tuple, VectorIndex] = {}
_BUILDING = threading.Lock()


def vectors_folder(db: Database, dataset: str) -> Path:
    """Where the IVF indexes of ``dataset`` are kept: ``.vectors/<dataset>`` under the search index root."""
    from ..search.index import index_root

    check_dataset_name(dataset)
    return index_root(db) / ".vectors" / dataset


def vector_index(db: Database, vset: VectorSet) -> VectorIndex:
    """The in-memory index of ``vset`` (read and, for a large set, trained once per process)."""
    key = (str(db.path.resolve()),) + vset.key
    found = _INDEXES.get(key)
    if found is not None:
        return found
    with _BUILDING:
        found = _INDEXES.get(key)
        if found is None:
            rows, vectors = load_vectors(db, vset)
            name = hashlib.sha1(repr(vset.key).encode()).hexdigest()[:16]
            saved = vectors_folder(db, vset.dataset) / f"{name}.ivf.faiss"
            found = VectorIndex(vset, rows, vectors, saved=saved)
            for old in [k for k in _INDEXES if k[:2] == key[:2]]:  # an older set of the same dataset
                del _INDEXES[old]
            if len(_INDEXES) >= 8:
                del _INDEXES[next(iter(_INDEXES))]
            _INDEXES[key] = found
    return found
