"""Search speed at 50,000, 200,000 and 1,000,000 documents: the app's search path beside raw Pyserini
and bm25s, and the round trip through the running server.

    .venv/bin/python bench/bench_search.py [--sizes 50000,200000,1000000] [--queries 1000]

Documents are real text from this machine: the package summaries of the PyPI and npm package lists
in /work/.library/env/packages (``NAME: summary``, empty summaries left out; about 1.04 million),
shuffled with a fixed seed, the first N of them for each size. For each size, in one process:

  ingest    components.ingest.ingest() of the documents (jsonl) into a fresh database (for reference)
  build     components.search.build_index(): the Lucene index, in-process (Anserini's indexer, 2 threads)
  app       components.search.search(): query -> BM25 ranked page of 10 with a length filter (30+
            characters, which keeps most documents), the total count, highlighted snippets
  app (no filter)  the same without the filter
  Pyserini  LuceneSearcher(index).search(q, k=10) on the same index (its bag-of-words default)
  bm25s     bm25s 0.3.16 (numpy backend, k1 0.9, b 0.4, method lucene, English stop words, Snowball
            stemmer): tokenize the query, retrieve 10
  server    `python app.py serve` started on the database, then gradio_client's predict(...,
            api_name="/search") for --server-queries queries (the same filtered page of 10)

Queries are --queries random 2-3 word queries made of words of random documents (seeded); each engine
first answers 100 warm-up queries (10 for the server). Latencies are per query, wall clock, single-threaded; the
app (filtered and not) and Pyserini answer each query in turn, so that Java's compiling and the machine's load
fall on them alike. Prints a
Markdown table and writes bench/out/search/results.json.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import re
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from common import pct, peak_rss_mb, search_hits, served  # noqa: E402
from components import search  # noqa: E402
from components.ingest import ingest  # noqa: E402
from components.store import Database  # noqa: E402

PACKAGES = Path("/work/.library/env/packages")
OUT = ROOT / "bench" / "out" / "search"
STOP = {"the", "and", "for", "with", "that", "this", "from", "your", "into", "are", "was", "will", "not"}
FILTER = search.Filters(ranges={"length": (30, None)})


def documents() -> list[dict]:
    """Every non-empty package summary as a document (PyPI first, then npm), real text."""
    docs = []
    with open(PACKAGES / "pypi.tsv", encoding="utf-8", errors="replace") as f:
        next(f)
        for line in f:
            p = line.rstrip("\n").split("\t")
            if len(p) >= 5 and p[4].strip():
                year = int(p[2][:4]) if p[2][:4].isdigit() else None
                docs.append({"id": f"pypi:{p[0]}", "contents": f"{p[0]}: {p[4].strip()}", "registry": "pypi",
                             "year": year})
    with open(PACKAGES / "npm.tsv", encoding="utf-8", errors="replace") as f:
        next(f)
        for line in f:
            p = line.rstrip("\n").split("\t")
            if len(p) >= 4 and p[3].strip():
                docs.append({"id": f"npm:{p[0]}", "contents": f"{p[0]}: {p[3].strip()}", "registry": "npm",
                             "year": None})
    random.Random(0).shuffle(docs)
    return docs


def make_queries(docs: list[dict], n: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    queries = []
    while len(queries) < n:
        words = [w for w in re.findall(r"[a-z]+", rng.choice(docs)["contents"].lower()) if len(w) > 3 and w not in STOP]
        if len(words) >= 3:
            queries.append(" ".join(rng.sample(words, rng.choice([2, 3]))))
    return queries


def timed(fn, queries: list[str], warm: int = 100) -> tuple[list[float], list]:
    for q in queries[:warm]:
        fn(q)
    out, times = [], []
    for q in queries:
        t = time.perf_counter()
        out.append(fn(q))
        times.append((time.perf_counter() - t) * 1000)
    return times, out


def timed_in_turn(fns: list, queries: list[str], warm: int = 100) -> list[tuple[list[float], list]]:
    """``timed`` for several engines, each query answered by each engine in turn."""
    for q in queries[:warm]:
        for fn in fns:
            fn(q)
    out = [([], []) for _ in fns]
    for q in queries:
        for fn, (times, answers) in zip(fns, out):
            t = time.perf_counter()
            answers.append(fn(q))
            times.append((time.perf_counter() - t) * 1000)
    return out


def overlap(a: list[list], b: list[list]) -> float:
    shares = [len(set(x) & set(y)) / max(1, len(y)) for x, y in zip(a, b) if y]
    return statistics.mean(shares) if shares else float("nan")






def server_round_trip(db_path: Path, name: str, queries: list[str]) -> dict:
    from gradio_client import Client

    with served(db_path, timeout=180) as (url, proc):
        client = Client(url, verbose=False)
        times, counts = timed(lambda q: search_hits(client, name, q), queries, warm=10)
        return {"p50": pct(times, 50), "p95": pct(times, 95), "queries": len(queries), "empty": counts.count(0),
                "server_peak_rss_mb": peak_rss_mb(proc.pid)}


def run_size(n: int, docs: list[dict], queries: list[str], server_queries: int) -> dict:
    import bm25s
    import Stemmer

    folder = OUT / f"n{n}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    src = folder / "docs.jsonl"
    with open(src, "w", encoding="utf-8") as f:
        for d in docs[:n]:
            f.write(json.dumps(d) + "\n")
    db_path = folder / "bench.duckdb"
    db = Database(db_path)
    name = f"packages-{n}"
    t = time.perf_counter()
    summary = ingest(db, str(src), name=name)
    ingest_s = time.perf_counter() - t
    assert summary.rows_loaded == n, summary.describe()
    built = search.build_index(db, name)
    index_path = Path(built.path)
    index_mb = sum(p.stat().st_size for p in index_path.rglob("*") if p.is_file()) / 2**20
    row_of = {}  # source id -> row, to compare engines by document
    for row, sid in db.rows("SELECT row, source_id FROM records WHERE dataset = ?", [name]):
        row_of[sid] = row
    result = {"docs": n, "ingest_s": ingest_s, "build_s": built.seconds, "index_mb": index_mb,
              "documents": built.documents}

    from components.search.java import import_pyserini

    searcher = import_pyserini("pyserini.search.lucene").LuceneSearcher(str(index_path))
    # the three paths that run in Java are timed in turn, query by query: the JIT's compiling of
    # Lucene's code and the machine's load then weigh on each alike (one after the other, the first
    # one timed ran while Java was still compiling what the next ones found compiled)
    (app_t, app_hits), (plain_t, plain_hits), (pys_t, pys_hits) = timed_in_turn([
        lambda q: search.search(db, [name], q, k=10, filters=FILTER),
        lambda q: search.search(db, [name], q, k=10),
        lambda q: [int(h.docid.rpartition("/")[2]) for h in searcher.search(q, k=10)],
    ], queries)
    result["app"] = {"p50": pct(app_t, 50), "p95": pct(app_t, 95),
                     "empty": sum(1 for r in app_hits if not r.hits),
                     "mean_total": statistics.mean(r.total for r in app_hits)}
    result["app_unfiltered"] = {"p50": pct(plain_t, 50), "p95": pct(plain_t, 95)}
    app_rows = [[h.row for h in r.hits] for r in plain_hits]
    del app_hits, plain_hits
    result["pyserini"] = {"p50": pct(pys_t, 50), "p95": pct(pys_t, 95)}
    searcher.close()

    texts = [d["contents"] for d in docs[:n]]
    stemmer = Stemmer.Stemmer("english")
    t = time.perf_counter()
    tokens = bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False)
    retriever = bm25s.BM25(k1=0.9, b=0.4, method="lucene")
    retriever.index(tokens, show_progress=False)
    bm25s_build = time.perf_counter() - t
    del tokens, texts
    gc.collect()

    def bm25s_search(q):
        qt = bm25s.tokenize([q], stopwords="en", stemmer=stemmer, show_progress=False)
        if not qt.vocab:
            return []
        ids, _ = retriever.retrieve(qt, k=10, show_progress=False, n_threads=1)
        return [int(i) for i in ids[0]]

    b_t, b_hits = timed(bm25s_search, queries)
    # bm25s numbers documents in corpus order, as the rows are
    result["bm25s"] = {"p50": pct(b_t, 50), "p95": pct(b_t, 95), "build_s": bm25s_build}
    result["overlap_app_pyserini"] = overlap(app_rows, pys_hits)
    result["overlap_bm25s_pyserini"] = overlap(b_hits, pys_hits)
    result["app_vs_bm25s_p50"] = result["bm25s"]["p50"] / result["app"]["p50"]
    del retriever
    gc.collect()
    result["bench_peak_rss_mb"] = peak_rss_mb()
    db.close()
    print(json.dumps(result), file=sys.stderr, flush=True)
    if server_queries:
        for attempt in (1, 2):  # a server killed from outside (a shared machine) gets one more try
            try:
                result["server"] = server_round_trip(db_path, name, queries[:server_queries])
                break
            except Exception as err:  # noqa: BLE001  (reported in the results)
                result["server"] = {"failed": f"attempt {attempt}: {type(err).__name__}: {err}"}
        print(json.dumps(result["server"]), file=sys.stderr, flush=True)
    return result


def table(results: list[dict]) -> str:
    lines = [
        "| documents | index build | index size | app path p50 / p95 (filtered page of 10, highlighted) "
        "| app, no filter p50 / p95 | Pyserini `LuceneSearcher.search` p50 / p95 | bm25s p50 / p95 (build) "
        "| bm25s p50 / app p50 | server round trip p50 / p95 (gradio_client) | top-10 overlap with Pyserini: app, bm25s |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        server = r.get("server")
        lines.append(
            f"| {r['docs']:,} | {r['build_s']:.1f} s | {r['index_mb']:.0f} MB "
            f"| {r['app']['p50']:.2f} / {r['app']['p95']:.2f} ms "
            f"| {r['app_unfiltered']['p50']:.2f} / {r['app_unfiltered']['p95']:.2f} ms "
            f"| {r['pyserini']['p50']:.2f} / {r['pyserini']['p95']:.2f} ms "
            f"| {r['bm25s']['p50']:.1f} / {r['bm25s']['p95']:.1f} ms ({r['bm25s']['build_s']:.0f} s) "
            f"| {r['app_vs_bm25s_p50']:.0f}x "
            + (f"| {server['p50']:.0f} / {server['p95']:.0f} ms " if server and "p50" in server else "| failed ")
            + f"| {r['overlap_app_pyserini']:.2f}, {r['overlap_bm25s_pyserini']:.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="50000,200000,1000000")
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--server-queries", type=int, default=200)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    OUT.mkdir(parents=True, exist_ok=True)
    started = time.time()
    load_before = os.getloadavg()
    docs = documents()
    assert len(docs) >= max(sizes), f"only {len(docs):,} documents"
    # the corpus this script holds (millions of dicts) is put out of the garbage collector's reach: a
    # full collection scanning it landed on whichever engine's search was running, by chance
    gc.collect()
    gc.freeze()
    results = []
    for n in sizes:
        queries = make_queries(docs[:n], args.queries)
        results.append(run_size(n, docs, queries, args.server_queries))
        (OUT / "results.json").write_text(json.dumps({"partial": True, "results": results}, indent=1))
    meta = {"load_before": load_before, "load_after": os.getloadavg(), "minutes": (time.time() - started) / 60,
            "queries": args.queries, "server_queries": args.server_queries}
    (OUT / "results.json").write_text(json.dumps({"meta": meta, "results": results}, indent=1))
    print(table(results))
    print(f"\nload average before {load_before[0]:.1f}, after {meta['load_after'][0]:.1f}; "
          f"{meta['minutes']:.1f} min; peak RSS of this process {results[-1]['bench_peak_rss_mb']:.0f} MB, "
          f"of the server {results[-1].get('server', {}).get('server_peak_rss_mb', float('nan')):.0f} MB")
    for r in results:
        if "failed" in r.get("server", {}):
            print(f"server round trip at {r['docs']:,}: {r['server']['failed']}")


if __name__ == "__main__":
    main()
