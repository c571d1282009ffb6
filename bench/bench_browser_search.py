"""Search in a real browser at 200,000 documents: Enter in the query box -> the results painted.

    .venv/bin/python bench/bench_browser_search.py [--docs 200000] [--queries 40] [--warm 10]

The documents and queries are those of bench/bench_search.py (real package summaries from this
machine, seeded 2-3 word queries). The script ingests the first --docs documents into a fresh
database and builds its index with the app's own functions, serves it with `python app.py serve`,
and drives Debian's Chromium with Playwright: for each query it fills the Search box and presses
Enter; the page timestamps the keydown and the moment the results of that query are in the DOM
(``#search-results .sr-list[data-query=...]``), plus one animation frame (painted). The server's own
time is the "· N ms" the summary prints. Prints a Markdown table and writes
bench/out/browser_search/results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))

from bench_search import documents, make_queries, pct  # noqa: E402
from common import served  # noqa: E402
from helpers import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

from components import search  # noqa: E402
from components.ingest import ingest  # noqa: E402
from components.store import Database  # noqa: E402

OUT = ROOT / "bench" / "out" / "browser_search"

INSTRUMENT = """
() => {
  window.__bench = [];
  window.__pending = null;
  const box = document.querySelector('#search-query textarea');
  box.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') window.__pending = {q: box.value, at: performance.now()};
  }, true);
  const results = document.querySelector('#search-results');
  new MutationObserver(() => {
    const p = window.__pending;
    const shown = results.querySelector('[data-query]');
    if (!p || !shown || shown.dataset.query !== p.q) return;
    window.__pending = null;
    const dom = performance.now();
    const summary = document.querySelector('#search-summary').innerText;
    requestAnimationFrame(() => window.__bench.push({q: p.q, dom: dom - p.at, painted: performance.now() - p.at,
                                                     summary}));
  }).observe(results, {childList: true, subtree: true, characterData: true});
}
"""


def prepare(n: int, folder: Path) -> tuple[Path, str, dict]:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    docs = documents()[:n]
    src = folder / "docs.jsonl"
    with open(src, "w", encoding="utf-8") as f:
        for d in docs:
            f.write(json.dumps(d) + "\n")
    db_path = folder / "bench.duckdb"
    db = Database(db_path)
    name = f"packages-{n}"
    loaded = ingest(db, str(src), name=name)
    assert loaded.rows_loaded == n, loaded.describe()
    built = search.build_index(db, name)
    db.close()
    return db_path, name, {"docs": n, "build_s": built.seconds, "queries_from": docs}


def measure(url: str, name: str, queries: list[str], warm: int) -> list[dict]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url + f"?tab=search&datasets={name}")
        page.wait_for_selector("#search-query textarea", timeout=60_000)
        page.wait_for_function("() => document.querySelector('#search-datasets')?.innerText.includes("
                               f"{json.dumps(name)})", timeout=60_000)
        page.evaluate(INSTRUMENT)
        box = page.locator("#search-query textarea")
        for i, q in enumerate(queries):
            box.fill(q)
            box.press("Enter")
            page.wait_for_function(f"() => window.__bench.length >= {i + 1}", timeout=60_000)
            page.wait_for_timeout(100)
        samples = page.evaluate("window.__bench")
        browser.close()
    return samples[warm:]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=200_000)
    ap.add_argument("--queries", type=int, default=40, help="measured queries (after --warm ones)")
    ap.add_argument("--warm", type=int, default=10)
    args = ap.parse_args()
    started = time.time()
    load_before = os.getloadavg()
    db_path, name, info = prepare(args.docs, OUT / f"n{args.docs}")
    queries = make_queries(info.pop("queries_from"), args.queries + args.warm, seed=7)
    with served(db_path, timeout=180) as (url, _proc):
        samples = measure(url, name, queries, args.warm)
    painted = [s["painted"] for s in samples]
    dom = [s["dom"] for s in samples]
    server = []
    for s in samples:
        for part in s["summary"].split("·"):
            if part.strip().endswith(" ms"):
                server.append(float(part.strip()[:-3]))
    result = {**info, "samples": samples, "painted_p50": statistics.median(painted), "painted_p95": pct(painted, 95),
              "dom_p50": statistics.median(dom), "server_p50": statistics.median(server) if server else None,
              "server_p95": pct(server, 95) if server else None, "measured": len(samples),
              "load_before": load_before, "load_after": os.getloadavg(), "minutes": (time.time() - started) / 60}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "results.json").write_text(json.dumps(result, indent=1))
    print("| documents | queries measured | Enter -> painted p50 / p95 | Enter -> in DOM p50 | server's search p50 / p95 |")
    print("|---:|---:|---:|---:|---:|")
    print(f"| {args.docs:,} | {len(samples)} | {result['painted_p50']:.0f} / {result['painted_p95']:.0f} ms "
          f"| {result['dom_p50']:.0f} ms | {result['server_p50']:.1f} / {result['server_p95']:.1f} ms |")
    print(f"\nload average before {load_before[0]:.1f}, after {result['load_after'][0]:.1f}; "
          f"index build {info['build_s']:.1f} s; {result['minutes']:.1f} min")


if __name__ == "__main__":
    main()
