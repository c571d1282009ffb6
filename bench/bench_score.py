"""Pairs per second of reward-model scoring at batch sizes 1, 8 and 32, with a reward model of
Qwen2-0.5B's shape, and the tokens per pair and tokens per second behind the time to score a dataset.

    .venv/bin/python bench/bench_score.py                      # CPU, float32, 32 pairs
    .venv/bin/python bench/bench_score.py --device cuda --pairs 2000 --max-length 4096   # a GPU, bfloat16

The model is ``Qwen2ForSequenceClassification`` with one output and Qwen2-0.5B's shape (hidden 896,
24 layers, 14 attention heads, 2 key-value heads, intermediate 4864, vocabulary 151,936, tied
embeddings), made here with random weights (they do not change the cost of a forward pass) and saved
to a folder, with a byte-level BPE tokenizer trained on the sample and a ChatML template. The pairs
are the first N of the UltraFeedback sample (../shared/data) whose two conversations fit
``--max-length`` tokens. Each batch size scores its own copy of those pairs through
``components.jobs.runner.run`` with ``reward_step``, as ``python app.py score NAME --model DIR
--batch-size B`` does (records read from DuckDB, one forward pass per batch, scores written to
pair_scores); the model is loaded once, before the clock starts. Tokens are counted with the model's
tokenizer through the chat template, as the step counts them. Prints a Markdown table and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

UF = ROOT.parent / "shared" / "data" / "ultrafeedback-binarized-sample"
UF_FULL = 62135  # records of trl-lib/ultrafeedback_binarized, per the sample's SOURCE.md

QWEN2_05B = dict(vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                 num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=32768,
                 rope_theta=1000000.0, tie_word_embeddings=True)


def sample_rows() -> list[dict]:
    rows = []
    for name in ("train_clean.jsonl", "eval_clean.jsonl"):
        with (UF / name).open(encoding="utf-8") as f:
            rows += [json.loads(line) for line in f if line.strip()]
    return rows


def conversations(prompt, response) -> list[dict]:
    """One side's conversation as the reward step builds it (records hold lists of messages)."""
    return [{"role": m["role"], "content": m["content"] or ""} for m in (prompt or []) + (response or [])]


def reward_model(path: Path, texts: list[str], vocab: int) -> str:
    import torch
    from transformers import Qwen2Config, Qwen2ForSequenceClassification

    from helpers import chat_tokenizer

    tok = chat_tokenizer(texts, vocab_size=vocab)
    config = Qwen2Config(**QWEN2_05B, num_labels=1, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                         bos_token_id=None)
    torch.manual_seed(0)
    model = Qwen2ForSequenceClassification(config)
    model.to(torch.bfloat16).save_pretrained(path)  # half the disk; the step loads float32 on CPU
    tok.save_pretrained(path)
    return str(path)


