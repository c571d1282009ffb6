"""Revision speed: time to first token and tokens/s, single and batched, local transformers beside
`transformers serve`, on a random-weight model with the architecture and size of Qwen2.5-0.5B.

    python bench/bench_revise.py                       # CPU: a few dozen tokens per generation
    python bench/bench_revise.py --device cuda         # GPU: single stream and batch-32 decode,
                                                       # beside the memory-bandwidth bound

The model (Qwen2: hidden 896, 24 layers, 14 heads, 2 KV heads, intermediate 4864, vocabulary 151,936,
tied embeddings: 494M parameters) gets random weights; speed does not depend on their values. Its
tokenizer is a byte-level BPE of 151,643 tokens trained here (about a minute) on the PyPI package
summaries of the environment's package list, with Qwen2's normalizer and pre-tokenizer, so the
server (which loads it as Qwen2Tokenizer) and the app tokenize alike. Both are built once into
--model-dir and reused.

Every figure comes from the app's own code path (components.revise): LocalBackend.stream and
generate_batch, revise_stream, run_job, and EndpointBackend against a `transformers serve` process
loading the same folder in the same dtype.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from helpers import chat_tokenizer  # noqa: E402
from helpers import free_port, wait_http  # noqa: E402
from components import revise as rv  # noqa: E402
from components.ingest import load_demo  # noqa: E402
from components.store import Database  # noqa: E402

PACKAGES = Path("/work/.library/env/packages/pypi.tsv")
BANDWIDTH_GBS = {  # peak HBM/GDDR bandwidth, GB/s, by device name
    "H200": 4800, "H100 SXM": 3350, "H100 80GB HBM3": 3350, "H100 NVL": 3900, "H100 PCIe": 2000, "H100": 3350,
    "A100-SXM4-80GB": 2039, "A100 80GB PCIe": 1935, "A100": 1555, "L40S": 864, "L4": 300, "A10G": 600,
    "RTX 4090": 1008,
}


def corpus_lines(limit: int):
    """Real English text: the name and summary of each package in the environment's PyPI list,
    else (where that list is absent) the demo data and principles of the repository."""
    if PACKAGES.exists():
        with PACKAGES.open(encoding="utf-8", errors="replace") as f:
            next(f)
            for i, line in enumerate(f):
                if i >= limit:
                    return
                parts = line.rstrip("\n").split("\t")
                yield " ".join([parts[0]] + parts[4:])
    else:
        for p in sorted((ROOT / "data").rglob("*.json*")):
            yield from p.read_text(encoding="utf-8").splitlines()


def build_model(path: Path, vocab: int = 151_643) -> None:
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    t0 = time.perf_counter()
    fast = chat_tokenizer(corpus_lines(1_000_000), vocab_size=vocab)
    print(f"tokenizer: {len(fast):,} tokens in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    config = Qwen2Config(
        vocab_size=151_936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
        num_key_value_heads=2, max_position_embeddings=32_768, rope_theta=1_000_000.0, tie_word_embeddings=True,
        rms_norm_eps=1e-6, eos_token_id=fast.eos_token_id, pad_token_id=fast.pad_token_id, bos_token_id=None,
    )
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(config).to(torch.bfloat16)
    tmp = path.with_name(path.name + ".partial")
    model.save_pretrained(tmp)
    fast.save_pretrained(tmp)
    tmp.rename(path)
    print(f"model: {sum(p.numel() for p in model.parameters()) / 1e6:.0f}M parameters written to {path} "
          f"in {time.perf_counter() - t0:.0f} s", file=sys.stderr)


# -- measurements -------------------------------------------------------------------------------


def stream_once(backend, messages, settings) -> dict:
    s = backend.stream(messages, settings)
    for _ in s:
        pass
    g = s.result
    decode = (g.tokens - 1) / (g.seconds - g.ttft_s) if g.ttft_s is not None and g.tokens > 1 else None
    return {"ttft_s": g.ttft_s, "tokens": g.tokens, "seconds": g.seconds, "tok_s": g.tokens / g.seconds,
            "decode_tok_s": decode, "prompt_tokens": g.prompt_tokens}


def batch_once(backend, batch, settings) -> dict:
    """One batch: a single padded generate (local), or concurrent requests (endpoint). For a local
    batch every stream shares the decode steps, so decode tokens/s = (tokens - first tokens) / (time
    after the first step); concurrent requests to a server have no shared step to measure from."""
    t = time.perf_counter()
    gens = backend.generate_batch(batch, settings)
    secs = time.perf_counter() - t
    tokens = sum(g.tokens for g in gens)
    ttfts = sorted(g.ttft_s for g in gens if g.ttft_s is not None)
    shared = isinstance(backend, rv.LocalBackend)
    ttft = ttfts[-1] if ttfts else None
    decode = (tokens - len(gens)) / (secs - ttft) if shared and ttft is not None and tokens > len(gens) else None
    return {"batch": len(batch), "ttft_s": ttft, "ttft_first_s": ttfts[0] if ttfts else None, "tokens": tokens,
            "seconds": secs, "tok_s": tokens / secs, "decode_tok_s": decode}


def median_of(runs: list[dict]) -> dict:
    out = dict(runs[0])
    for k, v in runs[0].items():
        if isinstance(v, (int, float)) and all(r.get(k) is not None for r in runs):
            out[k] = statistics.median(r[k] for r in runs)
    out["runs"] = len(runs)
    return out


def revision_once(backend, source, ps, settings) -> dict:
    t = time.perf_counter()
    last = None
    for last in rv.revise_stream(source, ps, backend, settings):
        pass
    secs = time.perf_counter() - t
    r = last.result
    return {"ttft_s": r["ttft_s"], "tokens": r["tokens"]["total"], "seconds": secs,
            "tok_s": r["tokens"]["total"] / secs}


def job_once(db, backend, dataset, rows, ps, settings) -> dict:
    job, _ = rv.start_job(db, dataset, rows, ps, backend, settings)
    t = time.perf_counter()
    out = rv.run_job(db, job["id"], backend)
    secs = time.perf_counter() - t
    results = rv.revisions(db, job_id=job["id"])
    tokens = sum((r["tokens"] or {}).get("total", 0) for r in results)
    db.write(lambda cur: cur.execute("DELETE FROM revisions WHERE job_id = ?", [job["id"]]))
    db.write(lambda cur: cur.execute("DELETE FROM revision_jobs WHERE id = ?", [job["id"]]))
    return {"rows": out["done"], "tokens": tokens, "seconds": secs, "tok_s": tokens / secs,
            "rows_per_min": 60 * out["done"] / secs}


def start_server(model_dir: Path, device: str, dtype: str, continuous: bool) -> tuple[subprocess.Popen, str]:
    port = free_port()
    args = [str(Path(sys.executable).with_name("transformers")), "serve", str(model_dir), "--host", "127.0.0.1",
            "--port", str(port), "--device", device, "--dtype", dtype]
    if continuous:
        args.append("--continuous-batching")
    log = tempfile.NamedTemporaryFile("w+", prefix="bench-serve-", suffix=".log", delete=False)
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=os.environ | {"HF_HUB_OFFLINE": "1"})
    try:
        wait_http(f"http://127.0.0.1:{port}/health", timeout=600, proc=proc)
    except (RuntimeError, TimeoutError) as err:
        proc.kill()
        raise SystemExit(f"transformers serve did not start ({err}): see {log.name}") from None
    return proc, f"http://127.0.0.1:{port}/v1"


def bandwidth_gbs(name: str, override: float | None) -> float | None:
    if override:
        return override
    for key in sorted(BANDWIDTH_GBS, key=len, reverse=True):
        if key.lower() in name.lower():
            return BANDWIDTH_GBS[key]
    return None


def bound_report(lm, rows: dict, n_batch: int, bw: float | None) -> dict:
    """Print the single-stream and batch decode rates beside the memory-bandwidth bound: every decode
    step reads all the weights once, so steps/s <= bandwidth / bytes of weights."""
    weight_bytes = sum(p.numel() * p.element_size() for p in lm.parameters())
    out = {"weight_bytes": weight_bytes}
    if not bw:
        print("\nUnknown GPU bandwidth: pass --bandwidth-gbs to print the memory-bandwidth bound")
        return out
    bound = bw * 1e9 / weight_bytes
    single = rows["local: single stream"]["decode_tok_s"]
    batch = rows[f"local: batch of {n_batch}"]["decode_tok_s"]
    print(f"\nMemory-bandwidth bound: {weight_bytes / 1e9:.2f} GB of weights read per decode step at {bw:,.0f} GB/s "
          f"= {bound:,.0f} steps/s.")
    print(f"- single stream: {fmt(single)} tokens/s = {100 * single / bound:.0f}% of the bound")
    print(f"- batch of {n_batch}: {fmt(batch)} tokens/s = {batch / n_batch:,.0f} steps/s "
          f"({100 * batch / n_batch / bound:.0f}% of the bound's step rate; at most {bound * n_batch:,.0f} tokens/s, "
          "KV-cache reads ignored)")
    return out | {"bandwidth_gbs": bw, "bound_steps_s": bound, "single_tok_s": single, "batch_tok_s": batch}


def fmt(x, digits=1):
    return "—" if x is None else f"{x:,.{digits}f}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--tokens", type=int, help="new tokens per generation (default 32 on CPU, 256 on CUDA)")
    ap.add_argument("--batch", type=int, help="conversations per batch (default 4 on CPU, 32 on CUDA)")
    ap.add_argument("--runs", type=int, default=3, help="repeats of each single-stream figure (median)")
    ap.add_argument("--model-dir", default=str(Path(tempfile.gettempdir()) / "bench-revise-qwen2-0.5b"))
    ap.add_argument("--no-endpoint", action="store_true", help="skip the transformers serve figures")
    ap.add_argument("--continuous-batching", action="store_true",
                    help="start transformers serve with --continuous-batching (default on CUDA)")
    ap.add_argument("--bandwidth-gbs", type=float, help="GPU memory bandwidth, when the device name is not known")
    ap.add_argument("--json", help="also write the figures to this JSON file")
    args = ap.parse_args(argv)
    cuda = args.device == "cuda"
    n_tokens = args.tokens or (256 if cuda else 32)
    n_batch = args.batch or (32 if cuda else 4)
    model_dir = Path(args.model_dir)
    if not (model_dir / "config.json").exists():
        build_model(model_dir)

    import torch

    if cuda and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device here")
    machine = (torch.cuda.get_device_name(0) if cuda else
               f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}")
    print(f"device: {machine}", file=sys.stderr)

    tmp = tempfile.mkdtemp(prefix="bench-revise-")
    db = Database(Path(tmp) / "bench.duckdb")
    load_demo(db)
    ps = rv.resolve_principles(db, "concise")
    sources = [rv.conversation(db, "demo-assistant-pairs", r) for r in range(n_batch)] if n_batch <= 14 else \
        [rv.conversation(db, "demo-assistant-pairs", r % 14) for r in range(n_batch)]
    prompts = [rv.critique_messages(s.prompt, s.final, ps) for s in sources]
    settings = rv.Settings(max_new_tokens=n_tokens, temperature=0.7, top_p=0.95, seed=0, batch_size=n_batch)
    results: dict = {"device": machine, "tokens": n_tokens, "batch": n_batch}

    t = time.perf_counter()
    local = rv.local_backend(str(model_dir), "cuda" if cuda else "cpu")
    results["load_s"] = time.perf_counter() - t
    results["parameters"] = local.parameters
    print(f"loaded {local.describe()} ({local.parameters / 1e6:.0f}M parameters) in {results['load_s']:.1f} s",
          file=sys.stderr)
    rows: dict = {}
    proc = ep = None
    label = ""
    if not args.no_endpoint:
        continuous = args.continuous_batching or cuda
        proc, url = start_server(model_dir, "cuda" if cuda else "cpu", str(local.dtype), continuous)
        ep = rv.EndpointBackend(url, str(model_dir))
        label = "transformers serve" + (" --continuous-batching" if continuous else "")
    try:
        # local and server measured in turns, so that both meet the same load on a shared machine
        backends = [("local", local)] + ([(label, ep)] if ep else [])
        for _, b in backends:
            stream_once(b, prompts[0], rv.Settings(max_new_tokens=4))  # warm-up
        singles: dict[str, list] = {name: [] for name, _ in backends}
        for _ in range(args.runs):
            for name, b in backends:
                singles[name].append(stream_once(b, prompts[0], settings))
        for name, b in backends:
            rows[f"{name}: single stream"] = median_of(singles[name])
            print(name, "single", rows[f"{name}: single stream"], file=sys.stderr)
        for name, b in backends:
            rows[f"{name}: single revision (critique + revision)"] = revision_once(b, sources[0], ps, settings)
            print(name, "revision", rows[f"{name}: single revision (critique + revision)"], file=sys.stderr)
        for name, b in backends:
            key = f"{name}: batch of {n_batch}" if b is local else f"{name}: {n_batch} concurrent requests"
            rows[key] = batch_once(b, prompts, settings)
            print(name, "batch", rows[key], file=sys.stderr)
        if not cuda:
            key = f"local: batched revision job, {min(n_batch, 14)} rows"
            rows[key] = job_once(db, local, "demo-assistant-pairs", list(range(min(n_batch, 14))), ps, settings)
            print("local job", rows[key], file=sys.stderr)
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
    results["rows"] = rows

    print(f"\nDevice: {machine}; model: random-weight Qwen2, {local.parameters / 1e6:.0f}M parameters, "
          f"{local.dtype}; {n_tokens} new tokens per generation; prompt {int(rows['local: single stream']['prompt_tokens'])} "
          f"tokens (a critique prompt); temperature 0.7\n")
    print("| path | TTFT s | new tokens | seconds | tokens/s | decode tokens/s |")
    print("|---|---|---|---|---|---|")
    for name, r in rows.items():
        ttft = fmt(r.get("ttft_s"), 2)
        if r.get("ttft_first_s") is not None and r.get("batch", 1) > 1:
            ttft = f"{fmt(r['ttft_first_s'], 2)} first, {ttft} last"
        print(f"| {name} | {ttft} | {int(r['tokens']):,} | {fmt(r['seconds'], 1)} | {fmt(r['tok_s'])} | "
              f"{fmt(r.get('decode_tok_s'))} |")
    if cuda:
        bw = bandwidth_gbs(machine, args.bandwidth_gbs)
        results |= bound_report(local.lm, rows, n_batch, bw)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))
    db.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
