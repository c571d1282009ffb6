"""Groups of linked items: the connected components (scipy) of pairs that link two items, as both
kinds of near duplicates use them (MinHash clusters of prompts in ``insights.duplicates``, vectors
close in cosine in ``semantic.clusters``).

>>> groups_of(6, np.array([0, 4, 1]), np.array([1, 5, 2]))
[[0, 1, 2], [4, 5]]
"""

from __future__ import annotations

import numpy as np


def groups_of(n: int, i: np.ndarray, j: np.ndarray) -> list[list[int]]:
    """The connected groups (two or more of ``range(n)``) of the edges (i, j), largest first, then by first member."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    if not len(i):
        return []
    graph = coo_matrix((np.ones(len(i), np.int8), (i, j)), shape=(n, n))
    _, label = connected_components(graph, directed=False)
    sizes = np.bincount(label)
    members = np.flatnonzero(sizes[label] > 1)
    members = members[np.argsort(label[members], kind="stable")]
    cuts = np.flatnonzero(np.diff(label[members])) + 1
    groups = [g.tolist() for g in np.split(members, cuts)] if len(members) else []
    return sorted(groups, key=lambda g: (-len(g), g[0]))
