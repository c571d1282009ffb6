"""Semantic search on real parts: a tiny BERT encoder made here (random weights, a WordPiece tokenizer
trained on the test texts) loaded through sentence-transformers, vectors written by the job runner
into DuckDB, Faiss indexes, the real BM25 index for hybrid search and MoreLikeThis, and the CLI."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from components import labels, search
from components.ingest import ingest
from components.search import Filters
from components.semantic import (
    NoEmbeddings, SemanticError, datasets_with_embeddings, embed_dataset, hybrid_search, rrf, semantic_search,
    similar, vector_sets,
)
from components.semantic.index import VectorIndex
from components.semantic.vectors import current_set, load_vectors
from components.store import Database
from helpers import run_cli
from components import catalogue

TOPICS = ["boil an egg for breakfast", "plant tomatoes in the garden", "fix a flat bicycle tyre",
          "learn the guitar chords", "bake sourdough bread at home", "train a puppy to sit",
          "paint a kitchen wall", "repair a leaking tap", "brew green tea properly", "knit a wool scarf"]


def pair_rows() -> list[dict]:
    rows = []
    for i in range(40):
        topic = TOPICS[i % len(TOPICS)]
        prompt = f"How do I {topic}? Question {i} asks about step {i % 7} and tool {i % 5}."
        if i == 23:
            prompt = rows[3]["prompt"][0]["content"]  # row 23 repeats row 3's prompt exactly
        rows.append({
            "prompt": [{"role": "user", "content": prompt}],
            "chosen": [{"role": "assistant", "content": f"To {topic}, start slowly. " * (1 + i % 4)}],
            "rejected": [{"role": "assistant", "content": f"No idea about {topic}."}],
        })
    return rows


def make_tiny_encoder(path: Path, texts: list[str]) -> Path:
    """A BERT encoder (hidden 32, 2 layers, random weights) with a WordPiece tokenizer trained on ``texts``."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast
    import torch

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok.train_from_iterator(texts, trainers.WordPieceTrainer(vocab_size=400, special_tokens=special,
                                                             show_progress=False))
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                   sep_token="[SEP]", mask_token="[MASK]")
    torch.manual_seed(0)
    config = BertConfig(vocab_size=tok.get_vocab_size(), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128)
    BertModel(config).save_pretrained(path)
    fast.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A database with a dataset of pairs (indexed, embedded) and one without vectors."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    tmp = tmp_path_factory.mktemp("semantic")
    rows = pair_rows()
    texts = [m["content"] for r in rows for side in ("prompt", "chosen", "rejected") for m in r[side]]
    model = str(make_tiny_encoder(tmp / "encoder", texts))
    src = tmp / "pairs.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    db = Database(tmp / "studio.duckdb")
    ingest(db, str(src), name="howto")
    ingest(db, str(src), name="plain")
    search.build_index(db, "howto")
    search.build_index(db, "plain")
    result = embed_dataset(db, "howto", model, started_by="tester", batch_size=8)
    yield {"db": db, "model": model, "rows": rows, "tmp": tmp, "job": result}
    db.close()


def test_vectors_are_stored_normalized_with_model_revision_and_version(world):
    db = world["db"]
    assert world["job"].status == "done" and world["job"].done == 40
    (vset,) = vector_sets(db, "howto")
    assert (vset.field, vset.model, vset.rows, vset.dim) == ("prompt", world["model"], 40, 32)
    assert vset.model_revision.startswith("local-")
    assert vset.dataset_version == catalogue.dataset(db, "howto").version
    rows, vectors = load_vectors(db, vset)
    assert list(rows) == list(range(40))
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert datasets_with_embeddings(db) == ["howto"]
    job = db.dicts("SELECT kind, status, settings FROM jobs")[0]
    assert job["kind"] == "embed" and job["status"] == "done"
    # a second run has nothing left to do (resume by done_rows)
    again = embed_dataset(db, "howto", world["model"], started_by="tester")
    assert again.done == 0 and db.scalar("SELECT count(*) FROM embeddings") == 40


