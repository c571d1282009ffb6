"""Semantic search at 200,000 and 1,000,000 documents: embedding rows/s on CPU, semantic and hybrid
query latency through the app's path with the recall@10 of the approximate index, and near-duplicate
clusters over every prompt.

    .venv/bin/python bench/bench_semantic.py [--sizes 200000,1000000] [--queries 200] [--embed 3000]

- **encoder**: MiniLM-shaped (BERT, 6 layers, hidden 384, 12 heads, intermediate 1536) with random
  weights and a WordPiece tokenizer trained here on the documents (bench/bench_jobs.py's
  ``encoder_model``; the weights do not change the cost of a forward pass).
- **embed**: ``components.semantic.embed_dataset`` (the job the ``embed`` command runs, batch 32, on
  CPU) over the first ``--embed`` package summaries (short texts) and over as many HH-RLHF prompts (at most its 2,312)
  (longer ones); rows/s of the whole job, measured, nothing extrapolated.
- **vectors of the N documents**: embedding a million texts on these CPUs would take hours, so the
  vectors are a cheaper encoding written straight through the app's vector store
  (``EmbedStep.write``, under the encoder's name and revision, so queries are embedded by the
  encoder as in the app): each text's hashed bag of words (scikit-learn ``HashingVectorizer``, 2^15
  features) times a fixed Gaussian matrix into 384 dimensions, L2-normalized. Texts with words in
  common lie near each other, as with a real encoder (random unit vectors would have no neighbours
  to find, which no index does well on).
- **documents**: the package summaries bench/bench_search.py uses (real text, shuffled, the first N);
  ingested and BM25-indexed by the app; the work folders are kept under ``--work`` so a rerun
  skips what exists.
- **queries**: bench_search's 2-3 word queries; ``components.semantic.search.search(db, name, q,
  mode=...)``, page of 10 with snippets, after 20 warm-up queries; the query is embedded by the
  encoder each time (part of the latency).
- **recall@10**: the app's index (``vector_index``: exact ``IndexFlatIP`` up to 200,000 vectors, IVF
  with 8-bit codes and exact re-scoring above) against exact top 10 by numpy, for the queries in the
  vectors' own encoding (the realistic case) and as the encoder embeds them.
- **near-duplicate rows by embedding**: ``semantic.clusters.embedding_clusters`` over the N documents'
  vectors (each vector's 10 nearest through an inverted file, cosine 0.95 or more, connected components).
- **near duplicates**: a pairs dataset of N rows whose prompts are the same N summaries;
  ``insights.dataset_stats`` and its ``duplicates`` timing (exact duplicates and MinHash LSH
  clusters over every distinct prompt).

Prints a Markdown table and one JSON line; writes bench/out/semantic/results.json.
"""

from __future__ import annotations

import argparse
import gc
import gzip
import itertools
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from bench_jobs import HH, encoder_model  # noqa: E402
from bench_search import documents, make_queries  # noqa: E402
from common import pct, peak_rss_mb  # noqa: E402

OUT = ROOT / "bench" / "out" / "semantic"
DIM = 384
FEATURES = 2 ** 15
CHUNK = 100_000


def encoder(work: Path, texts: list[str]) -> str:
    """The MiniLM-shaped encoder (made once under ``work``)."""
    path = work / "encoder-minilm"
    if not (path / "config.json").exists():
        encoder_model(path, texts, DIM, 6)  # 6 layers, hidden 384, intermediate 1536, random weights
        config = json.loads((path / "config.json").read_text())
        config["num_attention_heads"] = 12  # MiniLM's heads (32 wide); the weight shapes do not depend on it
        (path / "config.json").write_text(json.dumps(config, indent=1))
    return str(path)


class Cheap:
    """The cheaper encoding: hashed bag of words times a fixed Gaussian matrix, L2-normalized."""

    def __init__(self, seed: int = 0):
        from sklearn.feature_extraction.text import HashingVectorizer

        self.hashing = HashingVectorizer(n_features=FEATURES, alternate_sign=False, norm="l2", dtype=np.float32)
        self.matrix = np.random.default_rng(seed).standard_normal((FEATURES, DIM), dtype=np.float32)

    def __call__(self, texts: list[str]) -> np.ndarray:
        out = np.asarray(self.hashing.transform(texts) @ self.matrix, np.float32)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        out /= np.where(norms > 0, norms, 1)
        return out


def _jsonl(path: Path, items) -> Path:
    with open(path, "w", encoding="utf-8") as f:
        for item in items:
            f.write(json.dumps(item) + "\n")
    return path


