"""Statistics, duplicates and contamination on known tables (real DuckDB files, real ingest)."""

from __future__ import annotations

import json
import math

import pytest

from helpers import run_cli, shared_file, write_pairs

from components import insights, labels, triage
from components.views import stats as stats_view
from components.ingest import ingest
from components import catalogue


def _pair(prompt: str, chosen: str, rejected: str, **extra) -> dict:
    return {"prompt": [{"role": "user", "content": prompt}], "chosen": [{"role": "assistant", "content": chosen}],
            "rejected": [{"role": "assistant", "content": rejected}], **extra}


@pytest.mark.shared
def test_length_bias_share_matches_an_independent_count_on_ultrafeedback(db):
    path = shared_file("ultrafeedback-binarized-sample", "train_clean.jsonl")
    ingest(db, str(path), name="uf")
    raw = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    longer = sum(len(r["chosen"]) > len(r["rejected"]) for r in raw)
    nonpositive = sum(r["metadata"]["score_chosen"] - r["metadata"]["score_rejected"] <= 0 for r in raw)

    s = insights.dataset_stats(db, "uf")

    assert s["rows"] == len(raw) == 1000
    assert s["length_bias"]["chosen_longer"] == longer
    assert s["length_bias"]["chosen_longer_share"] == longer / len(raw)
    assert s["ratings"]["margin_nonpositive"] == nonpositive
    # the signed-difference bars cover every pair once, and each leads to exactly its pairs
    d = s["length_bias"]["by_difference"]
    assert sum(d["counts"]) == len(raw)
    shorter_500 = {i for i, r in enumerate(raw) if len(r["chosen"]) - len(r["rejected"]) <= -500}
    got = set()
    for key in d["keys"][:2]:  # shorter by 2000+, and by 500-1999
        found = insights.rows_for(db, "uf", key, limit=10_000)
        assert found.total == len(found.rows) == d["counts"][d["keys"].index(key)]
        got |= set(found.rows)
    assert got == shorter_500


def test_length_histogram_bins_lead_to_exactly_their_rows(db, tmp_path):
    rows = [_pair(f"question {i}", "x" * (i * 37 % 900), "y" * (i * 53 % 700), score_chosen=i % 5,
                  score_rejected=(i * 3) % 5) for i in range(120)]
    (tmp_path / "p.jsonl").write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    ingest(db, str(tmp_path / "p.jsonl"), name="p")
    s = insights.dataset_stats(db, "p")
    h = s["lengths"]
    assert sum(h["series"]["chosen"]) == sum(h["series"]["rejected"]) == 120
    b = h["bins"]
    for i, (key, n) in enumerate(zip(h["keys_chosen"], h["series"]["chosen"])):
        expected = [r for r, p in enumerate(rows)
                    if min(max(math.floor((len(p["chosen"][0]["content"]) - b["start"]) / b["width"]), 0),
                           b["count"] - 1) == i]
        found = insights.rows_for(db, "p", key, limit=1000)
        assert found.rows == expected and found.total == n == len(expected)
    margin = insights.rows_for(db, "p", "margin_nonpositive", limit=1000).rows
    assert margin == [i for i in range(120) if i % 5 - (i * 3) % 5 <= 0]
    # a bar is also a labeling queue of exactly its pairs (the Statistics tab links to it)
    from components import labels

    assert sorted(triage.open_queue(db, "p", "bin", "margin_nonpositive").rows) == margin


