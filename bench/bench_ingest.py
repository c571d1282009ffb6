"""Ingest throughput, and labeling while an ingest runs.

    .venv/bin/python bench/bench_ingest.py [--rows 100000] [--repeat 3] [--label-rows 300000]

Builds, from the real HH-RLHF harmless-base test split in ../shared/data, a parquet file of
conversational pairs (message lists) and a jsonl file of HH-style transcripts, each of --rows rows,
then times in this one process:
  floor     DuckDB `CREATE TABLE AS FROM read_parquet(...)` of the parquet file
  pairs     components.ingest.ingest() of the parquet file (detection, normalization, bad-row checks)
  hh jsonl  components.ingest.ingest() of the transcripts (turn splitting, shared-prefix prompt)
and prints a Markdown table (median of --repeat runs, each into a fresh database file, each timed up
to a CHECKPOINT so that every path has written its rows to the database file).

Then, into one database holding the demo data, it ingests --label-rows HH-style transcripts while
another thread adds a label event to a demo pair every 50 ms through the labels' own write path
(components.labels.add_label), and prints the p50 / p95 / max latency of those label writes
(--label-rows 0 skips it).
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import datasets  # noqa: E402,F401  (imported before the clock starts)
import duckdb  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from components import catalogue, labels  # noqa: E402
from components.formats import split_transcript  # noqa: E402
from components.ingest import ingest, load_demo  # noqa: E402
from components.store import Database  # noqa: E402

HH = ROOT.parent / "shared" / "data" / "hh-rlhf-harmless-base-test" / "test.jsonl.gz"


def make_transcripts(rows: int, path: Path) -> Path:
    with gzip.open(HH, "rt") as f:
        base = [json.loads(line) for line in f]
    with open(path, "w") as f:
        for i in range(rows):
            f.write(json.dumps(base[i % len(base)]) + "\n")
    return path


def labels_during_ingest(rows: int, folder: Path) -> None:
    """Label latency (one event every 50 ms from another thread) while ``rows`` transcripts are ingested."""
    source = make_transcripts(rows, folder / "labels-transcripts.jsonl")
    db = Database(folder / "labels.duckdb")
    load_demo(db)
    pairs = catalogue.dataset(db, "demo-trl-standard").row_count
    latencies: list[float] = []
    done = threading.Event()

    def annotate():
        i = 0
        while not done.is_set():
            t = time.perf_counter()
            labels.add_label(db, "demo-trl-standard", i % pairs, ("chosen", "rejected", "tie")[i % 3], "bench")
            latencies.append(time.perf_counter() - t)
            i += 1
            done.wait(0.05)

    worker = threading.Thread(target=annotate)
    worker.start()
    t = time.perf_counter()
    summary = ingest(db, str(source), name="big")
    seconds = time.perf_counter() - t
    done.set()
    worker.join()
    db.close()
    lat = sorted(latencies)
    pct = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000  # noqa: E731
    print(f"\nLabels during an ingest of {summary.rows_in:,} transcripts ({seconds:.1f} s, "
          f"{summary.rows_loaded:,} loaded), one label event every 50 ms from another thread:\n")
    print("| label events | p50 ms | p95 ms | max ms |")
    print("|---|---|---|---|")
    print(f"| {len(lat)} | {pct(0.5):.1f} | {pct(0.95):.1f} | {lat[-1] * 1000:.1f} |")


def make_sources(rows: int, folder: Path) -> tuple[Path, Path]:
    with gzip.open(HH, "rt") as f:
        base = [json.loads(line) for line in f]
    picked = [base[i % len(base)] for i in range(rows)]
    pairs = folder / "pairs.parquet"
    pq.write_table(
        pa.Table.from_pylist(
            [{"chosen": split_transcript(r["chosen"]), "rejected": split_transcript(r["rejected"])} for r in picked]
        ),
        pairs,
    )
    return pairs, make_transcripts(rows, folder / "transcripts.jsonl")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--label-rows", type=int, default=300_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        pairs, transcripts = make_sources(args.rows, tmp)
        results: dict[str, list[float]] = {"floor": [], "pairs": [], "hh": []}
        committed: dict[str, list[float]] = {"floor": [], "pairs": [], "hh": []}
        loaded = {}
        for i in range(args.repeat):
            def floor():
                con = duckdb.connect(str(tmp / f"floor{i}.duckdb"))
                t = time.perf_counter()
                con.execute(f"CREATE TABLE t AS FROM read_parquet('{pairs}')")
                committed["floor"].append(time.perf_counter() - t)
                con.execute("CHECKPOINT")
                results["floor"].append(time.perf_counter() - t)
                con.close()

            def app(key, source):
                db = Database(tmp / f"app-{key}{i}.duckdb")  # opened (schema made) before the clock
                t = time.perf_counter()
                loaded[key] = ingest(db, str(source), name=key)
                committed[key].append(time.perf_counter() - t)
                db.execute_checkpoint()
                results[key].append(time.perf_counter() - t)
                db.close()

            floor()
            app("pairs", pairs)
            app("hh", transcripts)
    floor = statistics.median(results["floor"])
    print(f"\n{args.rows:,} rows each, median of {args.repeat} runs\n")
    print("| source | path | s to commit | s to checkpoint | rows/s (checkpoint) | vs floor |")
    print("|---|---|---|---|---|---|")
    rows = [
        ("pairs.parquet (message lists)", "DuckDB `CREATE TABLE AS FROM read_parquet` (floor)", "floor"),
        ("pairs.parquet (message lists)", "app ingest (trl-conversational-implicit)", "pairs"),
        ("transcripts.jsonl (HH-RLHF style)", "app ingest (hh-rlhf)", "hh"),
    ]
    for source, path, key in rows:
        s = statistics.median(results[key])
        c = statistics.median(committed[key])
        ratio = f"{s / floor:.2f}x" if key != "hh" else "—"
        print(f"| {source} | {path} | {c:.2f} | {s:.2f} | {args.rows / s:,.0f} | {ratio} |")
    for key in ("pairs", "hh"):
        s = loaded[key]
        print(f"\n{key}: {s.rows_loaded:,} loaded, rejected {s.rejected}, {s.empty_side:,} with an empty side", end="")
    print()
    if args.label_rows:
        with tempfile.TemporaryDirectory() as tmp:
            labels_during_ingest(args.label_rows, Path(tmp))


if __name__ == "__main__":
    main()