def prepare(n: int, docs: list[dict], work: Path, model: str, cheap: Cheap, loads: dict) -> tuple:
    """The database of size ``n``: documents ingested, BM25-indexed, with vectors; the pairs dataset."""
    from components import catalogue, search
    from components.ingest import ingest
    from components.semantic.step import EmbedStep
    from components.semantic.vectors import vector_sets
    from components.store import Database
    import pyarrow as pa

    folder = work / f"n{n}"
    folder.mkdir(parents=True, exist_ok=True)
    db = Database(folder / "bench.duckdb")
    name, pairs = f"docs-{n}", f"pairs-{n}"
    done = {}
    if catalogue.dataset(db, name) is None:
        loads["ingest"] = os.getloadavg()[0]
        t = time.perf_counter()
        summary = ingest(db, str(_jsonl(folder / "docs.jsonl", docs[:n])), name=name)
        assert summary.rows_loaded == n, summary.describe()
        done["ingest_s"] = time.perf_counter() - t
    status = search.index_status(db, name)
    if status is None or status.state != "ready":
        loads["bm25_build"] = os.getloadavg()[0]
        done["bm25_build_s"] = search.build_index(db, name).seconds
    if not vector_sets(db, name):
        loads["vectors"] = os.getloadavg()[0]
        t = time.perf_counter()
        info = catalogue.dataset(db, name)
        step = EmbedStep(model=model, field="text")
        table = db.arrow("SELECT row, text FROM records WHERE dataset = ? ORDER BY row", [name])
        rows, texts = table.column("row").to_numpy(), table.column("text").to_pylist()
        for s in range(0, len(rows), CHUNK):
            vectors = cheap(texts[s:s + CHUNK])
            flat = pa.array(vectors.ravel(), pa.float32())
            offsets = pa.array(np.arange(len(vectors) + 1, dtype=np.int32) * DIM, pa.int32())
            step.write(db, "bench", "bench", name, info.version, pa.table({
                "row": pa.array(rows[s:s + CHUNK], pa.int64()), "error": pa.nulls(len(vectors), pa.string()),
                "vector": pa.ListArray.from_arrays(offsets, flat)}))
        done["vectors_write_s"] = time.perf_counter() - t
        del table, texts
    if catalogue.dataset(db, pairs) is None:
        t = time.perf_counter()
        ingest(db, str(_jsonl(folder / "pairs.jsonl", (
            {"prompt": [{"role": "user", "content": d["contents"]}],
             "chosen": [{"role": "assistant", "content": f"A {d['registry']} package."}],
             "rejected": [{"role": "assistant", "content": "I do not know."}]} for d in docs[:n]))), name=pairs)
        done["pairs_ingest_s"] = time.perf_counter() - t
    gc.collect()
    return db, name, pairs, done


def exact_top(vectors: np.ndarray, queries: np.ndarray, k: int = 10) -> np.ndarray:
    """Positions of the exact top ``k`` of each query (numpy, in chunks)."""
    best_s = np.full((len(queries), 0), -np.inf, np.float32)
    best_i = np.zeros((len(queries), 0), np.int64)
    for s in range(0, len(vectors), CHUNK):
        sims = queries @ vectors[s:s + CHUNK].T
        top = np.argpartition(-sims, min(k, sims.shape[1] - 1), axis=1)[:, :k]
        best_s = np.concatenate([best_s, np.take_along_axis(sims, top, 1)], 1)
        best_i = np.concatenate([best_i, top + s], 1)
        keep = np.argsort(-best_s, axis=1, kind="stable")[:, :k]
        best_s, best_i = np.take_along_axis(best_s, keep, 1), np.take_along_axis(best_i, keep, 1)
    return best_i


def recall(ix, queries: np.ndarray, truth: np.ndarray) -> float:
    got = [set(ix.search(q, 10)[0].tolist()) for q in queries]
    want = [set(ix.rows[t].tolist()) for t in truth]
    return float(np.mean([len(g & w) / len(w) for g, w in zip(got, want)]))


def timed(fn, queries: list[str], warm: int = 20) -> list[float]:
    for q in queries[:warm]:
        fn(q)
    times = []
    for q in queries:
        t = time.perf_counter()
        fn(q)
        times.append((time.perf_counter() - t) * 1000)
    return times