def test_planted_exact_and_near_duplicates_are_found(db, tmp_path):
    long_prompt = ("Write a short story about a lighthouse keeper who finds a message in a bottle "
                   "that was sent forty years earlier by her own grandmother from a ship near Lisbon.")
    near = long_prompt.upper().replace("short story", "short tale").replace(",", "") + "!!"
    extra = [
        _pair("What is 3 plus 3?", "Six.", "Seven."),           # 20: same prompt as 21, other responses
        _pair("What is 3 plus 3?", "It is six.", "Nine."),      # 21
        _pair("Name a colour.", "Blue.", "Green."),              # 22: exact duplicate pair of 23
        _pair("Name a colour.", "Blue.", "Green."),              # 23
        _pair(long_prompt, "A story.", "No."),                   # 24: near duplicate of 25
        _pair(near, "Another story.", "Nope."),                  # 25
        _pair("Say hi.", "Hi!", "Hi!"),                          # 26: chosen identical to rejected
        _pair("Say nothing.", "", "Something."),                 # 27: an empty side
    ]
    write_pairs(tmp_path / "d.jsonl", 20, extra)
    ingest(db, str(tmp_path / "d.jsonl"), name="d")

    s = insights.dataset_stats(db, "d")
    dup = s["duplicates"]

    assert dup["duplicate_prompts"]["groups"] == 2 and dup["duplicate_prompts"]["rows"] == 4
    assert sorted(insights.rows_for(db, "d", "dup_prompt").rows) == [20, 21, 22, 23]
    assert dup["duplicate_pairs"]["groups"] == 1
    assert insights.rows_for(db, "d", "dup_pair").rows == [22, 23]
    assert dup["identical_sides"] == 1 and insights.rows_for(db, "d", "identical").rows == [26]
    assert s["flagged_empty_side"] == 1 and insights.rows_for(db, "d", "flagged").rows == [27]
    clusters = dup["near"]["clusters"]
    assert [c["first_rows"] for c in clusters] == [[24, 25]]  # the numbered questions differ in a number only:
    assert insights.rows_for(db, "d", clusters[0]["key"]).rows == [24, 25]  # too short to be near duplicates


def test_label_statistics_reuse_agreement(db, tmp_path):
    write_pairs(tmp_path / "l.jsonl", 10)
    ingest(db, str(tmp_path / "l.jsonl"), name="l")
    for row in range(10):
        labels.add_label(db, "l", row, "chosen", "ann", tags=["style"] if row < 4 else [])
        labels.add_label(db, "l", row, "chosen" if row % 3 else "rejected", "bob")
    s = insights.dataset_stats(db, "l")["labels"]
    assert s["labels"] == 20
    p = s["per_annotator"]
    assert p["annotators"] == ["ann", "bob"]
    assert p["counts"]["chosen"] == [10, 6] and p["counts"]["rejected"] == [0, 4]
    assert insights.rows_for(db, "l", p["keys"]["rejected"][1]).rows == [0, 3, 6, 9]
    pair = labels.agreement(db, "l").pairwise[0]
    assert s["agreement"]["kappa"][0][1] == pair["kappa"] and s["agreement"]["shared"][0][1] == 10
    assert [t["tag"] for t in s["per_tag"]] == ["style"]
    assert insights.rows_for(db, "l", s["per_tag"][0]["key"]).rows == [0, 1, 2, 3]
    # every chosen response is shorter than its rejected one in write_pairs: "chosen" labels pick the shorter
    assert s["length_bias"]["judgments"] == 20
    assert s["length_bias"]["longer_picked_share"] == 4 / 20


EVAL_PROMPTS = [
    "Explain why the sky over the Atacama desert looks darker blue than over the sea at noon.",
    "List three reasons the Roman aqueduct of Segovia survived two thousand years without mortar.",
    "In this task, you are given a sentence in French. Translate the sentence into English: le chat dort sur la chaise rouge.",
    "In this task, you are given a sentence in French. Translate the sentence into English: il pleut depuis trois jours.",
]
TEMPLATE = "In this task, you are given a sentence in French. Translate the sentence into English:"


