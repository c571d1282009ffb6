"""The 2-D map of a dataset: PCA of its stored embeddings (a tiny real encoder made here, vectors
written by the embedding job), sampling, colours, and what the Statistics tab says without vectors."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from sklearn.decomposition import PCA

from test_semantic import make_tiny_encoder, pair_rows

from components import insights, labels
from components.ingest import ingest
from components.insights import projection
from components.semantic import embed_dataset
from components.semantic.vectors import current_set, load_vectors
from components.store import Database
from components.views import stats as stats_view


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    os.environ["HF_HUB_OFFLINE"] = "1"
    tmp = tmp_path_factory.mktemp("map")
    rows = pair_rows()
    texts = [m["content"] for r in rows for side in ("prompt", "chosen", "rejected") for m in r[side]]
    model = str(make_tiny_encoder(tmp / "encoder", texts))
    src = tmp / "pairs.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    db = Database(tmp / "studio.duckdb")
    ingest(db, str(src), name="howto")
    ingest(db, str(src), name="plain")
    embed_dataset(db, "howto", model, started_by="tester", batch_size=8)
    for row, given in {0: ["chosen"], 1: ["rejected", "rejected"], 2: ["chosen", "rejected"], 3: ["tie"]}.items():
        for k, label in enumerate(given):
            labels.add_label(db, "howto", row, label, f"ann{k}")
    yield {"db": db, "rows": rows}
    db.close()


def _same_up_to_sign(a: np.ndarray, b: np.ndarray) -> None:
    """PCA's components are defined up to sign: compare each column allowing a flip."""
    for k in range(2):
        sign = 1.0 if np.dot(a[:, k], b[:, k]) >= 0 else -1.0
        np.testing.assert_allclose(a[:, k], sign * b[:, k], rtol=1e-6, atol=1e-6)


def test_coordinates_are_sklearn_pca_of_the_stored_vectors(world):
    db = world["db"]
    rows, vectors = load_vectors(db, current_set(db, "howto"))
    expected = PCA(n_components=2).fit(vectors.astype(np.float64))
    p = projection.projection(db, "howto")
    assert p["rows"] == rows.tolist() == list(range(40))
    assert (p["shown"], p["total"], p["sampled"]) == (40, 40, False)
    _same_up_to_sign(np.column_stack([p["x"], p["y"]]), expected.transform(vectors.astype(np.float64)))
    np.testing.assert_allclose(p["explained"], expected.explained_variance_ratio_, rtol=1e-6)
    assert p["method"] == "PCA (scikit-learn)" and "all 40 rows" in projection.describe(p)


def test_a_large_dataset_is_sampled_and_says_so(world):
    db = world["db"]
    rows, vectors = load_vectors(db, current_set(db, "howto"))
    p = projection.projection(db, "howto", sample=15)
    assert (p["shown"], p["total"], p["sampled"]) == (15, 40, True)
    assert p["rows"] == sorted(set(p["rows"])) and set(p["rows"]) <= set(range(40))
    assert projection.projection(db, "howto", sample=15)["rows"] == p["rows"]  # the same sample every time
    picked = vectors[np.searchsorted(rows, p["rows"])].astype(np.float64)
    _same_up_to_sign(np.column_stack([p["x"], p["y"]]), PCA(n_components=2).fit_transform(picked))
    assert "a sample of 15 of its 40 rows (at most 15" in projection.describe(p)
    fig = stats_view.charts.projection_map(p)
    assert fig.layout.title.text.startswith("Map of the dataset: a sample of 15 of 40 rows")


def test_colours_by_label_margin_and_length(world):
    db = world["db"]
    by_label = projection.projection(db, "howto", "label")
    values = dict(zip(by_label["rows"], by_label["values"]))
    assert [values[r] for r in range(5)] == ["chosen", "rejected", "no majority", "tie", "unlabeled"]
    by_length = projection.projection(db, "howto", "length")
    expected = {i: len(r["chosen"][0]["content"]) - len(r["rejected"][0]["content"]) for i, r in enumerate(world["rows"])}
    assert dict(zip(by_length["rows"], by_length["values"])) == expected
    by_margin = projection.projection(db, "howto", "margin")
    assert by_margin["values"] == [None] * 40 and by_margin["color_title"] == "margin (the data's ratings)"
    # every point carries its row; the figure says its points open rows of this dataset
    fig = stats_view.charts.projection_map(by_label)
    assert sorted(r for t in fig.data for r in t.customdata) == list(range(40))
    assert fig.layout.meta == {"link": "row", "dataset": "howto"}
    assert [t.name for t in fig.data] == ["chosen", "rejected", "tie", "no majority", "unlabeled"]
    with pytest.raises(insights.StatsError):
        projection.projection(db, "howto", "colour")


def test_without_embeddings_the_tab_says_how_to_make_them(world):
    db = world["db"]
    note, choice, plot = stats_view.map_outputs(db, "plain", "label", None)
    assert "plain has no embeddings" in note and "`python app.py embed plain --model PATH`" in note
    assert plot["visible"] is False and choice["visible"] is False
    note, choice, plot = stats_view.map_outputs(db, "howto", "label", None)
    assert note.startswith("**Map of the dataset** — PCA (scikit-learn) of the ") and plot["visible"] is True
    with pytest.raises(insights.StatsError):
        projection.projection(db, "plain")