def measure(n: int, docs: list[dict], work: Path, model: str, cheap: Cheap, n_queries: int) -> dict:
    from components import insights
    from components.semantic.encoder import encode_query
    from components.semantic.index import VectorIndex, vector_index
    from components.semantic.search import search
    from components.semantic.vectors import current_set

    loads: dict[str, float] = {}
    db, name, pairs, prepared = prepare(n, docs, work, model, cheap, loads)
    out: dict = {"docs": n, "prepared": prepared}
    queries = make_queries(docs[:n], n_queries)
    vset = current_set(db, name)
    loads["index"] = os.getloadavg()[0]
    t = time.perf_counter()
    ix = vector_index(db, vset)
    out["index"] = {"kind": ix.kind, "load_s": time.perf_counter() - t, "vectors": len(ix)}
    if ix.kind == "ivf":
        out["index"] |= {"nlist": ix.nlist, "nprobe": ix.nprobe}
    loads["queries"] = os.getloadavg()[0]
    for mode in ("semantic", "hybrid"):
        times = timed(lambda q: search(db, name, q, mode=mode, k=10), queries)
        out[mode] = {"p50": pct(times, 50), "p95": pct(times, 95)}
    hits = search(db, name, queries[0], mode="hybrid", k=10)
    out["hybrid_example"] = {"hits": len(hits.hits), "total": hits.total}

    in_space = cheap(queries)
    encoded = np.stack([encode_query(vset.model, vset.model_revision, q) for q in queries])
    approx = ix if ix.kind == "ivf" else None
    if approx is None:  # the app searches this size exactly: the approximate index built for comparison
        t = time.perf_counter()
        approx = VectorIndex(None, ix.rows, ix.vectors, approximate=True)
        out["ivf_build_s"] = time.perf_counter() - t
    exact = ix if ix.kind == "exact" else VectorIndex(None, ix.rows, ix.vectors, approximate=False)
    for label, qs in (("recall10_in_space", in_space), ("recall10_encoder_queries", encoded)):
        truth = exact_top(ix.vectors, qs)
        out[label] = recall(approx, qs, truth)
        out[label + "_exact_index"] = recall(exact, qs, truth)  # 1.0 but for ties
    for label, index in (("exact", exact), ("ivf", approx)):
        times = []
        for q in in_space:
            t = time.perf_counter()
            index.search(q, 10)
            times.append((time.perf_counter() - t) * 1000)
        out[f"vector_search_{label}"] = {"p50": pct(times, 50), "p95": pct(times, 95)}
    del exact, approx
    gc.collect()

    from components.semantic import clusters

    loads["embedding_clusters"] = os.getloadavg()[0]
    t = time.perf_counter()
    emb = clusters.embedding_clusters(db, name)
    out["embedding_clusters"] = {"seconds": time.perf_counter() - t, "vectors": emb["vectors"],
                                 "clusters": emb["clusters_found"], "rows": emb["rows_in_clusters"]}
    gc.collect()

    loads["near_duplicates"] = os.getloadavg()[0]
    t = time.perf_counter()
    stats = insights.dataset_stats(db, pairs, labels=False)
    near = stats["duplicates"]["near"]
    out["near_duplicates"] = {"stats_s": time.perf_counter() - t, "duplicates_s": stats["timings_s"]["duplicates"] + stats["timings_s"]["near_duplicates"],
                              "distinct_prompts": near["distinct_prompts"], "clusters": near["clusters_found"],
                              "prompts_in_clusters": near["prompts_in_clusters"], "capped": near["capped"]}
    out["load"] = loads
    out["peak_rss_mb"] = peak_rss_mb()
    db.close()
    print(json.dumps(out), file=sys.stderr, flush=True)
    return out


def embed_rates(model: str, docs: list[dict], n: int) -> list[dict]:
    """rows/s of ``embed_dataset`` over ``n`` package summaries and over the HH-RLHF prompts."""
    from components.ingest import ingest
    from components.semantic import embed_dataset
    from components.store import Database

    tmp = Path(tempfile.mkdtemp(prefix="bench-semantic-embed-"))
    db = Database(tmp / "embed.duckdb")
    hh = tmp / "hh.jsonl"
    with gzip.open(HH, "rt") as f:
        hh.write_text("".join(itertools.islice(f, n)))
    sources = [("package summaries", _jsonl(tmp / "docs.jsonl", docs[:n]), "summaries"), ("HH-RLHF prompts", hh, "hh")]
    out = []
    for what, src, name in sources:
        ingest(db, str(src), name=name)
        load = os.getloadavg()[0]
        t = time.perf_counter()
        result = embed_dataset(db, name, model, started_by="bench", batch_size=32)
        seconds = time.perf_counter() - t
        assert result.status == "done" and result.failed == 0, result
        chars = db.scalar("SELECT avg(length(coalesce(text, array_to_string(list_transform(prompt, lambda m: m.content), "
                           "'\n\n')))) FROM records WHERE dataset = ?", [name])
        out.append({"texts": what, "rows": result.done, "seconds": seconds, "rows_per_s": result.done / seconds,
                    "mean_chars": chars, "load": load})
        print(json.dumps(out[-1]), file=sys.stderr, flush=True)
    db.close()
    return out


