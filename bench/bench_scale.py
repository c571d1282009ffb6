"""How every cost grows with the corpus: ingest, index build, search, statistics, Browse, the server,
at 1M, 3M and 10M documents of real text.

    .venv/bin/python bench/bench_scale.py                      # corpora, every step at every size, report
    .venv/bin/python bench/bench_scale.py --sizes 1000000,3000000
    .venv/bin/python bench/bench_scale.py report               # the table and the chart from saved results

Corpus: the package summaries of this machine's PyPI and npm lists (/work/.library/env/packages,
``NAME: summary``, about 1.07 million non-empty ones). Document i of a corpus joins 2 to 4 of them,
picked at random with numpy's generator seeded with (SEED, i // CHUNK): so the corpus of 1M is the
first million documents of the corpus of 10M, and any size is rebuilt the same. Written as
parquet ({"id", "text"}, zstd) under --work (/tmp/scale), one file per size.

Each step of each size runs in its own process (its peak RSS is that step's, from getrusage):

  ingest   components.ingest.ingest(db, corpus) into a fresh database, then CHECKPOINT
  build    components.search.build_index(db, name): time, index size on disk
  measure  the app's own paths on the built database:
           app search   components.search.search(): a page of 10, the length filter (30+ characters),
                        highlighted snippets, the exact total; also without the filter, the parts
                        of it (the total as bit sets, the page without snippets) and, on the same
                        queries, the ways it was done before (a ranking that scores every match
                        for its total, Lucene's own count, the filter as a clause of the ranking)
           statistics   components.insights.dataset_stats(db, name)
           Browse       catalogue.page(db, name, 0, 20), views.browse.page_rows (first and last page),
                        views.browse.open_row, catalogue.row_position (a deep link to the last row)
  serve    `python app.py serve --db ... --no-demo` in a subprocess: time to the first page, then
           gradio_client's predict(..., api_name="/search") (the filtered page of 10); the server's
           peak memory from /proc/PID/status VmHWM
  stats    components.insights.dataset_stats on a pairs dataset of the same size (prompt, chosen and
           rejected each a document of the same generator): the documents corpus has no statistics
  interrupt (smallest size only) an index rebuild in a subprocess, interrupted with SIGINT a fifth
           of the way in, once as the app starts Java and once with -Xrs: the previous index must
           still answer, and no half-built folder be left

Results: one JSON file per size and step under --work/results, the table printed by ``report``,
the chart written to docs/scale.html (plotly, log-log) and docs/scale.png (the same page in
Chromium, when playwright and /usr/bin/chromium are there).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from common import pct, peak_rss_mb, search_hits, served  # noqa: E402

PACKAGES = Path("/work/.library/env/packages")
SEED = 20261130
CHUNK = 1_000_000
PARTS = (2, 4)  # summaries per document, at least and at most
STOP = {"the", "and", "for", "with", "that", "this", "from", "your", "into", "are", "was", "will", "not"}
SIZES = "1000000,3000000,10000000"
STEPS = ("ingest", "build", "measure", "serve", "stats")


def say(*parts) -> None:
    print(time.strftime("%H:%M:%S"), *parts, file=sys.stderr, flush=True)






def folder_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


# -- the corpus -----------------------------------------------------------------------------------


def summaries() -> list[str]:
    """Every non-empty package summary as ``NAME: summary`` (PyPI, then npm), in file order."""
    out = []
    for file, col in (("pypi.tsv", 4), ("npm.tsv", 3)):
        with open(PACKAGES / file, encoding="utf-8", errors="replace") as f:
            next(f)
            for line in f:
                p = line.rstrip("\n").split("\t")
                if len(p) > col and p[col].strip():
                    out.append(f"{p[0]}: {p[col].strip()}")
    return out


def corpus_chunk(texts, chunk: int, n: int):
    """Documents chunk*CHUNK .. chunk*CHUNK+n-1 as an Arrow table {"id", "text"}."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    rng = np.random.default_rng([SEED, chunk])
    parts = rng.integers(PARTS[0], PARTS[1] + 1, size=CHUNK)[:n]
    picks = rng.integers(0, len(texts), size=(CHUNK, PARTS[1]))[:n]
    cols = []
    for j in range(PARTS[1]):
        col = texts.take(pa.array(picks[:, j]))
        cols.append(col if j < PARTS[0] else pc.if_else(pa.array(parts > j), col, pa.nulls(n, pa.string())))
    text = pc.binary_join_element_wise(*cols, " ", null_handling="skip")
    first = chunk * CHUNK
    ids = pc.binary_join_element_wise("doc-", pc.utf8_lpad(pa.array(np.arange(first, first + n)).cast(pa.string()), 8, "0"), "")
    return pa.table({"id": ids, "text": text})


