"""The persona judge's per-side ratings: 1-10 for each reply, stored as scores that queues,
suggestions and exports read as they read a reward model's."""

from __future__ import annotations

import json
import os

import pytest

from helpers import run_cli, write_pairs

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from components import labels, personas as pz, revise as rv  # noqa: E402
from components.labels import queues, suggestions  # noqa: E402
from components.scores.store import current_scores, scoring_models  # noqa: E402
from components import catalogue  # noqa: E402

PAIRS = "demo-assistant-pairs"


def steered_model(tiny_model: str, answer: str, path) -> str:
    """The tiny model with weights set so that, greedy, it answers every prompt ``answer``.

    Attention and MLP outputs are zeroed, so the last hidden state is the current token's embedding
    and the model is a bigram machine: its output head maps the generation prompt's last token to the
    answer's first, each token of the answer to the next one, and the answer's last to the end of turn.
    """
    import torch
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

    if (path / "config.json").exists():
        return str(path)
    tok = PreTrainedTokenizerFast.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    start = tok.apply_chat_template([{"role": "user", "content": "x"}], tokenize=False, add_generation_prompt=True)
    chain = [tok(start, add_special_tokens=False)["input_ids"][-1]]
    chain += tok(answer, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    assert len(set(chain[:-1])) == len(chain) - 1  # each input token has one successor
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        head = model.lm_head.weight
        head.zero_()
        emb = model.model.embed_tokens.weight
        for current, following in zip(chain, chain[1:]):
            head[following] = 10 * emb[current] / emb[current].norm()
    tmp = path.with_name(path.name + ".partial")
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    tmp.rename(path)
    return str(path)


@pytest.fixture(scope="module")
def rater(tiny_model, tmp_path_factory) -> str:
    """A judge that answers every prompt "Rating: 8"."""
    return steered_model(tiny_model, "Rating: 8", tmp_path_factory.getbasetemp() / "rates-eight")


def stored(db, dataset: str, model: str) -> list[tuple]:
    return db.rows("SELECT row, kind, score_chosen, score_rejected, margin FROM pair_scores "
                   "WHERE dataset = ? AND model = ? ORDER BY row", [dataset, model])


def test_parse_rating_reads_a_rating_and_guesses_none():
    assert [pz.parse_rating(t) for t in ("Rating: 8", "rating - 2/10. Too long.", "**Score:** 9", "10/10")] == \
        [8, 2, 9, 10]
    for text in ("Rating: eleven", "Rating: 12", "Rating: 6.5", "Rating: 7/100", "Rating: 3 ... Rating: 4",
                 "I like it", "", "8 reasons to care", 17):
        assert pz.parse_rating(text) is None, text


def test_ratings_land_in_pair_scores_and_are_read_like_a_reward_models(demo_db, rater):
    judge = rv.local_backend(rater, "cpu")
    farmer = pz.resolve(demo_db, "rural-farmer")
    labels.add_label(demo_db, PAIRS, 0, "rejected", "ada")
    s = pz.rate_pairs(demo_db, PAIRS, farmer, judge, rows="0-5", scored_by="cli")
    assert (s.rows, s.rated, s.unparseable, s.already) == (6, 6, 0, 0)
    assert s.model_key == "sim-rural-farmer@rates-eight" and s.revision.startswith("judge:")
    assert stored(demo_db, PAIRS, s.model_key) == [(r, "judge", 8.0, 8.0, 0.0) for r in range(6)]
    assert (s.mean_chosen, s.mean_rejected) == (8.0, 8.0)
    # no label is written: ratings are scores
    assert labels.labeled_rows(demo_db, PAIRS, pz.annotator_name("rural-farmer", rater)) == {}
    # the readers of reward-model scores read them unchanged
    assert scoring_models(demo_db, PAIRS) == [s.model_key]
    assert current_scores(demo_db, PAIRS, s.model_key)["row"].to_pylist() == list(range(6))
    assert queues.score_rows(demo_db, PAIRS, "uncertain") == list(range(6))
    info = catalogue.dataset(demo_db, PAIRS)
    src = suggestions.source(demo_db, PAIRS, info.version, s.model_key)
    assert src["revision"] == s.revision and suggestions.lookup(demo_db, PAIRS, 3, src)["margin"] == 0.0
    # the same judge again: left as it is; against principles: a judge of its own
    again = pz.rate_pairs(demo_db, PAIRS, farmer, judge, rows="0-5")
    assert (again.already, again.rated) == (6, 0)
    honest = rv.resolve_principles(demo_db, None)[:1]
    p = pz.rate_pairs(demo_db, PAIRS, farmer, judge, principles=honest, rows="0-1")
    assert p.model_key == f"sim-rural-farmer@rates-eight:{honest[0].id}" and p.rated == 2
    assert honest[0].text in pz.rating_messages(farmer, [], [{"role": "assistant", "content": "hi"}], honest)[1]["content"]
    assert sorted(scoring_models(demo_db, PAIRS)) == sorted([s.model_key, p.model_key])


def test_an_unreadable_judge_counts_its_pairs_and_stores_nothing_for_them(demo_db, tiny_model):
    judge = rv.local_backend(tiny_model, "cpu")  # random weights write gibberish
    s = pz.rate_pairs(demo_db, PAIRS, pz.resolve(demo_db, "teen-gamer"), judge,
                      rv.Settings(max_new_tokens=6, temperature=0.8, seed=1), limit=4)
    rows = [r[0] for r in stored(demo_db, PAIRS, s.model_key)]
    assert s.rated + s.unparseable == 4 and len(s.unparseable_rows) == s.unparseable >= 1
    assert len(rows) == s.rated and not set(rows) & set(s.unparseable_rows)


def test_judge_ratings_cli_then_export_with_scores(tmp_path, rater):
    db = tmp_path / "s.duckdb"
    src = write_pairs(tmp_path / "pairs.jsonl", 4)
    assert run_cli("ingest", str(src), "--name", "pairs", "--db", str(db)).returncode == 0
    r = run_cli("judge", "pairs", "--persona", "retired-teacher", "--model", rater, "--ratings", "--limit", "3",
                "--db", str(db), "--json")
    assert r.returncode == 0, r.stderr
    [summary] = json.loads(r.stdout)
    assert (summary["rated"], summary["unparseable"], summary["model_key"]) == \
        (3, 0, "sim-retired-teacher@rates-eight")
    out = tmp_path / "scored.jsonl"
    r = run_cli("export", "pairs", "--with-scores", "--out", str(out), "--db", str(db))
    assert r.returncode == 0, r.stderr
    written = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(written) == 3 and {(w["score_chosen"], w["score_rejected"], w["margin"]) for w in written} == \
        {(8.0, 8.0, 0.0)}
    bad = run_cli("judge", "pairs", "--persona", "retired-teacher", "--model", rater, "--ratings", "--again",
                  "--db", str(db))
    assert bad.returncode != 0 and "--again" in bad.stderr
