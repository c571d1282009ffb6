"""Labeling under load, and the key press -> next pair time in a real browser.

    .venv/bin/python bench/bench_label.py [--clients 16] [--per-client 100] [--presses 60] [--hits 30]
                                          [--browser-only] [--schema binary|graded|ranking|all]

1. Starts the real server (`python app.py serve`) on a fresh database file holding a dataset of pairs:
   the UltraFeedback sample in ../shared/data when it is there (998 pairs of real text), else 1,000
   generated pairs.
2. In Chromium (Playwright), one annotator labels --presses pairs with the keyboard alone; for each key
   the page records the keydown time and the time the next pair was on screen (the title names a new
   row, then one animation frame so that it is painted).
   --schema says which label schema the keys answer (default binary; all: each in turn, one dataset
   each): binary (keys 1-4), graded (a 7-point scale with two aspects, helpfulness and safety: keys 1-7,
   every other pair after Tab and a key per aspect), ranking (four responses per prompt, UltraFeedback's
   raw rows with per-aspect ratings made from the same sample: three keys rank them, the third sends).
   The time runs from the key that sends the label. Then --hits search hits are opened from the Browse tab the way a click on a result link opens
   them: the time from the click to the pair's title painted in Compare (no page reload).
3. --clients gradio_client clients, each in its own thread (one process) with its own annotator name,
   label --per-client pairs each as fast as they can: `/next_pair` then `/label`, timing each round
   trip, and the CPU time the server and the clients spent. gradio_client sometimes drops a call when
   its event stream closes under load (CancelledError); the client then retries the way a careful
   script would: a read again, a label only after `/next_pair` shows it did not land.
4. Stops the server, opens the file and checks the log: exactly clients x per-client events from the
   clients, one per (annotator, pair), each the label that client sent for the pair it was given, and
   exactly --presses events from the browser. Nothing lost, nothing doubled.

Prints a Markdown table and writes bench/out/label.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import CancelledError
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from components.store import Database  # noqa: E402
from helpers import free_port, wait_http  # noqa: E402

ULTRAFEEDBACK = ROOT.parent / "shared" / "data" / "ultrafeedback-binarized-sample" / "train_clean.jsonl"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
LABELS = ["chosen", "rejected", "tie", "both_bad", "skip"]
KEYS = {"chosen": "1", "rejected": "2", "tie": "3", "both_bad": "4"}
SCHEMAS = ("binary", "graded", "ranking")
DATASETS = {"binary": "bench", "graded": "bench_graded", "ranking": "bench_ranking"}
GRADED = {"overall": 7, "aspects": ["helpfulness", "safety"]}


def keys_for(schema: str, i: int) -> list[str]:
    """The keys that label the i-th pair under ``schema``; the last one sends the label."""
    if schema == "graded":
        grade = str(i % 7 + 1)
        return ["Tab", "1", "3", grade] if i % 2 else [grade]
    if schema == "ranking":
        order = "1234"[i % 4:] + "1234"[:i % 4]
        return list(order[:3])  # the fourth goes last by itself
    return [list(KEYS.values())[i % len(KEYS)]]


def ranking_source(src: Path, folder: Path) -> Path:
    """Four responses per prompt in UltraFeedback's raw shape, made of the sample's pairs: each row's
    chosen and rejected and the next rows' (real text), with overall scores and aspect ratings."""
    rows = [json.loads(line) for line in open(src, encoding="utf-8") if line.strip()]
    path = folder / "ranking.jsonl"
    with open(path, "w", encoding="utf-8") as f:
        for i, r in enumerate(rows):
            texts = [r["chosen"], r["rejected"], rows[(i + 1) % len(rows)]["chosen"], rows[(i + 2) % len(rows)]["rejected"]]
            if any(not isinstance(t, str) for t in texts) or not isinstance(r.get("prompt"), str):
                continue
            f.write(json.dumps({"instruction": r["prompt"], "completions": [
                {"response": t, "overall_score": float(9 - 2 * j),
                 "annotations": {"helpfulness": {"Rating": str(5 - j), "Rationale": "-"},
                                 "honesty": {"Rating": str(1 + j), "Rationale": "-"}}}
                for j, t in enumerate(texts)]}) + "\n")
    return path


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(q / 100 * (len(xs) - 1))))]


def source(folder: Path) -> tuple[Path, str]:
    if ULTRAFEEDBACK.exists():
        return ULTRAFEEDBACK, "the UltraFeedback sample in ../shared/data"
    path = folder / "pairs.jsonl"
    rng = random.Random(7)
    words = "the a model answer question because which however therefore data label pair response".split()
    with open(path, "w") as f:
        for i in range(1000):
            text = lambda n: " ".join(rng.choice(words) for _ in range(n))  # noqa: E731
            f.write(json.dumps({"prompt": f"{i}: {text(20)}?", "chosen": text(120), "rejected": text(90)}) + "\n")
    return path, "generated pairs"


