"""Rows per second of the job system's model steps: reward-model scoring and embedding, in this
process and on a local Ray cluster with 1 and 2 workers, plus the seconds Ray takes to start.

    .venv/bin/python bench/bench_jobs.py --pairs 2000

The pairs are the first N of HH-RLHF (../shared/data). The models are made here with random weights
and a tokenizer trained on the pairs (the weights do not change the cost of a forward pass): a Llama
reward model and a BERT encoder, both small enough for CPUs (sizes below). Every run starts from no
results and goes through ``components.jobs.runner.run`` as ``python app.py score/embed`` does; each
run writes to a dataset of its own. Prints a Markdown table and one JSON line.
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

HH = ROOT.parent / "shared" / "data" / "hh-rlhf-harmless-base-test" / "test.jsonl.gz"


def reward_model(path: Path, texts: list[str], hidden: int, layers: int) -> str:
    import torch
    from transformers import LlamaConfig, LlamaForSequenceClassification

    from helpers import chat_tokenizer

    tok = chat_tokenizer(texts, vocab_size=4000)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=hidden, intermediate_size=hidden * 4,
                         num_hidden_layers=layers, num_attention_heads=hidden // 64, num_key_value_heads=hidden // 64,
                         max_position_embeddings=2048, num_labels=1, pad_token_id=tok.pad_token_id,
                         eos_token_id=tok.eos_token_id, bos_token_id=None, tie_word_embeddings=False)
    torch.manual_seed(0)
    LlamaForSequenceClassification(config).save_pretrained(path)
    tok.save_pretrained(path)
    return str(path)


def encoder_model(path: Path, texts: list[str], hidden: int, layers: int) -> str:
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok.train_from_iterator(texts, trainers.WordPieceTrainer(vocab_size=4000, special_tokens=special,
                                                             show_progress=False))
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                   sep_token="[SEP]", mask_token="[MASK]")
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=tok.get_vocab_size(), hidden_size=hidden, num_hidden_layers=layers,
                         num_attention_heads=hidden // 64, intermediate_size=hidden * 4,
                         max_position_embeddings=512)).save_pretrained(path)
    fast.save_pretrained(path)
    return str(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=2000)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--no-ray", action="store_true")
    args = ap.parse_args()

    from components.ingest import ingest
    from components.jobs import runner
    from components.scores.reward import reward_step
    from components.semantic.embed import embed_step
    from components.store import Database

    tmp = Path(tempfile.mkdtemp(prefix="bench-jobs-"))
    src = tmp / "pairs.jsonl"
    with gzip.open(HH, "rt") as f, src.open("w") as out:
        for line in itertools.islice(f, args.pairs):
            out.write(line)
    texts = [line for line in src.read_text().splitlines()]
    rm = reward_model(tmp / "reward", texts, args.hidden, args.layers)
    enc = encoder_model(tmp / "encoder", texts, args.hidden, args.layers)
    db = Database(tmp / "studio.duckdb")
    places = [("process", 1)] + ([] if args.no_ray else [("ray:auto", 1), ("ray:auto", 2)])
    names = [f"{kind}_{where.split(':')[0]}_{w}" for kind in ("score", "embed") for where, w in places]
    for name in names:
        ingest(db, str(src), name=name)

    ray_start = None
    rows = []
    for kind in ("score", "embed"):
        for where, workers in places:
            name = f"{kind}_{where.split(':')[0]}_{workers}"
            step = reward_step(rm, device="cpu") if kind == "score" else embed_step(db, name, enc, None, args.batch_size, device="cpu")
            if where != "process" and ray_start is None:
                from components.jobs import ray_run

                ray_run.connect("auto")
                ray_start = ray_run.STARTUP["seconds"]
            started = time.perf_counter()
            result = runner.run(db, step, name, started_by="bench", batch_size=args.batch_size, where=where,
                                workers=workers)
            seconds = time.perf_counter() - started
            assert result.status == "done" and result.done == args.pairs and result.failed == 0, result
            rows.append({"step": kind, "where": where.split(":")[0], "workers": workers, "rows": result.done,
                         "seconds": round(seconds, 2), "rows_per_s": round(result.done / seconds, 1)})
            print(f"  {kind} {where} x{workers}: {result.done} rows in {seconds:.1f} s", file=sys.stderr, flush=True)
    db.close()

    print(f"\n{args.pairs} HH-RLHF pairs, batch {args.batch_size}; reward model Llama {args.layers}x{args.hidden} "
          f"(scores both sides), encoder BERT {args.layers}x{args.hidden} (embeds the prompt); {os.cpu_count()} CPUs\n")
    print("| step | where | workers | rows | seconds (whole job) | rows/s |\n|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['step']} | {r['where']} | {r['workers']} | {r['rows']} | {r['seconds']} | {r['rows_per_s']} |")
    if ray_start is not None:
        print(f"\nRay start-up (a new local cluster, ray.init): {ray_start:.1f} s")
    print(json.dumps({"runs": rows, "ray_start_s": ray_start, "pairs": args.pairs, "cpus": os.cpu_count()}))


if __name__ == "__main__":
    main()