def build_corpus(work: Path, size: int) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = work / f"corpus-{size}.parquet"
    if path.exists() and pq.ParquetFile(path).metadata.num_rows == size:
        return path
    texts = pa.array(summaries(), pa.string())
    say(f"corpus of {size:,} documents from {len(texts):,} summaries -> {path}")
    part = path.with_suffix(".part")
    with pq.ParquetWriter(part, pa.schema([("id", pa.string()), ("text", pa.string())]), compression="zstd") as w:
        for chunk in range((size + CHUNK - 1) // CHUNK):
            w.write_table(corpus_chunk(texts, chunk, min(CHUNK, size - chunk * CHUNK)), row_group_size=250_000)
            say(f"  {min(size, (chunk + 1) * CHUNK):,} of {size:,} documents written")
    part.rename(path)
    return path


def make_queries(n: int, seed: int = 1) -> list[str]:
    """2-3 word queries made of words of random summaries (the text the documents are made of)."""
    texts = summaries()
    rng = random.Random(seed)
    queries = []
    while len(queries) < n:
        words = [w for w in re.findall(r"[a-z]+", rng.choice(texts).lower()) if len(w) > 3 and w not in STOP]
        if len(words) >= 3:
            queries.append(" ".join(rng.sample(words, rng.choice([2, 3]))))
    return queries


# -- the steps (each in its own process) ----------------------------------------------------------


def paths(work: Path, size: int) -> tuple[Path, str]:
    return work / f"n{size}" / "scale.duckdb", f"scale-{size}"


def step_ingest(work: Path, size: int) -> dict:
    from components.ingest import ingest
    from components.store import Database

    db_path, name = paths(work, size)
    shutil.rmtree(db_path.parent, ignore_errors=True)
    db_path.parent.mkdir(parents=True)
    corpus = build_corpus(work, size)
    db = Database(db_path)
    marks = []
    started = time.perf_counter()

    def progress(frac, desc):
        marks.append((round(time.perf_counter() - started, 2), desc))
        say(f"  [{frac:4.0%}] {desc}")

    summary = ingest(db, str(corpus), name=name, progress=progress)
    committed = time.perf_counter() - started
    db.execute_checkpoint()
    seconds = time.perf_counter() - started
    assert summary.rows_loaded == size, summary.describe()
    db.close()
    return {"seconds": seconds, "commit_seconds": committed, "rows_per_s": size / seconds,
            "peak_rss_mb": peak_rss_mb(), "db_mb": db_path.stat().st_size / 2**20, "marks": marks}


def step_build(work: Path, size: int) -> dict:
    from components import search
    from components.store import Database

    db_path, name = paths(work, size)
    db = Database(db_path)
    last = [0.0]

    def progress(frac, desc):
        if frac - last[0] >= 0.05 or frac >= 1:
            last[0] = frac
            say(f"  [{frac:4.0%}] {desc}")

    started = time.perf_counter()
    built = search.build_index(db, name, progress=progress)
    seconds = time.perf_counter() - started
    db.close()
    return {"seconds": seconds, "build_seconds": built.seconds, "documents": built.documents,
            "index_mb": folder_mb(Path(built.path)), "peak_rss_mb": peak_rss_mb()}


def timed(fn, items, warm: int) -> tuple[list[float], list]:
    for x in items[:warm]:
        fn(x)
    times, out = [], []
    for x in items:
        t = time.perf_counter()
        out.append(fn(x))
        times.append((time.perf_counter() - t) * 1000)
    return times, out


def step_measure(work: Path, size: int, n_queries: int) -> dict:
    from components import catalogue, insights, search
    from components.search import engine, total
    from components.search.filters import combine, filter_clauses
    from components.search.index import open_searcher
    from components.search.java import LOCK, java
    from components.search.query import parse_query
    from components.store import Database
    from components.views import browse

    db_path, name = paths(work, size)
    t = time.perf_counter()
    db = Database(db_path)
    out = {"open_s": time.perf_counter() - t}
    queries = make_queries(n_queries)
    filt = search.Filters(ranges={"length": (30, None)})
    t = time.perf_counter()
    search.search(db, [name], queries[0], k=10, filters=filt)
    out["first_search_s"] = time.perf_counter() - t
    say(f"  first search (Java start, index open) {out['first_search_s']:.1f} s")

    app_t, app = timed(lambda q: search.search(db, [name], q, k=10, filters=filt), queries, warm=50)
    out["app"] = {"p50": pct(app_t, 50), "p95": pct(app_t, 95), "mean_total": statistics.mean(r.total for r in app),
                  "empty": sum(1 for r in app if not r.hits)}
    say(f"  app search p50 {out['app']['p50']:.1f} ms, p95 {out['app']['p95']:.1f} ms, "
        f"mean total {out['app']['mean_total']:,.0f}")
    plain_t, _ = timed(lambda q: search.search(db, [name], q, k=10), queries, warm=20)
    out["app_unfiltered"] = {"p50": pct(plain_t, 50), "p95": pct(plain_t, 95)}
    bare_t, _ = timed(lambda q: search.search(db, [name], q, k=10, filters=filt, snippets=False), queries, warm=20)
    out["app_no_snippets"] = {"p50": pct(bare_t, 50), "p95": pct(bare_t, 95)}
    plain_bare_t, _ = timed(lambda q: search.search(db, [name], q, k=10, snippets=False), queries, warm=20)
    out["app_no_filter_no_snippets"] = {"p50": pct(plain_bare_t, 50), "p95": pct(plain_bare_t, 95)}

    # where the time goes, and the way it was done before (side by side, same queries, same index):
    # the filtered query ranked by scoring every match (the exact total from the ranking), Lucene's
    # own count, the bit-set total, the top 10 with the filter as a clause and with the filter
    # applied after ranking (engine.page, what the app runs)
    statuses = search.searchable(db, [name])
    searcher = open_searcher(statuses)
    with LOCK:
        words = [parse_query(q, "contents", "words").lucene for q in queries]
        clauses = filter_clauses(db, [name], filt)
        built = [combine(w, clauses) for w in words]

    def score_every_match(q):
        with LOCK:
            J = java()
            collector = J.TopFieldCollector.create(J.sort, 10, 2**31 - 1)
            searcher.search(q, J.cast("org.apache.lucene.search.Collector", collector))
            return collector.getTotalHits()

    def lucene_count(q):
        with LOCK:
            return searcher.count(q)

    before_t, before = timed(score_every_match, built, warm=20)
    count_t, counts = timed(lucene_count, built, warm=20)
    bits_t, bit_totals = timed(lambda w: total.exact_total(searcher, w, clauses), words, warm=20)
    assert before == counts == bit_totals, "the totals disagree"
    clause_t, _ = timed(lambda q: engine.ranked(searcher, q, 0, 10), built, warm=20)
    page_t, _ = timed(lambda w: engine.page(searcher, w, clauses, 0, 10), words, warm=20)
    (_, length_filter), = clauses
    filter_t, _ = timed(lambda _: lucene_count(length_filter), queries[:100], warm=10)
    out["filter_alone"] = {"p50": pct(filter_t, 50), "p95": pct(filter_t, 95)}
    for key, ts in (("ranked_exact", before_t), ("count_only", count_t), ("bitset_total", bits_t),
                    ("top10_filter_clause", clause_t), ("page_no_snippets", page_t)):
        out[key] = {"p50": pct(ts, 50), "p95": pct(ts, 95)}
    say(f"  before: ranked + exact total p95 {out['ranked_exact']['p95']:.1f} ms; Lucene count p95 "
        f"{out['count_only']['p95']:.1f} ms; bit-set total p95 {out['bitset_total']['p95']:.1f} ms; top 10 "
        f"with the filter as a clause p95 {out['top10_filter_clause']['p95']:.1f} ms; engine.page p95 "
        f"{out['page_no_snippets']['p95']:.1f} ms")

    t = time.perf_counter()
    try:
        stats = insights.dataset_stats(db, name)
        out["stats"] = {"seconds": time.perf_counter() - t, "rows": stats.get("rows")}
    except insights.StatsError as err:
        out["stats"] = {"seconds": time.perf_counter() - t, "refused": str(err)}
    say(f"  statistics: {out['stats']}")

    def best_of(fn, n=5):
        times = []
        for _ in range(n):
            t = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t) * 1000)
        return {"first_ms": times[0], "median_ms": statistics.median(times)}

    pages = (size + browse.PAGE_SIZE - 1) // browse.PAGE_SIZE
    out["browse"] = {
        "db_page_first": best_of(lambda: catalogue.page(db, name, 0, 20)),
        "page_rows_first": best_of(lambda: browse.page_rows(db, name, 1)),
        "page_rows_last": best_of(lambda: browse.page_rows(db, name, pages)),
        "open_row": best_of(lambda: browse.open_row(db, name, size - 1)),
        "row_position_last": best_of(lambda: catalogue.row_position(db, name, size - 1)),
    }
    say("  browse: " + ", ".join(f"{k} {v['median_ms']:.0f} ms" for k, v in out["browse"].items()))
    out["peak_rss_mb"] = peak_rss_mb()
    db.close()
    return out