def test_contamination_finds_planted_prompts_above_template_overlaps(db, tmp_path):
    ev = [_pair(p, "answer", "other answer") for p in EVAL_PROMPTS]
    (tmp_path / "eval.jsonl").write_text("\n".join(json.dumps(r) for r in ev), encoding="utf-8")
    train = [
        _pair("Please help. " + EVAL_PROMPTS[0].upper().replace(" ", "   ").replace(".", "?!") + " Thanks a lot!", "a", "b"),
        _pair("Some homework first:\n\n" + EVAL_PROMPTS[1].lower().replace("two thousand", "two-thousand") + "\nGo.",
              "a", "b"),
        _pair(TEMPLATE + " la maison est grande et belle.", "a", "b"),                 # 2: template only
        _pair(TEMPLATE + " nous allons au marché demain matin.", "a", "b"),             # 3: template only
        _pair(TEMPLATE + " le chien aboie toute la nuit.", "a", "b"),                    # 4: template only
        _pair("A cooking question about bread and butter with no overlap at all.", "a", "b"),
        _pair("Quote: " + EVAL_PROMPTS[2].replace(",", " ;"), "a", "b"),                # 6: a templated prompt copied
    ]
    (tmp_path / "train.jsonl").write_text("\n".join(json.dumps(r) for r in train), encoding="utf-8")
    ingest(db, str(tmp_path / "eval.jsonl"), name="ev")
    ingest(db, str(tmp_path / "train.jsonl"), name="tr")

    result = insights.find_contamination(db, "tr", ["ev"], n=8)
    by_row = {m.row: m for m in result.matches}

    assert set(by_row) == {0, 1, 2, 3, 4, 6}
    assert (by_row[0].eval_row, by_row[1].eval_row, by_row[6].eval_row) == (0, 1, 2)
    assert by_row[0].score == by_row[1].score == by_row[6].score == 1.0
    assert [m.row for m in result.matches[:3]] == [0, 1, 6]  # copies first
    assert all(by_row[r].score < 0.8 and by_row[r].template_share == 1.0 for r in (2, 3, 4))
    assert by_row[0].template_share == 0.0
    # the highlighted span is the copied prompt, in the row's own spelling
    text = catalogue.record(db, "tr", 0)["prompt"][0]["content"]
    (start, end, template), = by_row[0].spans
    assert text[start:end].startswith("EXPLAIN") and text[start:end].endswith("NOON") and template == 0
    assert "<mark>EXPLAIN" in insights.highlight(text, by_row[0].spans)
    span_kinds = {s[2] for s in by_row[6].spans}
    assert span_kinds == {0, 1}  # the template part dotted, the copied sentence marked

    # the threshold is a filter: export the clean subset
    suspects = insights.find_contamination(db, "tr", "ev", threshold=0.9, limit=None).matches
    assert sorted(m.row for m in suspects) == [0, 1, 6]
    out = tmp_path / "clean.jsonl"
    assert insights.export_clean(db, "tr", [m.row for m in suspects], out) == 4
    ingest(db, str(out), name="clean")
    kept = [catalogue.record(db, "clean", i)["prompt"][0]["content"] for i in range(4)]
    assert kept == [train[i]["prompt"][0]["content"] for i in (2, 3, 4, 5)]

    # "Label the suspects": the queue holds exactly the rows at or above the threshold, copies first
    q = insights.suspects_query(["ev"], 8, "prompt", 0.9)
    assert triage.open_queue(db, "tr", "contamination", q).rows == [0, 1, 6]
    assert sorted(triage.open_queue(db, "tr", "contamination", insights.suspects_query(["ev"], 8, "prompt", 0.0)).rows) \
        == [0, 1, 2, 3, 4, 6]
    labels.add_label(db, "tr", 0, "rejected", "ann")
    assert triage.next_in_queue(db, "tr", "ann", "contamination", q) == 1
    html = stats_view.contamination_html(db, result, 0.9, 1000)
    assert "Label the 3 suspects at score ≥ 0.90" in html and "queue=contamination" in html
    with pytest.raises(labels.LabelError, match="names its check"):
        triage.open_queue(db, "tr", "contamination", "{not json")


def test_contamination_rejects_bad_requests_in_one_line(demo_db):
    with pytest.raises(insights.ContaminationError, match="no dataset named"):
        insights.find_contamination(demo_db, "nope", ["demo-trl-standard"])
    with pytest.raises(insights.ContaminationError, match="n must be"):
        insights.find_contamination(demo_db, "demo-trl-standard", ["demo-trl-standard"], n=0)
    with pytest.raises(insights.StatsError, match="not preference pairs"):
        insights.dataset_stats(demo_db, "demo-field-notes")
    with pytest.raises(insights.StatsError, match="unknown bar"):
        insights.rows_for(demo_db, "demo-trl-standard", "len_chars:999")


def test_cli_stats_and_contamination_json(tmp_path):
    from components.store import Database

    db = Database(tmp_path / "cli.duckdb")
    write_pairs(tmp_path / "c.jsonl", 12)
    ingest(db, str(tmp_path / "c.jsonl"), name="c")
    db.close()
    done = run_cli("stats", "c", "--json", "--db", str(tmp_path / "cli.duckdb"))
    assert done.returncode == 0, done.stderr
    s = json.loads(done.stdout)
    assert s["rows"] == 12 and s["length_bias"]["chosen_longer_share"] == 0.0
    done = run_cli("contamination", "c", "--against", "c", "--json", "--db", str(tmp_path / "cli.duckdb"))
    assert done.returncode == 0, done.stderr
    matches = json.loads(done.stdout)
    assert {(m["row"], m["eval_row"], m["score"]) for m in matches} == {(i, i, 1.0) for i in range(12)}
    bad = run_cli("stats", "nope", "--db", str(tmp_path / "cli.duckdb"))
    assert bad.returncode == 1 and bad.stderr.strip() == "error: no dataset named 'nope'"