def padded_tokens(lengths: list[tuple[int, int]], batch: int) -> int:
    """Tokens the forward passes compute at ``batch`` pairs a pass: each pass pads its 2 x batch
    conversations to the longest one (pairs in row order, as the runner reads them).

    >>> padded_tokens([(3, 5), (2, 2)], 1), padded_tokens([(3, 5), (2, 2)], 2)
    (14, 20)
    """
    total = 0
    for i in range(0, len(lengths), batch):
        part = lengths[i:i + batch]
        total += 2 * len(part) * max(max(p) for p in part)
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=32)
    ap.add_argument("--batch-sizes", default="1,8,32", help="comma-separated pairs per forward pass")
    ap.add_argument("--max-length", type=int, default=512,
                    help="longest conversation in tokens: the pairs taken fit it, and the step checks it")
    ap.add_argument("--device", default="cpu", help="cpu (float32) or cuda (bfloat16)")
    ap.add_argument("--vocab", type=int, default=32000, help="size of the tokenizer trained on the sample")
    ap.add_argument("--full", type=int, default=UF_FULL, help="pairs of the dataset the time bound is written for")
    args = ap.parse_args()
    sizes = [int(b) for b in args.batch_sizes.split(",")]

    import torch

    from components.ingest import ingest
    from components.jobs import runner
    from components.scores.reward import reward_step
    from components.store import Database

    load_before = os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="bench-score-"))
    rows = sample_rows()
    texts = [f"{r['prompt']}\n{r['chosen']}\n{r['rejected']}" for r in rows]
    started = time.perf_counter()
    rm = reward_model(tmp / "reward", texts, args.vocab)
    made_s = time.perf_counter() - started

    step = reward_step(rm, device=args.device, max_length=args.max_length)
    started = time.perf_counter()
    step.load()
    load_s = time.perf_counter() - started
    tok = step._loaded["tokenizer"]

    def side_tokens(prompt, response) -> int:
        return len(step.tokens(conversations(prompt, response)))

    # the sample's own conversations, as the app ingests them: prompt a user turn, each side one answer
    def as_lists(r):
        return [{"role": "user", "content": r["prompt"]}], [{"role": "assistant", "content": r["chosen"]}], \
            [{"role": "assistant", "content": r["rejected"]}]

    sample_lengths = []
    for r in rows:
        p, c, j = as_lists(r)
        sample_lengths.append((side_tokens(p, c), side_tokens(p, j)))
    picked = [r for r, (a, b) in zip(rows, sample_lengths) if max(a, b) <= args.max_length][: args.pairs]
    if len(picked) < args.pairs:
        sys.exit(f"only {len(picked)} pairs of the sample fit {args.max_length} tokens")
    src = tmp / "pairs.jsonl"
    src.write_text("".join(json.dumps({k: r[k] for k in ("prompt", "chosen", "rejected")}) + "\n" for r in picked),
                   encoding="utf-8")

    db = Database(tmp / "studio.duckdb")
    names = [f"score_b{b}" for b in sizes]
    for name in names:
        ingest(db, str(src), name=name)
    # tokens of the pairs run, read back from the records the step reads
    records = db.dicts("SELECT prompt, chosen, rejected FROM records WHERE dataset = ? ORDER BY row", [names[0]])
    lengths = [(side_tokens(r["prompt"], r["chosen"]), side_tokens(r["prompt"], r["rejected"])) for r in records]
    run_tokens = sum(a + b for a, b in lengths)
    per_pair = run_tokens / len(lengths)
    sample_per_pair = sum(a + b for a, b in sample_lengths) / len(sample_lengths)

    runs = []
    for batch, name in zip(sizes, names):
        started = time.perf_counter()
        result = runner.run(db, step, name, started_by="bench", batch_size=batch)
        seconds = time.perf_counter() - started
        assert result.status == "done" and result.done == args.pairs and result.failed == 0, result
        stored = db.scalar("SELECT count(*) FROM pair_scores WHERE dataset = ? AND score_chosen IS NOT NULL", [name])
        assert stored == args.pairs, stored
        computed = padded_tokens(lengths, batch)
        runs.append({"batch": batch, "pairs": result.done, "seconds": round(seconds, 2),
                     "pairs_per_s": round(result.done / seconds, 3), "tokens_per_s": round(run_tokens / seconds, 1),
                     "padded_share": round(1 - run_tokens / computed, 3)})
        print(f"  batch {batch}: {result.done} pairs in {seconds:.1f} s", file=sys.stderr, flush=True)
    db.close()
    load_after = os.getloadavg()
    n_params = sum(p.numel() for p in step._loaded['model'].parameters())
    shutil.rmtree(tmp, ignore_errors=True)

    best = max(runs, key=lambda r: r["tokens_per_s"])
    bound_s = per_pair * args.full / best["tokens_per_s"]
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    where = "GPU " + torch.cuda.get_device_name(0) if args.device.startswith("cuda") else f"CPU, {os.cpu_count()} cores"
    dtype = "bfloat16" if args.device.startswith("cuda") else "float32"

    print(f"\n{args.pairs} UltraFeedback pairs (the first whose conversations fit {args.max_length} tokens), "
          f"reward model of Qwen2-0.5B's shape ({n_params / 1e6:.0f}M "
          f"parameters, random weights), {where}, {dtype}; load average {load_before[0]:.2f} before, "
          f"{load_after[0]:.2f} after\n")
    print("| pairs per pass | pairs | seconds (whole job) | pairs/s | tokens/s | share of padding |\n|---|---|---|---|---|---|")
    for r in runs:
        print(f"| {r['batch']} | {r['pairs']} | {r['seconds']} | {r['pairs_per_s']} | {r['tokens_per_s']} | "
              f"{r['padded_share']:.0%} |")
    print(f"\nTokens per pair (both conversations, chat template, tokenizer of {len(tok)} tokens): "
          f"{per_pair:.0f} over the pairs run, {sample_per_pair:.0f} over all {len(rows)} pairs of the sample.")
    print(f"Time to score N pairs = tokens per pair x N / tokens per second. For {args.full:,} pairs at "
          f"{sample_per_pair:.0f} tokens a pair and the {best['tokens_per_s']} tokens/s measured here "
          f"(batch {best['batch']}, {where}): {sample_per_pair:.0f} x {args.full:,} / {best['tokens_per_s']} = "
          f"{sample_per_pair * args.full / best['tokens_per_s'] / 3600:.1f} h. "
          f"Only this device's tokens/s was measured; for another, put its measured tokens/s in the formula.")
    print(f"Model made in {made_s:.1f} s, loaded in {load_s:.1f} s (not in the table). {uptime}")
    print(json.dumps({"runs": runs, "tokens_per_pair_run": round(per_pair, 1),
                      "tokens_per_pair_sample": round(sample_per_pair, 1), "sample_pairs": len(rows),
                      "max_length": args.max_length, "device": args.device, "dtype": dtype, "where": where,
                      "bound_pairs": args.full, "bound_hours": round(sample_per_pair * args.full / best["tokens_per_s"] / 3600, 2),
                      "bound_hours_run_pairs": round(bound_s / 3600, 2),
                      "load_before": round(load_before[0], 2), "load_after": round(load_after[0], 2),
                      "model_made_s": round(made_s, 1), "model_load_s": round(load_s, 1), "cpus": os.cpu_count()}))


if __name__ == "__main__":
    main()
