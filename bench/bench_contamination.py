"""Contamination check at scale: 100k training rows against 10k evaluation rows (word 8-grams).

    python bench/bench_contamination.py [--train 100000] [--eval 10000]

Rows are made deterministically from the shared UltraFeedback and HH prompts: each evaluation prompt
is a held-out real prompt with a row-specific piece of a real response added; each training prompt
is another real prompt after a piece of a response (responses are shared: innocent overlaps), and every 100th training row has an evaluation prompt planted
inside it (upper-cased, its punctuation changed). Reports the time and how many planted rows were
found at score 0.9 or more.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", type=int, default=100_000)
    ap.add_argument("--eval", type=int, default=10_000)
    ap.add_argument("--n", type=int, default=8)
    args = ap.parse_args()

    from bench_stats import real_texts

    from components import insights
    from components.ingest import ingest
    from components.store import Database

    prompts, responses = real_texts()
    folder = Path(tempfile.mkdtemp(prefix="bench-contam-"))
    try:
        def pair(p: str) -> str:
            return json.dumps({"prompt": p, "chosen": "a", "rejected": "b"})

        held_out, seen = prompts[0::2], prompts[1::2]  # evaluation prompts never occur in training text
        evals = [f"{held_out[j % len(held_out)]} {responses[(j * 11) % len(responses)][:120]}" for j in range(args.eval)]
        planted = {}
        with open(folder / "train.jsonl", "w", encoding="utf-8") as fh:
            for i in range(args.train):
                if i % 100 == 0:
                    j = (i * 7) % args.eval
                    planted[i] = j
                    text = "Question: " + evals[j].upper().replace(".", " ;") + " - please answer."
                else:
                    text = f"{responses[(i * 3) % len(responses)][:200]}\n{seen[(i * 5) % len(seen)]}"
                fh.write(pair(text) + "\n")
        with open(folder / "eval.jsonl", "w", encoding="utf-8") as fh:
            for p in evals:
                fh.write(pair(p) + "\n")
        db = Database(folder / "bench.duckdb")
        ingest(db, str(folder / "train.jsonl"), name="train")
        ingest(db, str(folder / "eval.jsonl"), name="eval")
        t = time.perf_counter()
        result = insights.find_contamination(db, "train", ["eval"], n=args.n, limit=None)
        seconds = time.perf_counter() - t
        found = {m.row: m for m in result.matches if m.score >= 0.9}
        hit = sum(1 for i, j in planted.items() if i in found and found[i].eval_row == j)
        print(json.dumps({
            "train_rows": result.train_rows, "eval_rows": result.eval_rows, "n": args.n, "seconds": round(seconds, 2),
            "matches": len(result.matches), "planted": len(planted), "planted_found_at_0.9": hit,
            "other_rows_at_0.9": len(set(found) - set(planted)),
        }, indent=1))
        db.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