def test_exact_duplicate_has_similarity_one_and_comes_first(world):
    db, rows = world["db"], world["rows"]
    query = rows[3]["prompt"][0]["content"]
    res = semantic_search(db, "howto", query, k=5)
    assert [h.row for h in res.hits[:2]] == [3, 23]  # both exact, ties by row
    assert res.hits[0].similarity == pytest.approx(1.0, abs=1e-5)
    assert res.hits[1].similarity == pytest.approx(1.0, abs=1e-5)
    assert res.hits[2].similarity < 0.99999
    assert res.total == 40 and res.hits[0].part == "prompt" and "Question 3" in res.hits[0].snippet
    found = similar(db, "howto", 3, k=4)
    assert found.engine == "embeddings" and found.rows[0] == 23 and 3 not in found.rows
    assert found.neighbours[0].score == pytest.approx(1.0, abs=1e-5)
    assert len(found.rows) == 4


def test_fusion_matches_a_hand_computation():
    fused = dict(rrf([["a", "b", "c"], ["c", "a", "d"]], k=60))
    assert fused["a"] == pytest.approx(1 / 61 + 1 / 62)
    assert fused["c"] == pytest.approx(1 / 63 + 1 / 61)
    assert fused["b"] == pytest.approx(1 / 62) and fused["d"] == pytest.approx(1 / 63)
    assert [item for item, _ in rrf([["a", "b", "c"], ["c", "a", "d"]])] == ["a", "c", "b", "d"]
    assert [item for item, _ in rrf([["x", "y"], ["y", "x"]])] == ["x", "y"]  # a tie: by the item


def test_hybrid_is_the_fusion_of_bm25_and_semantic_lists(world):
    db = world["db"]
    bm25 = search.search(db, "howto", "tomatoes garden", k=100, snippets=False)
    dense = semantic_search(db, "howto", "tomatoes garden", k=100, snippets=False)
    expected = rrf([[h.row for h in bm25.hits], [h.row for h in dense.hits]])
    res = hybrid_search(db, "howto", "tomatoes garden", k=10)
    assert [(h.row, h.score) for h in res.hits] == [(r, pytest.approx(s)) for r, s in expected[:10]]
    assert res.total == len(expected)
    assert res.hits[0].bm25_rank is not None and "<mark>" in " ".join(h.snippet for h in res.hits)


def _passing(db: Database, dataset: str, min_prompt: int, labelled: set[int]) -> set[int]:
    return {r for (r, p) in db.rows(
        "SELECT row, length(prompt[1].content) FROM records WHERE dataset = ?", [dataset])
        if p >= min_prompt and r in labelled}


@pytest.mark.parametrize("mode", ["semantic", "hybrid"])
def test_filters_and_paging_hold(world, mode):
    db = world["db"]
    for row in range(0, 40, 3):
        labels.add_label(db, "howto", row, "chosen", "ann")
    labelled = set(range(0, 40, 3))
    filters = Filters(ranges={"length_prompt": (70, None)}, label="labeled")
    passing = _passing(db, "howto", 70, labelled)
    assert 3 < len(passing) < len(labelled)
    run = semantic_search if mode == "semantic" else hybrid_search
    whole = run(db, "howto", "bake bread", k=50, filters=filters)
    assert {h.row for h in whole.hits} <= passing
    if mode == "semantic":  # every passing row is ranked: the filter applied to the whole list
        assert whole.total == len(passing) and {h.row for h in whole.hits} == passing
    # the same rows pass as under BM25's Lucene filter clauses
    bm25 = search.search(db, "howto", "how", k=50, filters=filters, snippets=False)
    assert {h.row for h in bm25.hits} == passing
    pages = [run(db, "howto", "bake bread", k=2, offset=o, filters=filters) for o in range(0, len(whole.hits), 2)]
    assert [h.row for p in pages for h in p.hits] == [h.row for h in whole.hits]
    assert [h.rank for p in pages for h in p.hits] == list(range(1, len(whole.hits) + 1))
    unlabeled = run(db, "howto", "bake bread", k=50, filters=Filters(label="unlabeled"))
    assert unlabeled.hits and not {h.row for h in unlabeled.hits} & labelled


