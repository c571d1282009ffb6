"""A 2-D map of a dataset: its stored embeddings projected on their first two principal components
(scikit-learn's ``PCA``), each point a row, coloured by its label, its margin or its length difference.

The vectors are the newest set of the dataset's current version (``semantic.vectors.current_set``).
A large dataset is sampled first: at most ``SAMPLE`` rows, drawn without replacement by a seeded
generator (the same sample every time), and the map says so. The projection of one vector set is
kept in memory (it changes only when the set does); the colours are read on each call, as labels and
scores change without a new version.

- ``label``: the people's majority judgment (``labels.majority_labels``), "no majority" where the top
  labels tie, "unlabeled" where nobody judged the pair;
- ``margin``: a reward model's margin (score chosen − score rejected) when one scored the dataset
  (the first, or ``model``), else the dataset's own ratings' margin;
- ``length``: chosen − rejected, in characters of the final responses.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import numpy as np

from .. import labels
from ..store import Database
from . import accuracy
from .stats import StatsError, measures

SAMPLE = 20_000
"""Points drawn at most; a larger dataset is sampled."""
SEED = 0
COLORS = {"label": "label (majority judgment)", "margin": "margin", "length": "length difference"}
_CACHE_SIZE = 4
_cache: "OrderedDict[tuple, tuple]" = OrderedDict()
_lock = threading.Lock()


def has_map(db: Database, name: str) -> bool:
    """Whether ``name`` has embeddings of its current version (a map can be drawn)."""
    from ..semantic.vectors import has_embeddings

    return has_embeddings(db, name)


def _project(db: Database, name: str, sample: int, seed: int) -> tuple:
    """(vector set, rows, 2-D coordinates, explained variance ratios, total rows) of ``name``."""
    from sklearn.decomposition import PCA

    from ..semantic.errors import NoEmbeddings
    from ..semantic.vectors import current_set, load_vectors

    try:
        vset = current_set(db, name)
    except NoEmbeddings as err:
        raise StatsError(str(err)) from None
    key = (str(db.path), vset.key, sample, seed)
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    rows, vectors = load_vectors(db, vset)
    total = len(rows)
    if total > sample:
        pick = np.sort(np.random.default_rng(seed).choice(total, size=sample, replace=False))
        rows, vectors = rows[pick], vectors[pick]
    if len(rows) >= 2 and vectors.shape[1] >= 2:
        pca = PCA(n_components=2, svd_solver="full")
        xy = pca.fit_transform(vectors.astype(np.float64))
        explained = [float(v) for v in pca.explained_variance_ratio_]
    else:  # one point (or one dimension): nothing to project onto
        xy, explained = np.zeros((len(rows), 2)), [0.0, 0.0]
    out = (vset, rows, xy, explained, total)
    with _lock:
        _cache[key] = out
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return out


def _colors(db: Database, name: str, rows: list[int], color: str, model: str | None) -> tuple[list, str]:
    """(one colour value per row, what the values are)."""
    if color == "label":
        votes = labels.majority_labels(db, name)
        return [("no majority" if votes[r] is None else votes[r]) if r in votes else "unlabeled" for r in rows], \
            "majority judgment"
    _, m = measures(db, name)
    table = m.table
    index = {r: i for i, r in enumerate(table.column("row").to_pylist())}
    if color == "length":
        c, r_ = table.column("chosen_chars").to_pylist(), table.column("rejected_chars").to_pylist()
        return [c[index[r]] - r_[index[r]] if r in index else None for r in rows], "chosen − rejected (characters)"
    picked = accuracy.pick_model(db, name, model)
    if picked is not None:
        from ..scores.store import current_scores

        s = current_scores(db, name, picked)
        margins = dict(zip(s.column("row").to_pylist(), s.column("margin").to_pylist()))
        return [margins.get(r) for r in rows], f"margin of {picked}"
    margin = table.column("margin").to_pylist()
    return [margin[index[r]] if r in index else None for r in rows], "margin (the data's ratings)"


def projection(db: Database, name: str, color: str = "label", model: str | None = None, sample: int = SAMPLE,
               seed: int = SEED) -> dict:
    """The map of ``name`` as plain data: ``rows``, ``x``, ``y`` (PCA of the stored vectors), the
    colour ``values``, and what was projected (field, model, whether and how it was sampled)."""
    if color not in COLORS:
        raise StatsError(f"unknown colour {color!r}: use one of {', '.join(COLORS)}")
    vset, rows, xy, explained, total = _project(db, name, int(sample), int(seed))
    rows = [int(r) for r in rows]
    values, title = _colors(db, name, rows, color, model)
    prompts = dict(db.rows("SELECT row, left(coalesce(prompt[-1].content, ''), 100) FROM records "
                           "WHERE dataset = ? AND row IN (SELECT unnest(?::BIGINT[]))", [vset.dataset, rows]))
    return {"dataset": vset.dataset, "field": vset.field, "model": vset.model, "rows": rows,
            "x": [float(v) for v in xy[:, 0]], "y": [float(v) for v in xy[:, 1]], "explained": explained,
            "color": color, "color_title": title, "values": values, "prompts": [prompts.get(r, "") for r in rows],
            "total": total, "shown": len(rows), "sampled": len(rows) < total, "limit": int(sample), "method": "PCA (scikit-learn)"}


def map_figure(db: Database, name: str, color: str = "label", **kw: Any):
    """The map as a plotly figure; each point's ``customdata`` is its row."""
    from .charts import projection_map

    return projection_map(projection(db, name, color, **kw))


def describe(p: dict) -> str:
    """What the map shows, in a sentence (plain text)."""
    what = (f"a sample of {p['shown']:,} of its {p['total']:,} rows (at most {p['limit']:,}, drawn with a fixed seed)"
            if p["sampled"] else f"all {p['shown']:,} rows")
    ex = p["explained"]
    return (f"{p['method']} of the {p['field']} embeddings ({p['model']}) onto two dimensions, {what}; the two "
            f"components hold {ex[0] + ex[1]:.0%} of the variance. Colour: {p['color_title']}.")