def step_serve(work: Path, size: int, n_queries: int) -> dict:
    from gradio_client import Client

    db_path, name = paths(work, size)
    queries = make_queries(n_queries, seed=2)
    log = open(db_path.parent / "server.log", "w")
    started = time.perf_counter()
    try:
        with served(db_path, log=log, timeout=300) as (url, proc):
            out = {"start_s": time.perf_counter() - started, "rss_after_start_mb": peak_rss_mb(proc.pid)}
            say(f"  server up in {out['start_s']:.1f} s, {out['rss_after_start_mb']:.0f} MB")
            client = Client(url, verbose=False)
            times, counts = timed(lambda q: search_hits(client, name, q), queries, warm=10)
            out |= {"p50": pct(times, 50), "p95": pct(times, 95), "queries": len(queries), "empty": counts.count(0),
                    "server_peak_rss_mb": peak_rss_mb(proc.pid)}
            say(f"  server round trip p50 {out['p50']:.0f} ms, p95 {out['p95']:.0f} ms, "
                f"server peak {out['server_peak_rss_mb']:.0f} MB")
            return out
    finally:
        log.close()


def interrupt_once(db_path: Path, name: str, java_options: list[str]) -> dict:
    code = (f"import sys; sys.path.insert(0, {str(ROOT)!r})\n"
            + (f"import jnius_config; jnius_config.add_options(*{java_options!r})\n" if java_options else "")
            + "from components import search\nfrom components.store import Database\n"
            f"db = Database({str(db_path)!r})\n"
            f"search.build_index(db, {name!r}, progress=lambda f, d: print(f, flush=True))\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in proc.stdout:
        if float(line) >= 0.2:
            break
    sent = time.perf_counter()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=600)
    return {"java_options": java_options, "exit_code": proc.returncode, "stopped_after_s": time.perf_counter() - sent,
            "last_error_line": (err.strip().splitlines() or [""])[-1]}