def table(embeds: list[dict], results: list[dict]) -> str:
    lines = ["| measure | " + " | ".join(f"{r['docs']:,}" for r in results) + " |",
             "|---|" + "---:|" * len(results)]

    def row(label, fn):
        lines.append(f"| {label} | " + " | ".join(fn(r) for r in results) + " |")

    row("vector index (app's choice)", lambda r: r["index"]["kind"] + (
        f" ({r['index']['nlist']} lists, nprobe {r['index']['nprobe']})" if r["index"]["kind"] == "ivf" else ""))
    row("index ready (read vectors, train/load)", lambda r: f"{r['index']['load_s']:.1f} s")
    row("semantic query p50 / p95 (app path, page of 10)", lambda r: f"{r['semantic']['p50']:.1f} / {r['semantic']['p95']:.1f} ms")
    row("hybrid query p50 / p95 (BM25 + semantic, RRF)", lambda r: f"{r['hybrid']['p50']:.1f} / {r['hybrid']['p95']:.1f} ms")
    row("vector search alone, exact p50 / p95", lambda r: f"{r['vector_search_exact']['p50']:.2f} / {r['vector_search_exact']['p95']:.2f} ms")
    row("vector search alone, IVF p50 / p95", lambda r: f"{r['vector_search_ivf']['p50']:.2f} / {r['vector_search_ivf']['p95']:.2f} ms")
    row("IVF recall@10 vs exact (queries in the vectors' encoding)", lambda r: f"{r['recall10_in_space']:.3f}")
    row("IVF recall@10 vs exact (queries as the encoder embeds them)", lambda r: f"{r['recall10_encoder_queries']:.3f}")
    row("near duplicates: distinct prompts / clusters", lambda r: f"{r['near_duplicates']['distinct_prompts']:,} / "
        f"{r['near_duplicates']['clusters']:,}")
    row("duplicates, exact and near: seconds (all of `dataset_stats`)", lambda r: f"{r['near_duplicates']['duplicates_s']:.1f} s "
        f"({r['near_duplicates']['stats_s']:.1f} s)")
    row("near-duplicate rows by embedding (cosine >= 0.95): vectors / clusters / rows / seconds",
        lambda r: (f"{r['embedding_clusters']['vectors']:,} / {r['embedding_clusters']['clusters']:,} / "
                   f"{r['embedding_clusters']['rows']:,} / {r['embedding_clusters']['seconds']:.1f} s")
        if "embedding_clusters" in r else "")
    row("load average at queries / near duplicates", lambda r: f"{r['load']['queries']:.1f} / {r['load']['near_duplicates']:.1f}")
    row("peak memory of the bench process", lambda r: f"{r['peak_rss_mb']:,.0f} MB")
    lines += ["", "| embedding (CPU, batch 32) | rows | mean characters | seconds | rows/s | load |", "|---|---:|---:|---:|---:|---:|"]
    for e in embeds:
        lines.append(f"| {e['texts']} | {e['rows']:,} | {e['mean_chars']:.0f} | {e['seconds']:.1f} | "
                     f"{e['rows_per_s']:.0f} | {e['load']:.1f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="200000,1000000")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--embed", type=int, default=3000)
    ap.add_argument("--work", default="/tmp/bench-semantic")
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    OUT.mkdir(parents=True, exist_ok=True)
    started, load_before = time.time(), os.getloadavg()
    docs = documents()
    gc.collect()
    gc.freeze()  # millions of dicts out of the collector's reach (see bench_search)
    model = encoder(work, [d["contents"] for d in docs[:50_000]])
    embeds = embed_rates(model, docs, args.embed) if args.embed else []
    cheap = Cheap()
    results = [measure(int(n), docs, work, model, cheap, args.queries) for n in args.sizes.split(",")]
    meta = {"load_before": load_before, "load_after": os.getloadavg(), "minutes": (time.time() - started) / 60,
            "cpus": os.cpu_count(), "queries": args.queries}
    (OUT / "results.json").write_text(json.dumps({"meta": meta, "embed": embeds, "results": results}, indent=1))
    print(table(embeds, results))
    print(f"\nload average before {load_before[0]:.1f}, after {meta['load_after'][0]:.1f}; {meta['minutes']:.1f} min")
    print(json.dumps({"meta": meta, "embed": embeds, "results": results}))


if __name__ == "__main__":
    main()