def start_server(db_path: Path, port: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "app.py"), "serve", "--db", str(db_path), "--port", str(port), "--no-demo"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/config", timeout=120, proc=proc)
    except (RuntimeError, TimeoutError) as err:
        proc.kill()
        raise SystemExit(f"the server did not start: {err}") from None
    return proc


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def load_test(url: str, dataset: str, clients: int, per_client: int) -> dict:
    from gradio_client import Client

    label_ms: list[float] = []
    next_ms: list[float] = []
    sent: dict[str, dict[int, str]] = {}
    errors: list[str] = []
    retries: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(clients)

    def run(k: int) -> None:
        name = f"bench-{k:02d}"
        rng = random.Random(k)
        mine: dict[int, str] = {}
        lt, nt = [], []
        client = Client(url, verbose=False)

        def call(*args, api_name):
            """One call; when gradio_client drops it (its event stream closed: CancelledError), a new client."""
            nonlocal client
            try:
                return client.predict(*args, api_name=api_name)
            except CancelledError:
                with lock:
                    retries.append(f"{name} {api_name}")
                client = Client(url, verbose=False)
                raise

        try:
            barrier.wait()
            for _ in range(per_client):
                t0 = time.perf_counter()
                for attempt in range(3):
                    try:
                        row = call(dataset, name, api_name="/next_pair")  # a read: safe to repeat
                        break
                    except CancelledError:
                        if attempt == 2:
                            raise
                t1 = time.perf_counter()
                label = rng.choice(LABELS)
                for attempt in range(3):
                    try:
                        call(dataset, row, label, name, api_name="/label")
                        break
                    except CancelledError:
                        # did it land? (labels of this annotator come from this thread only)
                        time.sleep(2)
                        if call(dataset, name, api_name="/next_pair") != row or attempt == 2:
                            break
                t2 = time.perf_counter()
                if row in mine:
                    errors.append(f"{name} was given row {row} twice")
                mine[row] = label
                nt.append((t1 - t0) * 1000)
                lt.append((t2 - t1) * 1000)
        except Exception as err:  # reported, and the check below fails
            errors.append(f"{name}: {type(err).__name__}: {err}")
        with lock:
            sent[name] = mine
            label_ms.extend(lt)
            next_ms.extend(nt)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    return {"label_ms": label_ms, "next_ms": next_ms, "sent": sent, "errors": errors, "wall_s": wall,
            "retries": retries}


INSTRUMENT = """
() => {
  window.__bench = [];
  const title = document.querySelector('#cmp-title');
  const rowOf = () => { const m = title.innerText.match(/row (\\d+)/); return m ? Number(m[1]) : null; };
  let pending = null;
  window.addEventListener('keydown', (e) => { pending = {key: e.key, at: performance.now(), row: rowOf()}; }, true);
  new MutationObserver(() => {
    if (!pending) return;
    const row = rowOf();
    if (row === null || row === pending.row) return;
    const p = pending; pending = null;
    const dom = performance.now();
    requestAnimationFrame(() => window.__bench.push({key: p.key, from: p.row, to: row, dom: dom - p.at,
                                                     painted: performance.now() - p.at}));
  }).observe(title, {childList: true, subtree: true, characterData: true});
}
"""


OPEN_HIT = """
([href, row]) => new Promise((resolve) => {
  const a = document.createElement('a');
  a.href = href; a.textContent = 'hit'; document.body.prepend(a);
  const t0 = performance.now();
  a.click();  // as a click on a search result: handled by static/compare.js, no reload
  const check = () => {
    const el = document.querySelector('#cmp-title');
    const m = el && el.offsetParent !== null && el.innerText.match(/row (\\d+)/);
    if (m && Number(m[1]) === row) requestAnimationFrame(() => { a.remove(); resolve(performance.now() - t0); });
    else requestAnimationFrame(check);
  };
  check();
})
"""


def open_hits(page, dataset: str, rows: list[int]) -> list[float]:
    """Open each row as a search hit from the Browse tab; ms from the click to the pair painted."""
    took = []
    for row in rows:
        page.get_by_role("tab", name="Browse").click()
        page.wait_for_timeout(150)
        took.append(page.evaluate(OPEN_HIT, [f"?tab=compare&dataset={dataset}&row={row}&q=answer", row]))
    return took


