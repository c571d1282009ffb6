"""Graded and N-response exports as TRL reads them: a best-worst binarized export of rated responses
trains one DPO step, a graded-label export with its margin trains one RewardTrainer step."""

from __future__ import annotations

import json
import math
import os

import pytest

from components import labels
from components.ingest import ingest
from components.labels import binarized
from components.labels.binarize import RECIPES

from helpers import chat_tokenizer, write_pairs

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# Six prompts of four rated responses (UltraFeedback's raw rows), two aspects rated per response.
SCORES = [[7, 3, 9, 3], [2, 6, 5, 8], [5, 5, 5, 5], [1, 4, 4, 2], [9, 8, 2, 6], [3, 7, 7, 1]]
HELPFUL = [[4, 2, 5, 1], [1, 3, 3, 5], [3, 3, 3, 3], [1, 2, 2, 1], [5, 5, 1, 4], [2, 4, 4, "N/A"]]


def rated_rows() -> list[dict]:
    return [{"instruction": f"Question {i}: how many legs has a spider?", "completions": [
        {"response": f"Answer {i}.{j}: a spider has {6 + j} legs, {'surely' if s > 5 else 'maybe'}.",
         "overall_score": s, "model": f"m{j}",
         "annotations": {"helpfulness": {"Rating": str(h), "Rationale": "why"},
                         "honesty": {"Rating": str(j + 1), "Rationale": "why"}}}
        for j, (s, h) in enumerate(zip(scores, HELPFUL[i]))]} for i, scores in enumerate(SCORES)]


@pytest.fixture
def rated(db, tmp_path):
    path = tmp_path / "uf.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rated_rows()))
    assert ingest(db, str(path), name="uf").rows_loaded == 6
    return db


def lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def texts_of(rows: list[dict]) -> list[str]:
    out = []
    for r in rows:
        for k in ("prompt", "chosen", "rejected"):
            v = r[k]
            out += [m["content"] for m in v] if isinstance(v, list) else [v]
    return out


def test_best_worst_export_of_rated_responses_is_counted_by_hand_and_records_its_seed(rated, tmp_path):
    out = tmp_path / "bw.jsonl"
    s = binarized.export_binarized(rated, "uf", out, recipe="best-worst", seed=7)
    got = lines(out)
    # by hand: the first best against the first worst; prompt 2 is all tied and makes no pair
    expect = [(0, 2, 1, 6.0), (1, 3, 0, 6.0), (3, 1, 0, 3.0), (4, 0, 2, 7.0), (5, 1, 3, 6.0)]
    assert [(r["source_row"], r["chosen_index"], r["rejected_index"], r["margin"]) for r in got] == expect
    assert (s.rows, s.records, s.left_out, s.seed, s.recipe) == (5, 6, {"all tied": 1}, 7, "best-worst")
    assert all(r["seed"] == 7 and r["recipe"] == "best-worst" for r in got)
    rows = rated_rows()
    for r in got:
        src = rows[r["source_row"]]
        assert r["prompt"] == [{"role": "user", "content": src["instruction"]}]
        assert r["chosen"] == [{"role": "assistant", "content": src["completions"][r["chosen_index"]]["response"]}]
        assert r["rejected"][0]["content"] == src["completions"][r["rejected_index"]]["response"]
        # the aspects HelpSteer-style: one number per aspect and side
        h = HELPFUL[r["source_row"]]
        assert r["helpfulness_chosen"] == h[r["chosen_index"]] and r["honesty_rejected"] == r["rejected_index"] + 1
    assert got[-1]["helpfulness_rejected"] is None  # "N/A" is no number
    assert s.aspects == ["helpfulness", "honesty"]

    # best-random: the same seed gives the same file; all-pairs leaves out ties (counted by hand: 16)
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    binarized.export_binarized(rated, "uf", a, recipe="best-random", seed=3, style="standard")
    binarized.export_binarized(rated, "uf", b, recipe="best-random", seed=3, style="standard")
    import pyarrow.parquet as pq

    assert pq.read_table(a).to_pylist() == pq.read_table(b).to_pylist()
    assert binarized.export_binarized(rated, "uf", tmp_path / "all.jsonl", recipe="all-pairs").rows == 5 + 6 + 0 + 5 + 6 + 5
    with pytest.raises(labels.LabelError, match="use one of " + ", ".join(RECIPES)):
        binarized.export_binarized(rated, "uf", tmp_path / "x.jsonl", recipe="median")