def step_interrupt(work: Path, size: int) -> dict:
    """Rebuild the index in a subprocess, SIGINT it a fifth of the way in; the old index must still
    answer. Once as the app starts Java, once with -Xrs (Java leaves SIGINT to Python)."""
    from components import search
    from components.store import Database

    db_path, name = paths(work, size)
    out = {}
    for key, options in (("as_is", []), ("xrs", ["-Xrs"])):
        run = interrupt_once(db_path, name, options)
        db = Database(db_path)
        root = search.index_root(db)
        run["left_over"] = sorted(p.name for p in root.iterdir() if p.name.startswith("."))
        run["state_after"] = search.index_status(db, name).state
        run["still_answers"] = bool(search.search(db, [name], "python library", k=10).hits)
        db.close()
        for p in root.iterdir():  # what the run left, so that the next one starts clean
            if p.name.startswith("."):
                shutil.rmtree(p)
        out[key] = run
        say(f"  interrupted ({key}): {run}")
    return out


def build_pairs(work: Path, size: int) -> Path:
    """A pairs corpus from the same text: prompt, chosen and rejected each one document of the
    documents corpus's generator (chunks SEED+1 .. for the prompt, +2 chosen, +3 rejected)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = work / f"pairs-{size}.parquet"
    if path.exists() and pq.ParquetFile(path).metadata.num_rows == size:
        return path
    texts = pa.array(summaries(), pa.string())
    part = path.with_suffix(".part")
    schema = pa.schema([(c, pa.string()) for c in ("prompt", "chosen", "rejected")])
    with pq.ParquetWriter(part, schema, compression="zstd") as w:
        for chunk in range((size + CHUNK - 1) // CHUNK):
            n = min(CHUNK, size - chunk * CHUNK)
            cols = [corpus_chunk(texts, 1000 * (k + 1) + chunk, n).column("text") for k in range(3)]
            w.write_table(pa.table(dict(zip(schema.names, cols))), row_group_size=250_000)
            say(f"  {min(size, (chunk + 1) * CHUNK):,} of {size:,} pairs written")
    part.rename(path)
    return path


def step_stats(work: Path, size: int) -> dict:
    """dataset_stats over a pairs dataset of ``size`` rows (the documents corpus has no statistics);
    the pairs are ingested by a child process, so that this one's peak memory is the statistics'."""
    from components import insights
    from components.store import Database

    source = build_pairs(work, size)
    db_path = work / f"pairs-n{size}" / "pairs.duckdb"
    shutil.rmtree(db_path.parent, ignore_errors=True)
    db_path.parent.mkdir(parents=True)
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {str(ROOT)!r})\n"
                    "from components.ingest import ingest\nfrom components.store import Database\n"
                    f"ingest(Database({str(db_path)!r}), {str(source)!r}, name='pairs')"], check=True)
    out = {"ingest_s": time.perf_counter() - t}
    db = Database(db_path)
    t = time.perf_counter()
    stats = insights.dataset_stats(db, "pairs")
    out |= {"cold_s": time.perf_counter() - t, "timings": stats["timings_s"], "rows": stats["rows"]}
    t = time.perf_counter()
    insights.dataset_stats(db, "pairs")
    out |= {"cached_s": time.perf_counter() - t, "peak_rss_mb": peak_rss_mb()}
    say(f"  statistics of {size:,} pairs: cold {out['cold_s']:.1f} s, cached {out['cached_s'] * 1000:.0f} ms, "
        f"peak {out['peak_rss_mb']:,.0f} MB")
    db.close()
    shutil.rmtree(db_path.parent, ignore_errors=True)
    return out


def run_step(step: str, work: Path, size: int, args) -> dict:
    if step == "ingest":
        return step_ingest(work, size)
    if step == "build":
        return step_build(work, size)
    if step == "measure":
        return step_measure(work, size, args.queries)
    if step == "serve":
        return step_serve(work, size, args.server_queries)
    if step == "interrupt":
        return step_interrupt(work, size)
    if step == "stats":
        return step_stats(work, size)
    raise SystemExit(f"unknown step {step}")


# -- the report -----------------------------------------------------------------------------------


def load(work: Path) -> dict[int, dict]:
    out: dict[int, dict] = {}
    for f in sorted((work / "results").glob("*.json")):
        m = re.fullmatch(r"n(\d+)-(\w+)\.json", f.name)
        if m:
            out.setdefault(int(m.group(1)), {})[m.group(2)] = json.loads(f.read_text())
    return dict(sorted(out.items()))


ROWS = [  # (label, step, path, format)
    ("ingest: seconds (CPU seconds)", "ingest", "seconds|cpu_s", "{:.1f} s ({:.0f})"),
    ("ingest: documents/s", "ingest", "rows_per_s", "{:,.0f}"),
    ("ingest: peak memory", "ingest", "peak_rss_mb", "{:,.0f} MB"),
    ("database file", "ingest", "db_mb", "{:,.0f} MB"),
    ("index build: seconds (CPU seconds, both cores)", "build", "seconds|cpu_s", "{:.1f} s ({:.0f})"),
    ("index size", "build", "index_mb", "{:,.0f} MB"),
    ("index build: peak memory", "build", "peak_rss_mb", "{:,.0f} MB"),
    ("first search (Java start, index open)", "measure", "first_search_s", "{:.1f} s"),
    ("app search p50 (page of 10, filter, highlighted, exact total)", "measure", "app.p50", "{:.1f} ms"),
    ("app search p95", "measure", "app.p95", "{:.1f} ms"),
    ("app search without the filter p50 / p95", "measure", "app_unfiltered.p50|app_unfiltered.p95", "{:.1f} / {:.1f} ms"),
    ("app search without snippets p50 / p95", "measure", "app_no_snippets.p50|app_no_snippets.p95", "{:.1f} / {:.1f} ms"),
    ("app search without filter or snippets p50 / p95", "measure", "app_no_filter_no_snippets.p50|app_no_filter_no_snippets.p95", "{:.1f} / {:.1f} ms"),
    ("the length filter alone, counted p50 / p95", "measure", "filter_alone.p50|filter_alone.p95", "{:.3f} / {:.3f} ms"),
    ("  of it: total and page, no snippets (`engine.page`) p50 / p95", "measure", "page_no_snippets.p50|page_no_snippets.p95", "{:.1f} / {:.1f} ms"),
    ("  of it: the exact total as bit sets p50 / p95", "measure", "bitset_total.p50|bitset_total.p95", "{:.1f} / {:.1f} ms"),
    ("  before: ranking that scores every match, for its total p50 / p95", "measure", "ranked_exact.p50|ranked_exact.p95", "{:.1f} / {:.1f} ms"),
    ("  before: Lucene's own count p50 / p95", "measure", "count_only.p50|count_only.p95", "{:.1f} / {:.1f} ms"),
    ("  before: top 10 with the filter as a clause p50 / p95", "measure", "top10_filter_clause.p50|top10_filter_clause.p95", "{:.1f} / {:.1f} ms"),
    ("mean exact total per query", "measure", "app.mean_total", "{:,.0f}"),
    ("statistics of a documents dataset (`dataset_stats` refuses: pairs only)", "measure", "stats.seconds", "{:.3f} s"),
    ("statistics of as many pairs: `dataset_stats` cold / cached", "stats", "cold_s|cached_s", "{:.1f} s / {:.3f} s"),
    ("statistics of as many pairs: peak memory of the process", "stats", "peak_rss_mb", "{:,.0f} MB"),
    ("Browse: `catalogue.page(db, name, 0, 20)`", "measure", "browse.db_page_first.median_ms", "{:.0f} ms"),
    ("Browse: `page_rows`, first page", "measure", "browse.page_rows_first.median_ms", "{:.0f} ms"),
    ("Browse: `page_rows`, last page", "measure", "browse.page_rows_last.median_ms", "{:.0f} ms"),
    ("Browse: `open_row` (last row)", "measure", "browse.open_row.median_ms", "{:.0f} ms"),
    ("Browse: `row_position` (deep link, last row)", "measure", "browse.row_position_last.median_ms", "{:.0f} ms"),
    ("measure process peak memory", "measure", "peak_rss_mb", "{:,.0f} MB"),
    ("server: start to first page", "serve", "start_s", "{:.1f} s"),
    ("server round trip `/search` p50 / p95", "serve", "p50|p95", "{:.0f} / {:.0f} ms"),
    ("server peak memory (VmHWM)", "serve", "server_peak_rss_mb", "{:,.0f} MB"),
    ("load average when the ingest started", "ingest", "load_before", "{:.1f}"),
]


def _get(d: dict, path: str):
    for part in path.split("."):
        if not isinstance(d, dict) or part not in d:
            return None
        d = d[part]
    return d


def table(results: dict[int, dict]) -> str:
    sizes = list(results)
    lines = ["| measure | " + " | ".join(f"{n:,}" for n in sizes) + " |", "|---|" + "---:|" * len(sizes)]
    for label, step, path, fmt in ROWS:
        cells = []
        for n in sizes:
            values = [_get(results[n].get(step, {}), p) for p in path.split("|")]
            cells.append("—" if any(v is None for v in values) else fmt.format(*values))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


CURVES = [  # (name, step, path, unit)
    ("ingest (s)", "ingest", "seconds", "s"),
    ("index build (s)", "build", "seconds", "s"),
    ("app search p95 (ms)", "measure", "app.p95", "ms"),
    ("app search p95 without snippets (ms)", "measure", "app_no_snippets.p95", "ms"),
    ("server round trip p95 (ms)", "serve", "p95", "ms"),
    ("Browse first page (ms)", "measure", "browse.page_rows_first.median_ms", "ms"),
    ("Browse last page (ms)", "measure", "browse.page_rows_last.median_ms", "ms"),
    ("statistics of as many pairs, cold (s)", "stats", "cold_s", "s"),
    ("index size (MB)", "build", "index_mb", "MB"),
    ("server peak memory (MB)", "serve", "server_peak_rss_mb", "MB"),
    ("ingest peak memory (MB)", "ingest", "peak_rss_mb", "MB"),
]


def chart(results: dict[int, dict], html_path: Path, png_path: Path) -> None:
    import plotly.graph_objects as go

    fig = go.Figure()
    sizes = list(results)
    for name, step, path, _ in CURVES:
        ys = [_get(results[n].get(step, {}), path) for n in sizes]
        xs = [n for n, y in zip(sizes, ys) if y]
        if xs:
            fig.add_trace(go.Scatter(x=xs, y=[y for y in ys if y], mode="lines+markers", name=name.strip()))
    if len(sizes) > 1:  # what a cost growing in proportion to the corpus would look like
        fig.add_trace(go.Scatter(x=[sizes[0], sizes[-1]], y=[100, 100 * sizes[-1] / sizes[0]], mode="lines",
                                 name="linear growth (for reference)", line={"dash": "dot", "color": "gray"}))
    fig.update_xaxes(type="log", title="documents", tickvals=sizes, ticktext=[f"{n / 1e6:g}M" for n in sizes])
    fig.update_yaxes(type="log", title="cost (seconds, milliseconds or megabytes, as named)")
    fig.update_layout(title="Cost against corpus size (log-log), 2-core VM", width=1000, height=620,
                      template="plotly_white")
    fig.write_html(html_path, include_plotlyjs="cdn")
    try:  # a PNG of the same figure, drawn by Chromium (kaleido is not installed here)
        from playwright.sync_api import sync_playwright
    except ImportError:
        return
    if not Path("/usr/bin/chromium").exists():
        return
    inline = png_path.with_suffix(".tmp.html")
    fig.write_html(inline, include_plotlyjs=True)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium",
                                        args=["--headless", "--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1020, "height": 640})
            page.goto(inline.as_uri())
            page.wait_for_selector(".main-svg")
            page.screenshot(path=str(png_path))
            browser.close()
    finally:
        inline.unlink(missing_ok=True)


def report(work: Path) -> None:
    results = load(work)
    print(table(results))
    for n, r in results.items():
        if "interrupt" in r:
            print(f"\ninterrupted rebuild at {n:,}: {json.dumps(r['interrupt'])}")
        if "ingest" in r:
            print(f"\ningest marks at {n:,}: {r['ingest']['marks']}")
    chart(results, ROOT / "docs" / "scale.html", ROOT / "docs" / "scale.png")
    print("\nchart: docs/scale.html, docs/scale.png")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("command", nargs="?", default="all", choices=["all", "corpus", "step", "report"])
    ap.add_argument("--sizes", default=SIZES)
    ap.add_argument("--steps", default=",".join(STEPS) + ",interrupt")
    ap.add_argument("--size", type=int, help="with `step`: the corpus size")
    ap.add_argument("--step", help="with `step`: ingest, build, measure, serve, stats or interrupt")
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument("--server-queries", type=int, default=100)
    ap.add_argument("--work", default="/tmp/scale")
    args = ap.parse_args()
    work = Path(args.work)
    (work / "results").mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("STUDIO_INDEXES", "")  # indexes beside each database file
    if args.command == "report":
        return report(work)
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.command == "corpus":
        for n in sizes:
            build_corpus(work, n)
        return
    if args.command == "step":
        load_before = os.getloadavg()[0]
        out = run_step(args.step, work, args.size, args)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        out |= {"cpu_s": usage.ru_utime + usage.ru_stime, "load_before": load_before,
                "load_after": os.getloadavg()[0], "at": time.strftime("%Y-%m-%d %H:%M")}
        (work / "results" / f"n{args.size}-{args.step}.json").write_text(json.dumps(out, indent=1))
        say(f"{args.step} at {args.size:,}: done")
        return
    steps = args.steps.split(",")
    for n in sizes:
        build_corpus(work, n)
        for step in steps:
            if step == "interrupt" and n != min(sizes):
                continue
            say(f"== {step} at {n:,} (load average {os.getloadavg()[0]:.1f})")
            rc = subprocess.call([sys.executable, __file__, "step", "--step", step, "--size", str(n),
                                  "--work", str(work), "--queries", str(args.queries),
                                  "--server-queries", str(args.server_queries)])
            if rc:
                say(f"{step} at {n:,} failed with exit code {rc}")
                break
    report(work)


if __name__ == "__main__":
    main()
