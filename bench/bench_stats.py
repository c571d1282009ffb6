"""Statistics at scale: ``insights.dataset_stats`` over 1M pairs made from real UltraFeedback and HH text.

    python bench/bench_stats.py [--pairs 1000000] [--keep DIR]

The pairs are generated deterministically: pair ``i`` takes a prompt, a chosen and a rejected response
from the shared UltraFeedback sample and HH transcripts (responses cut to a length drawn from the
row number, so lengths spread like real data), two scores and a few metadata columns. They are ingested
with the app's own ingest into a Database in a temporary folder; then the statistics are timed cold
(first call: the per-pair measures are read from the file; everything but the near duplicates, as the
page draws it first), then the near duplicates over every distinct prompt, and warm (the cached result).
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "data"


def real_texts() -> tuple[list[str], list[str]]:
    """(prompts, responses) from the shared UltraFeedback sample and HH test transcripts."""
    prompts, responses = [], []
    for name in ("train_clean.jsonl", "eval_clean.jsonl"):
        for line in open(SHARED / "ultrafeedback-binarized-sample" / name, encoding="utf-8"):
            r = json.loads(line)
            prompts.append(r["prompt"])
            responses += [r["chosen"], r["rejected"]]
    with gzip.open(SHARED / "hh-rlhf-harmless-base-test" / "test.jsonl.gz", "rt", encoding="utf-8") as fh:
        for line in fh:
            r = json.loads(line)
            for side in ("chosen", "rejected"):
                head, _, answer = r[side].rpartition("\n\nAssistant:")
                responses.append(answer.strip())
                if side == "chosen":
                    prompts.append(head.rpartition("\n\nHuman:")[2].strip())
    return [p for p in prompts if p], [t for t in responses if t]


def write_pairs(path: Path, n: int) -> Path:
    """``n`` pairs as a Parquet file (TRL standard columns, scores, metadata), the same for the same ``n``."""
    import duckdb
    import pyarrow as pa

    prompts, responses = real_texts()
    con = duckdb.connect()
    con.register("p", pa.table({"i": range(len(prompts)), "t": prompts}))
    con.register("r", pa.table({"i": range(len(responses)), "t": responses}))
    np_, nr = len(prompts), len(responses)
    con.execute(f"""
        COPY (
          SELECT g.i AS id,
                 p.t || CASE WHEN g.i % 3 = 0 THEN '' ELSE ' (case ' || (g.i // {np_})::VARCHAR || ')' END AS prompt,
                 left(c.t, 40 + (hash(g.i, 'c') % 1400)::INT) AS chosen,
                 left(x.t, 40 + (hash(g.i, 'r') % 1400)::INT) AS rejected,
                 (hash(g.i, 's') % 11)::DOUBLE AS score_chosen,
                 (hash(g.i, 't') % 9)::DOUBLE AS score_rejected,
                 ['ultrafeedback', 'hh-rlhf', 'sharegpt', 'flan'][1 + (g.i % 4)::INT] AS source,
                 ['model-a', 'model-b', 'model-c'][1 + (hash(g.i, 'm') % 3)::INT] AS model
          FROM range({n}) g(i)
          JOIN p ON p.i = g.i % {np_}
          JOIN r c ON c.i = (g.i * 7) % {nr}
          JOIN r x ON x.i = (g.i * 13 + 1) % {nr}
          ORDER BY g.i
        ) TO '{path}' (FORMAT parquet)""")
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=1_000_000)
    ap.add_argument("--keep", help="keep the database in this folder (and reuse it when it is there)")
    args = ap.parse_args()

    from components import catalogue, insights
    from components.ingest import ingest
    from components.store import Database

    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-stats-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        db = Database(folder / "bench.duckdb")
        name = f"bench{args.pairs}"
        if catalogue.dataset(db, name) is None:
            t = time.perf_counter()
            src = write_pairs(folder / f"{name}.parquet", args.pairs)
            t_gen = time.perf_counter() - t
            t = time.perf_counter()
            ingest(db, str(src), name=name)
            print(f"generated {args.pairs:,} pairs in {t_gen:.1f} s, ingested in {time.perf_counter() - t:.1f} s")
        t = time.perf_counter()
        first = insights.dataset_stats(db, name, near=False)  # the page's first answer: all but near duplicates
        cold = time.perf_counter() - t
        t = time.perf_counter()
        stats = insights.dataset_stats(db, name)  # then the near duplicates over every distinct prompt
        near = time.perf_counter() - t
        t = time.perf_counter()
        insights.dataset_stats(db, name)
        warm = time.perf_counter() - t
        t = time.perf_counter()
        rows = insights.rows_for(db, name, stats["length_bias"]["by_difference"]["keys"][1], limit=100)
        pick = time.perf_counter() - t
        print(json.dumps({
            "pairs": stats["rows"], "cold_s": round(cold, 2), "near_duplicates_s": round(near, 2),
            "warm_s": round(warm, 4), "bin_rows_s": round(pick, 3),
            "timings_s": first["timings_s"], "near_timings_s": stats["timings_s"], "chosen_longer_share": stats["length_bias"]["chosen_longer_share"],
            "near_duplicates": {k: v for k, v in stats["duplicates"]["near"].items() if k != "clusters"},
            "bin_rows": rows.total,
        }, indent=1))
        db.close()
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