def test_the_export_options_parse_into_the_export(rated, tmp_path):
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--format", default="conversational")
    binarized.add_binarize_arguments(parser)
    assert binarized.binarize_options(parser.parse_args([])) is None
    opts = binarized.binarize_options(parser.parse_args(["--binarize", "best-random", "--seed", "5", "--format",
                                                         "standard"]))
    s = binarized.export_binarized(rated, "uf", tmp_path / "br.jsonl", **opts)
    assert (s.recipe, s.seed, s.style, s.rows) == ("best-random", 5, "standard", 5)
    assert all(r["seed"] == 5 and isinstance(r["prompt"], str) for r in lines(tmp_path / "br.jsonl"))
    with pytest.raises(SystemExit):
        parser.parse_args(["--binarize", "median"])


def test_rankings_binarize_per_annotator_with_the_place_difference_as_margin(rated, tmp_path):
    labels.submit(rated, "uf", 0, None, "ada", ranking=[3, 0, 2, 1])
    labels.submit(rated, "uf", 0, None, "bo", ranking="1234")
    labels.submit(rated, "uf", 1, None, "ada", ranking=[1, 0, 2, 3])
    out = tmp_path / "ranked.jsonl"
    s = binarized.export_binarized(rated, "uf", out, recipe="best-worst", source="rankings")
    got = [(r["source_row"], r["annotator"], r["chosen_index"], r["rejected_index"], r["margin"]) for r in lines(out)]
    assert sorted(got) == [(0, "ada", 3, 1, 3.0), (0, "bo", 0, 3, 3.0), (1, "ada", 1, 3, 3.0)]
    assert (s.rankings, s.left_out) == (3, {"unranked": 4})
    one = binarized.export_binarized(rated, "uf", tmp_path / "ada.jsonl", recipe="all-pairs", source="rankings",
                                     annotator="ada")
    assert one.rows == 12 and one.rankings == 2


def test_a_dpo_step_on_the_best_worst_export(rated, tmp_path):
    import torch
    from datasets import load_dataset
    from transformers import LlamaConfig, LlamaForCausalLM
    from trl import DPOConfig, DPOTrainer

    out = tmp_path / "bw.jsonl"
    binarized.export_binarized(rated, "uf", out, recipe="best-worst", seed=1)
    data = load_dataset("json", data_files=str(out), split="train")
    data = data.select_columns(["prompt", "chosen", "rejected"])
    assert len(data) == 5
    tok = chat_tokenizer(texts_of(lines(out)), vocab_size=300)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, bos_token_id=None)
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(tmp_path / "lm")  # saved: DPO loads its reference model from there
    tok.save_pretrained(tmp_path / "lm")
    model = LlamaForCausalLM.from_pretrained(tmp_path / "lm", dtype=torch.float32)
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    args = DPOConfig(output_dir=str(tmp_path / "dpo"), max_steps=1, per_device_train_batch_size=5,
                     learning_rate=1e-3, max_length=96, report_to=[], use_cpu=True, save_strategy="no",
                     logging_steps=1, bf16=False, fp16=False, disable_tqdm=True, dataset_num_proc=None)
    trainer = DPOTrainer(model=model, args=args, train_dataset=data, processing_class=tok)
    assert len(trainer.train_dataset) == 5  # nothing dropped as fully truncated
    result = trainer.train()
    assert trainer.state.global_step == result.global_step == 1
    assert math.isfinite(result.training_loss)
    changed = [k for k, v in model.named_parameters() if not torch.equal(v.detach(), before[k])]
    assert changed, "the DPO step changed no weight"


SCHEMA = {"overall": 7, "aspects": ["helpfulness", "safety"]}
# ada's grades on the 7-point scale (stored from the source's side: negative, its chosen side better)
ADA = {0: (-3, {"helpfulness": "A", "safety": "same"}), 1: (-1, None), 2: (2, {"helpfulness": "B"}),
       3: (3, {"safety": "A"}), 4: (0, None), 5: (-2, {"helpfulness": "A", "safety": "A"})}


@pytest.fixture
def graded(db, tmp_path):
    ingest(db, str(write_pairs(tmp_path / "g.jsonl", 8)), name="g")
    labels.set_setting(db, "g", "label_schema", SCHEMA, "root")
    for row, (grade, aspects) in ADA.items():
        labels.submit(db, "g", row, None, "ada", grade=grade, aspects=aspects)
    labels.submit(db, "g", 6, "both_bad", "ada")
    return db


