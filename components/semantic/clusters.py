"""Near-duplicate clusters by embedding: rows whose vectors have a cosine similarity of at least
``THRESHOLD``, joined transitively (``groups.groups_of``: scipy's connected components), the largest cluster first.

Every vector looks for its ``NEIGHBOURS`` nearest with Faiss. A small set is searched exactly; a
larger one through an inverted file (``IndexIVFFlat``, about ``4 sqrt(n)`` lists, trained on a
sample) visiting the ``PROBES`` lists nearest each vector: two vectors this close almost always fall
in the same list, so each vector is compared with a few hundred others instead of all of them. The
clusters of a vector set are computed once per process (the Statistics tab asks for them after its
first answer, as it does for the MinHash clusters of the prompts' words).
"""

from __future__ import annotations

import threading

import numpy as np

from ..groups import groups_of
from ..store import Database
from .. import catalogue
from .index import vector_index
from .vectors import VectorSet, current_set

THRESHOLD = 0.95
NEIGHBOURS = 10
EXACT_MAX = 20_000
"""Vector sets up to this size are searched exactly."""
PROBES = 2
BATCH = 8192
SHOWN = 20
"""Clusters described (with an example) in the statistics; every cluster's rows can be asked for."""

_DONE: dict[tuple, dict] = {}
_LOCK = threading.Lock()


def close_pairs(vectors: np.ndarray, threshold: float = THRESHOLD, neighbours: int = NEIGHBOURS,
                exact_max: int = EXACT_MAX, probes: int = PROBES) -> tuple[np.ndarray, np.ndarray]:
    """(i, j) positions of the pairs of normalized ``vectors`` at cosine similarity ``threshold`` or
    more (each pair once, i < j), among each vector's ``neighbours`` nearest."""
    import faiss

    vectors = np.ascontiguousarray(vectors, np.float32)
    n, d = vectors.shape
    if n < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    if n <= exact_max:
        index = faiss.IndexFlatIP(d)
    else:
        nlist = int(min(16_384, 4 * np.sqrt(n)))
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, nlist, faiss.METRIC_INNER_PRODUCT)
        sample = vectors
        if n > 32 * nlist:
            sample = vectors[np.sort(np.random.default_rng(0).choice(n, 32 * nlist, replace=False))]
        index.train(sample)
        index.nprobe = probes
    index.add(vectors)
    k = min(neighbours + 1, n)
    left, right = [], []
    for start in range(0, n, BATCH):
        sims, ids = index.search(vectors[start:start + BATCH], k)
        me = np.arange(start, start + len(ids))[:, None]
        keep = (sims >= threshold) & (ids >= 0) & (ids != me)
        i = np.broadcast_to(me, ids.shape)[keep]
        j = ids[keep]
        left.append(np.minimum(i, j))
        right.append(np.maximum(i, j))
    i, j = np.concatenate(left), np.concatenate(right)
    if len(i):
        both = np.unique(i * n + j)
        i, j = both // n, both % n
    return i.astype(np.int64), j.astype(np.int64)


def embedding_clusters(db: Database, dataset: str, threshold: float = THRESHOLD, compute: bool = True) -> dict | None:
    """The near-duplicate clusters of ``dataset``'s newest vector set (NoEmbeddings when it has
    none): the model, field and threshold, how many vectors, clusters and rows in them, the first
    ``SHOWN`` clusters (``key`` ``embnear:K``, row count, an example text, their first rows). With
    ``compute`` False, None unless they were computed already."""
    found = _computed(db, dataset, threshold, compute)
    return None if found is None else {k: v for k, v in found.items() if not k.startswith("_")}


def cluster_rows(db: Database, dataset: str, cluster: int, threshold: float = THRESHOLD) -> list[int]:
    """The rows of cluster number ``cluster`` (0 = the largest) of ``embedding_clusters``."""
    groups = _computed(db, dataset, threshold, True)["_rows"]
    if not 0 <= cluster < len(groups):
        raise IndexError(cluster)
    return list(groups[cluster])


def _computed(db: Database, dataset: str, threshold: float, compute: bool) -> dict | None:
    """The clusters of the newest vector set with their rows (``_rows``), computed once per process."""
    vset = current_set(db, dataset)
    key = (str(db.path),) + vset.key + (threshold,)
    with _LOCK:
        found = _DONE.get(key)
        if found is None and compute:
            found = _DONE[key] = _cluster(db, vset, threshold)
            if len(_DONE) > 16:
                del _DONE[next(iter(_DONE))]
    return found


def _cluster(db: Database, vset: VectorSet, threshold: float) -> dict:
    from .step import field_text

    index = vector_index(db, vset)
    i, j = close_pairs(index.vectors, threshold)
    groups = [index.rows[g].tolist() for g in groups_of(len(index), i, j)]
    clusters = []
    for k, rows in enumerate(groups[:SHOWN]):
        record = catalogue.record(db, vset.dataset, rows[0]) or {}
        text = record.get("text") if vset.field == "text" else field_text(record.get(vset.field))
        clusters.append({"key": f"embnear:{k}", "rows": len(rows), "example": (text or "")[:160],
                         "first_rows": rows[:5]})
    return {"model": vset.model, "field": vset.field, "threshold": threshold, "vectors": len(index),
            "clusters_found": len(groups), "rows_in_clusters": sum(len(g) for g in groups),
            "clusters": clusters, "_rows": groups}