def browser_test(url: str, dataset: str, presses: int, hits: list[int], schema: str = "binary") -> dict:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url + f"?tab=compare&dataset={dataset}")
        page.wait_for_function("() => /row \\d+/.test(document.querySelector('#cmp-title')?.innerText || '')",
                               timeout=60_000)
        box = page.locator("#cmp-annotator textarea, #cmp-annotator input")
        box.fill("bench-browser")
        page.keyboard.press("Escape")
        page.wait_for_function("() => (document.querySelector('#cmp-progress')?.innerText || '').includes('You: 0')",
                               timeout=30_000)
        page.wait_for_timeout(500)
        page.evaluate(INSTRUMENT)
        for i in range(presses):
            for key in keys_for(schema, i):
                page.keyboard.press(key)
            page.wait_for_function(f"() => window.__bench.length >= {i + 1}", timeout=30_000)
            page.wait_for_timeout(50)
        samples = page.evaluate("window.__bench")
        hit_ms = open_hits(page, dataset, hits) if hits else []
        browser.close()
    return {"samples": samples, "hit_ms": hit_ms}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=16, help="gradio_client clients labeling at once (default 16)")
    ap.add_argument("--per-client", type=int, default=100, help="labels each client writes (default 100)")
    ap.add_argument("--presses", type=int, default=60, help="key presses in Chromium (default 60)")
    ap.add_argument("--hits", type=int, default=30, help="search hits opened in Compare (default 30)")
    ap.add_argument("--browser-only", action="store_true", help="only the browser part (no clients)")
    ap.add_argument("--schema", choices=SCHEMAS + ("all",), default="binary",
                    help="the label schema the keys answer: binary (default), graded, ranking, or all in turn "
                         "(the clients label the binary dataset)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "out" / "label.json"), help="where the JSON result goes")
    args = ap.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="bench-label-"))
    db_path = folder / "bench.duckdb"
    src, described = source(folder)
    db = Database(db_path)
    from components.ingest import ingest

    info = ingest(db, str(src), name="bench")
    schemas = list(SCHEMAS) if args.schema == "all" else [args.schema]
    if "graded" in schemas:
        from components import labels

        ingest(db, str(src), name=DATASETS["graded"])
        labels.set_setting(db, DATASETS["graded"], "label_schema", GRADED, "bench")
    if "ranking" in schemas:
        ingest(db, str(ranking_source(src, folder)), name=DATASETS["ranking"])
    db.close()
    pairs = info.rows_loaded
    described = f"{described}, {pairs:,} pairs"
    if pairs < args.per_client:
        raise SystemExit(f"the dataset has {pairs} pairs; --per-client must be at most that")

    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    proc = start_server(db_path, port)
    try:
        load_avg = os.getloadavg()[0]
        hits = random.Random(3).sample(range(pairs), min(args.hits, pairs))
        web = {}
        for n, schema in enumerate(schemas):  # first, on a quiet server; the hits with the first schema
            web[schema] = browser_test(url, DATASETS[schema], args.presses, hits if n == 0 else [], schema)
        server_cpu0, client_cpu0 = cpu_seconds(proc.pid), own_cpu_seconds()
        if args.browser_only:
            args.clients = 0
        load = load_test(url, "bench", args.clients, args.per_client) if args.clients else \
            {"label_ms": [0.0], "next_ms": [0.0], "sent": {}, "errors": [], "wall_s": 1.0, "retries": []}
        server_cpu, client_cpu = cpu_seconds(proc.pid) - server_cpu0, own_cpu_seconds() - client_cpu0
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    db = Database(db_path, read_only=True)
    expected = args.clients * args.per_client
    from_clients = db.scalar("SELECT count(*) FROM label_events WHERE dataset = 'bench' AND annotator LIKE 'bench-%' "
                             "AND annotator <> 'bench-browser'")
    distinct = db.scalar("SELECT count(*) FROM (SELECT DISTINCT annotator, row FROM label_events "
                         "WHERE dataset = 'bench' AND annotator LIKE 'bench-%' AND annotator <> 'bench-browser')")
    mismatched = 0
    for name, mine in load["sent"].items():
        stored = dict(db.rows("SELECT row, label FROM label_events WHERE dataset = 'bench' AND annotator = ?", [name]))
        mismatched += sum(1 for row, label in mine.items() if stored.get(row) != label) + len(set(stored) - set(mine))
    per_schema = {}
    for schema in schemas:
        events = db.dicts("SELECT row, grade, ranking FROM label_events WHERE dataset = ? AND annotator = 'bench-browser' "
                          "ORDER BY id", [DATASETS[schema]])
        samples = web[schema]["samples"]
        painted = [x["painted"] for x in samples]
        as_schema = all((e["grade"] is not None) if schema == "graded" else (e["ranking"] is not None)
                        if schema == "ranking" else True for e in events)
        per_schema[schema] = {
            "dataset": DATASETS[schema], "events_from_browser": len(events),
            "browser_labels_match_pairs_shown": [x["from"] for x in samples] == [e["row"] for e in events],
            "events_hold_the_schema": as_schema,
            "key_to_pair_p50_ms": statistics.median(painted), "key_to_pair_p95_ms": pct(painted, 95),
            "key_to_pair_max_ms": max(painted)}
    db.close()

    first = per_schema[schemas[0]]
    hit_ms = web[schemas[0]]["hit_ms"] or [0.0]
    from_browser = sum(x["events_from_browser"] for x in per_schema.values())
    shown_in_order = all(x["browser_labels_match_pairs_shown"] and x["events_hold_the_schema"]
                         for x in per_schema.values())
    result = {
        "dataset": described, "pairs": pairs, "clients": args.clients, "per_client": args.per_client,
        "events_expected": expected, "events_from_clients": from_clients, "distinct_annotator_pairs": distinct,
        "labels_not_as_sent": mismatched, "errors": load["errors"][:10], "client_retries": load["retries"],
        "label_p50_ms": statistics.median(load["label_ms"]), "label_p95_ms": pct(load["label_ms"], 95),
        "next_pair_p50_ms": statistics.median(load["next_ms"]), "next_pair_p95_ms": pct(load["next_ms"], 95),
        "throughput_events_per_s": len(load["label_ms"]) / load["wall_s"], "wall_s": load["wall_s"],
        "server_cpu_ms_per_call": server_cpu * 1000 / (2 * len(load["label_ms"])),
        "clients_cpu_ms_per_call": client_cpu * 1000 / (2 * len(load["label_ms"])),
        "load_average_before": load_avg, "load_average_after": os.getloadavg()[0], "cpus": os.cpu_count(),
        "presses": args.presses, "events_from_browser": from_browser, "browser_labels_match_pairs_shown": shown_in_order,
        "key_to_pair_p50_ms": first["key_to_pair_p50_ms"], "key_to_pair_p95_ms": first["key_to_pair_p95_ms"],
        "key_to_pair_max_ms": first["key_to_pair_max_ms"], "schemas": per_schema,
        "hits": len(web[schemas[0]]["hit_ms"]), "hit_to_pair_p50_ms": statistics.median(hit_ms),
        "hit_to_pair_p95_ms": pct(hit_ms, 95), "hit_to_pair_max_ms": max(hit_ms),
    }
    ok = (from_clients == expected and distinct == expected and mismatched == 0 and not load["errors"]
          and from_browser == args.presses * len(schemas) and shown_in_order)
    result["ok"] = ok
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))

    print(f"dataset: {described}; {args.clients} clients x {args.per_client} labels; {args.presses} key presses; "
          f"{os.cpu_count()} CPUs, load average {load_avg:.1f} before the run\n")
    print("| measure | value |")
    print("|---|---|")
    print(f"| label events in DuckDB (expected {expected:,}) | {from_clients:,} |")
    print(f"| distinct (annotator, pair) | {distinct:,} |")
    print(f"| events not as sent (lost, doubled or changed) | {mismatched} |")
    print(f"| calls gradio_client dropped (CancelledError), retried | {len(load['retries'])} |")
    print(f"| `/label` round trip p50 / p95 | {result['label_p50_ms']:.0f} ms / {result['label_p95_ms']:.0f} ms |")
    print(f"| `/next_pair` round trip p50 / p95 | {result['next_pair_p50_ms']:.0f} ms / "
          f"{result['next_pair_p95_ms']:.0f} ms |")
    print(f"| throughput, {args.clients} clients together | {result['throughput_events_per_s']:.0f} labels/s "
          f"({load['wall_s']:.0f} s in all) |")
    print(f"| CPU per API call: server / the {args.clients} clients (one process) | "
          f"{result['server_cpu_ms_per_call']:.0f} ms / {result['clients_cpu_ms_per_call']:.0f} ms |")
    for schema, x in per_schema.items():
        print(f"| browser: key press -> next pair painted, {schema}, p50 / p95 / max ({args.presses} presses) | "
              f"{x['key_to_pair_p50_ms']:.0f} ms / {x['key_to_pair_p95_ms']:.0f} ms / {x['key_to_pair_max_ms']:.0f} ms |")
    print(f"| browser: search hit clicked -> its pair painted in Compare, p50 / p95 / max ({result['hits']} hits) | "
          f"{result['hit_to_pair_p50_ms']:.0f} ms / {result['hit_to_pair_p95_ms']:.0f} ms / "
          f"{result['hit_to_pair_max_ms']:.0f} ms |")
    print(f"| browser label events in DuckDB (expected {args.presses * len(schemas)}), each on the pair shown | "
          f"{from_browser} ({'yes' if shown_in_order else 'NO'}) |")
    if load["errors"]:
        print("\nerrors:", *load["errors"][:10], sep="\n  ")
    print("\nresult:", "OK" if ok else "FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