def test_graded_margin_export_is_the_strength_by_hand(graded, tmp_path):
    db = graded
    out = tmp_path / "graded.jsonl"
    s = labels.export_pairs(db, "g", out, annotator="ada", labeled_only=True, with_grades=True)
    got = {r["source_row"]: r for r in lines(out)}
    src = {i: r for i, r in enumerate(lines(tmp_path / "g.jsonl"))}
    # by hand: |grade| as the margin; a positive grade (B better) flips the pair, and its aspects with it
    assert {row: r["margin"] for row, r in got.items()} == {0: 3.0, 1: 1.0, 2: 2.0, 3: 3.0, 5: 2.0}
    assert {row: r["human_label"] for row, r in got.items()} == {0: "chosen", 1: "chosen", 2: "rejected",
                                                                3: "rejected", 5: "chosen"}
    assert got[2]["chosen"] == src[2]["rejected"] and got[0]["chosen"] == src[0]["chosen"]
    assert (got[0]["aspect_helpfulness"], got[0]["aspect_safety"]) == ("chosen", "tie")
    assert (got[2]["aspect_helpfulness"], got[2]["aspect_safety"]) == ("chosen", None)  # B helped more: written chosen
    assert got[3]["aspect_safety"] == "rejected" and got[1]["aspect_helpfulness"] is None
    assert s.left_out == {"tie": 1, "both_bad": 1, "unlabeled": 1}

    # the team's margin: the mean of the grades, as written; a pair with no grade is left out
    labels.submit(db, "g", 0, None, "bo", grade=-1, aspects={"helpfulness": "B"})
    team = tmp_path / "team.parquet"
    s = labels.export_pairs(db, "g", team, with_grades=True)
    import pyarrow.parquet as pq

    t = {r["source_row"]: r for r in pq.read_table(team).to_pylist()}
    assert t[0]["margin"] == 2.0 and t[0]["aspect_helpfulness"] is None  # one A, one B: no majority
    assert s.left_out == {"tie": 1, "both_bad": 1, "ungraded": 1}
    with pytest.raises(labels.LabelError, match="not both"):
        labels.export_pairs(db, "g", tmp_path / "x.jsonl", with_grades=True, with_scores=True)


def test_a_reward_trainer_step_reads_the_graded_margin(graded, tmp_path):
    import torch
    from datasets import load_dataset
    from transformers import LlamaConfig, LlamaForSequenceClassification
    from trl import RewardConfig, RewardTrainer

    out = tmp_path / "graded.jsonl"
    labels.export_pairs(graded, "g", out, annotator="ada", labeled_only=True, with_grades=True)
    data = load_dataset("json", data_files=str(out), split="train").select_columns(
        ["prompt", "chosen", "rejected", "margin"])
    assert data["margin"] == [abs(ADA[r][0]) for r in (0, 1, 2, 3, 5)] == [3, 1, 2, 3, 2]
    tok = chat_tokenizer(texts_of(lines(out)), vocab_size=300)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=256, num_labels=1,
                         pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, bos_token_id=None)
    torch.manual_seed(0)
    model = LlamaForSequenceClassification(config)
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    args = RewardConfig(output_dir=str(tmp_path / "rm"), max_steps=1, per_device_train_batch_size=5,
                        learning_rate=1e-3, max_length=96, report_to=[], use_cpu=True, save_strategy="no",
                        logging_steps=1, bf16=False, fp16=False, disable_tqdm=True, dataset_num_proc=None)
    trainer = RewardTrainer(model=model, args=args, train_dataset=data, processing_class=tok)
    assert "margin" in trainer.train_dataset.column_names
    result = trainer.train()
    assert trainer.state.global_step == result.global_step == 1
    assert math.isfinite(result.training_loss)
    assert any(not torch.equal(v.detach(), before[k]) for k, v in model.named_parameters())


def test_export_command_binarizes_and_writes_grades(rated, graded, tmp_path, capsys):
    """``app.py export NAME --binarize RECIPE`` and ``--with-grades`` reach the same use cases."""
    import argparse

    from components.labels import cli

    parser = argparse.ArgumentParser()
    cli.add_commands(parser.add_subparsers(), argparse.ArgumentParser(add_help=False))
    out = tmp_path / "cli-bw.jsonl"
    args = parser.parse_args(["export", "uf", "--out", str(out), "--binarize", "best-worst", "--seed", "2", "--json"])
    assert args.run(rated, args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["rows"] == len(lines(out)) == 5 and summary["seed"] == 2 and summary["recipe"] == "best-worst"
    args = parser.parse_args(["export", "uf", "--out", str(out), "--binarize", "best-worst", "--with-scores"])
    assert args.run(rated, args) == 1 and "--binarize" in capsys.readouterr().err
    g = tmp_path / "cli-graded.jsonl"
    args = parser.parse_args(["export", "g", "--out", str(g), "--annotator", "ada", "--labeled-only", "--with-grades"])
    assert args.run(graded, args) == 0
    assert sorted(r["margin"] for r in lines(g)) == [1.0, 2.0, 2.0, 3.0, 3.0]