def test_a_dataset_without_embeddings_says_so_in_one_line(world):
    db = world["db"]
    with pytest.raises(NoEmbeddings) as err:
        semantic_search(db, "plain", "bake bread")
    message = str(err.value)
    assert "\n" not in message and "plain has no embeddings" in message and "app.py embed plain" in message
    with pytest.raises(NoEmbeddings):
        hybrid_search(db, "plain", "bake bread")
    partial = semantic_search(db, "howto,plain", "bake bread", partial=True)
    assert partial.datasets == ["howto"] and "plain has no embeddings" in partial.skipped[0]
    with pytest.raises(SemanticError):
        semantic_search(db, "nosuch", "bread")


def test_more_like_this_without_embeddings(world):
    db = world["db"]
    found = similar(db, "plain", 3, k=5)
    assert found.engine == "MoreLikeThis" and "no embeddings" in found.note
    assert found.rows[0] == 23 and 3 not in found.rows  # the same prompt ranks first
    assert all(catalogue.record(db, "plain", r) for r in found.rows)


def test_approximate_index_agrees_with_exact_and_filters():
    rng = np.random.default_rng(7)
    centers = rng.standard_normal((20, 24))
    vectors = (centers[rng.integers(0, 20, 5000)] + 0.3 * rng.standard_normal((5000, 24))).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    rows = np.arange(5000, dtype=np.int64) * 3
    exact = VectorIndex(None, rows, vectors, approximate=False)
    approx = VectorIndex(None, rows, vectors, approximate=True)
    assert (exact.kind, approx.kind) == ("exact", "ivf")
    recall = []
    for q in vectors[:50]:
        want, _ = exact.search(q, 10)
        got, sims = approx.search(q, 10)
        recall.append(len(set(want) & set(got)) / 10)
        assert np.all(np.diff(sims) <= 1e-6)
    assert np.mean(recall) >= 0.9
    allowed = np.arange(0, 5000, 7)
    got, _ = approx.search(vectors[1], 10, allowed)
    assert set(got) <= set(rows[allowed])


def test_cli_embed_search_and_similar(world):
    db_path, model = str(world["tmp"] / "cli.duckdb"), world["model"]
    src = world["tmp"] / "pairs.jsonl"
    assert run_cli("ingest", str(src), "--name", "cli", "--db", db_path).returncode == 0
    assert run_cli("index", "cli", "--db", db_path).returncode == 0
    missing = run_cli("search", "cli", "bread", "--mode", "semantic", "--db", db_path)
    assert missing.returncode == 1 and missing.stderr.strip().count("\n") == 0
    assert "cli has no embeddings" in missing.stderr
    done = run_cli("embed", "cli", "--model", model, "--db", db_path, "--json", "--batch-size", "16")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["done"] == 40
    query = world["rows"][3]["prompt"][0]["content"]
    got = run_cli("search", "cli", query, "--mode", "semantic", "--json", "--k", "3", "--db", db_path)
    assert got.returncode == 0, got.stderr
    hits = [json.loads(line) for line in got.stdout.splitlines()]
    assert [h["row"] for h in hits[:2]] == [3, 23] and hits[0]["score"] == pytest.approx(1.0, abs=1e-5)
    mixed = run_cli("search", "cli", "bread", "--mode", "hybrid", "--db", db_path)
    assert mixed.returncode == 0 and "hits in cli" in mixed.stdout
    near = run_cli("similar", "cli", "3", "--k", "2", "--json", "--db", db_path)
    assert near.returncode == 0, near.stderr
    assert json.loads(near.stdout.splitlines()[0])["row"] == 23
    bad = run_cli("similar", "cli", "999", "--db", db_path)
    assert bad.returncode == 1 and "cli has no row 999" in bad.stderr
