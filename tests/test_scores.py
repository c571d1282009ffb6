"""Reward-model scores end to end on real parts: a tiny Llama reward model made here (random weights,
a byte-level BPE tokenizer trained on the test texts, a ChatML chat template), ``app.py score`` as a
subprocess over a real DuckDB file, resuming, Ctrl-C, ``export --with-scores/--min-margin``, and one
step of TRL's RewardTrainer on the exported file."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from helpers import ROOT, chat_tokenizer, write_pairs

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from components.store import Database  # noqa: E402

ENV = os.environ | {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """``python app.py ARGS`` offline, its text output captured."""
    return subprocess.run([sys.executable, str(ROOT / "app.py"), *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=ENV)


def pair_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def make_reward_model(path: Path, texts: list[str]) -> Path:
    """A LlamaForSequenceClassification (hidden 32, 2 layers, one output, random weights) with a
    byte-level BPE tokenizer trained on ``texts`` and a ChatML chat template."""
    import torch
    from transformers import LlamaConfig, LlamaForSequenceClassification

    tok = chat_tokenizer(texts, vocab_size=400)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=512,
                         initializer_range=0.5, num_labels=1, pad_token_id=tok.pad_token_id,
                         eos_token_id=tok.eos_token_id, bos_token_id=None, tie_word_embeddings=False)
    torch.manual_seed(0)
    LlamaForSequenceClassification(config).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def direct_scores(model_dir: str, pairs: list[dict]) -> list[tuple[float, float]]:
    """Each pair's (chosen, rejected) score from one unpadded forward pass per conversation: the
    prompt then the response through the chat template, as reward.py builds it."""
    import torch
    from transformers import AutoModelForSequenceClassification, PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, dtype=torch.float32).eval()
    out = []
    with torch.inference_mode():
        for p in pairs:
            sides = []
            for side in ("chosen", "rejected"):
                ids = tok.apply_chat_template(p["prompt"] + p[side], tokenize=True, return_dict=True)["input_ids"]
                sides.append(float(model(input_ids=torch.tensor([list(ids)])).logits[0, 0]))
            out.append(tuple(sides))
    return out


def stored(db_path: Path, dataset: str) -> dict[int, dict]:
    """The pair_scores rows of ``dataset`` by row (the database opened, read, and closed again)."""
    db = Database(db_path)
    try:
        rows = db.dicts("SELECT * FROM pair_scores WHERE dataset = ? ORDER BY row", [dataset])
        counts = db.rows("SELECT row, count(*) FROM pair_scores WHERE dataset = ? GROUP BY row", [dataset])
    finally:
        db.close()
    assert all(n == 1 for _, n in counts), counts
    return {r["row"]: r for r in rows}


def jobs(db_path: Path) -> list[dict]:
    got = cli("jobs", "--json", "--db", str(db_path))
    assert got.returncode == 0, got.stderr
    return json.loads(got.stdout)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """40 pairs loaded as ``pairs`` (and 200 as ``many``), a reward model, and the database file."""
    tmp = tmp_path_factory.mktemp("scores")
    src = write_pairs(tmp / "pairs.jsonl", 40)
    many = write_pairs(tmp / "many.jsonl", 200)
    texts = [m["content"] for r in pair_lines(many) for s in ("prompt", "chosen", "rejected") for m in r[s]]
    model = str(make_reward_model(tmp / "reward", texts))
    db_path = tmp / "studio.duckdb"
    for f, name in ((src, "pairs"), (many, "many")):
        got = cli("ingest", str(f), "--name", name, "--db", str(db_path))
        assert got.returncode == 0, got.stderr
    return {"tmp": tmp, "src": src, "many": many, "model": model, "db": db_path}


def score(world, name: str, *extra: str) -> subprocess.CompletedProcess:
    return cli("score", name, "--model", world["model"], "--device", "cpu", "--db", str(world["db"]), "--json",
               *extra)


def test_score_stores_both_sides_equal_to_a_direct_forward_pass(world):
    got = score(world, "pairs", "--batch-size", "7")
    assert got.returncode == 0, got.stderr
    assert "Traceback" not in got.stderr
    summary = json.loads(got.stdout)
    assert (summary["status"], summary["total"], summary["done"], summary["failed"], summary["before"]) == \
        ("done", 40, 40, 0, 0)
    assert summary["scored"] == 40 and summary["where"] == "process"
    assert summary["model_revision"].startswith("sha256:")

    rows = stored(world["db"], "pairs")
    assert sorted(rows) == list(range(40))
    expected = direct_scores(world["model"], pair_lines(world["src"]))
    for row, (c, r) in enumerate(expected):
        s = rows[row]
        assert s["score_chosen"] == pytest.approx(c, abs=1e-4), row
        assert s["score_rejected"] == pytest.approx(r, abs=1e-4), row
        assert s["margin"] == pytest.approx(s["score_chosen"] - s["score_rejected"], abs=1e-12)
        assert (s["model"], s["model_revision"], s["kind"], s["job"]) == \
            (world["model"], summary["model_revision"], "reward", summary["job"])
    # random weights still tell the pairs apart: the scores are not one constant
    assert len({round(s["score_chosen"], 6) for s in rows.values()}) > 10

    # the same command again: every pair is done before, nothing is scored again
    again = score(world, "pairs", "--batch-size", "7")
    assert again.returncode == 0, again.stderr
    second = json.loads(again.stdout)
    assert (second["status"], second["total"], second["before"], second["done"], second["failed"]) == \
        ("done", 40, 40, 0, 0)
    assert second["scored"] == 40
    after = stored(world["db"], "pairs")
    assert {r: (s["job"], s["scored_at"], s["score_chosen"]) for r, s in after.items()} == \
        {r: (s["job"], s["scored_at"], s["score_chosen"]) for r, s in rows.items()}
    listed = {j["id"]: j for j in jobs(world["db"])}
    assert listed[summary["job"]]["status"] == "done" and listed[summary["job"]]["rows_done"] == 40
    assert listed[second["job"]]["rows_done"] == 40 and listed[second["job"]]["rows_total"] == 40


def test_ctrl_c_keeps_what_was_scored_and_the_next_run_does_the_rest(world):
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "app.py"), "score", "many", "--model", world["model"], "--device", "cpu",
         "--db", str(world["db"]), "--json", "--batch-size", "1"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    lines: list[str] = []
    progressed = threading.Event()

    def read():
        for line in proc.stderr:
            lines.append(line)
            if line.startswith("["):  # "[n/200] n done, 0 failed · ..."
                progressed.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert progressed.wait(60), "".join(lines)
    proc.send_signal(signal.SIGINT)
    out, rest = proc.communicate(timeout=60)  # stderr left unread by the reader thread comes back here
    reader.join(10)
    err = "".join(lines) + (rest or "")
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert "interrupted: what was written is kept" in err
    assert out == ""
    kept = stored(world["db"], "many")
    assert 1 <= len(kept) < 200, len(kept)
    job = kept[min(kept)]["job"]
    [first] = [j for j in jobs(world["db"]) if j["id"] == job]
    assert first["status"] == "interrupted" and first["rows_done"] == len(kept)

    rest = score(world, "many", "--batch-size", "16")
    assert rest.returncode == 0, rest.stderr
    summary = json.loads(rest.stdout)
    assert summary["job"] == job and summary["resumed"] is True
    assert (summary["status"], summary["total"], summary["before"], summary["done"]) == \
        ("done", 200, len(kept), 200 - len(kept))
    final = stored(world["db"], "many")  # one row per pair (checked in stored)
    assert sorted(final) == list(range(200))
    for row, s in kept.items():  # the scores written before Ctrl-C are the ones kept
        assert (final[row]["scored_at"], final[row]["score_chosen"]) == (s["scored_at"], s["score_chosen"])
    expected = direct_scores(world["model"], pair_lines(world["many"]))
    for row, (c, r) in enumerate(expected):
        assert (final[row]["score_chosen"], final[row]["score_rejected"]) == \
            (pytest.approx(c, abs=1e-4), pytest.approx(r, abs=1e-4)), row


def test_export_with_scores_and_min_margin_then_reward_trainer_trains_on_it(world):
    if not stored(world["db"], "pairs"):
        assert score(world, "pairs").returncode == 0
    rows = stored(world["db"], "pairs")
    out = world["tmp"] / "scored.jsonl"
    got = cli("export", "pairs", "--with-scores", "--out", str(out), "--json", "--db", str(world["db"]))
    assert got.returncode == 0, got.stderr
    written = pair_lines(out)
    source = pair_lines(world["src"])
    assert [r["source_row"] for r in written] == list(range(40))
    for r in written:
        s = rows[r["source_row"]]
        assert (r["score_chosen"], r["score_rejected"]) == (s["score_chosen"], s["score_rejected"])
        assert r["margin"] == pytest.approx(r["score_chosen"] - r["score_rejected"], abs=1e-12)
        assert r["chosen"] == source[r["source_row"]]["chosen"]  # no labels: the pair as in the source

    # a threshold that is one of the stored margins: the rows at or above it, exactly
    margins = sorted(s["margin"] for s in rows.values())
    x = margins[len(margins) // 3]
    db = Database(world["db"])
    try:
        at_least = db.scalar("SELECT count(*) FROM pair_scores WHERE dataset = 'pairs' AND margin >= ?", [x])
    finally:
        db.close()
    assert 0 < at_least < 40
    kept_file = world["tmp"] / "margin.jsonl"
    got = cli("export", "pairs", "--with-scores", "--min-margin", repr(x), "--out", str(kept_file), "--json",
              "--db", str(world["db"]))
    assert got.returncode == 0, got.stderr
    kept = pair_lines(kept_file)
    assert len(kept) == at_least == json.loads(got.stdout)["rows"]
    assert all(r["margin"] >= x for r in kept)
    assert {r["source_row"] for r in kept} == {row for row, s in rows.items() if s["margin"] >= x}

    # TRL's RewardTrainer: one step on the exported file, its margin column read, a finite loss
    import torch
    from datasets import load_dataset
    from transformers import AutoModelForSequenceClassification, PreTrainedTokenizerFast
    from trl import RewardConfig, RewardTrainer

    data = load_dataset("json", data_files=str(out), split="train")
    data = data.remove_columns([c for c in data.column_names if c not in ("prompt", "chosen", "rejected", "margin")])
    assert "margin" in data.column_names and len(data) == 40
    tok = PreTrainedTokenizerFast.from_pretrained(world["model"])
    model = AutoModelForSequenceClassification.from_pretrained(world["model"], dtype=torch.float32)
    config = RewardConfig(output_dir=str(world["tmp"] / "trl"), max_steps=1, per_device_train_batch_size=8,
                          report_to=[], use_cpu=True, save_strategy="no", logging_steps=1, dataset_num_proc=None,
                          bf16=False, fp16=False, disable_tqdm=True)
    trainer = RewardTrainer(model=model, args=config, train_dataset=data, processing_class=tok)
    assert "margin" in trainer.train_dataset.column_names
    result = trainer.train()
    assert result.global_step == 1
    assert math.isfinite(result.training_loss)
