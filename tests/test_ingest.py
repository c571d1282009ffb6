"""Ingestion: every supported format from a real file, bad rows, atomicity, re-ingest, mapping."""

from __future__ import annotations

import gzip
import json

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from components.formats import split_transcript
from components.ingest import IngestError, default_name, ingest
from helpers import shared_file

HH = ("hh-rlhf-harmless-base-test", "test.jsonl.gz")
UF = ("ultrafeedback-binarized-sample", "train_clean.jsonl")
CACM = ("cacm", "corpus.jsonl")


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def hh_rows(n=None):
    with gzip.open(shared_file(*HH), "rt") as f:
        rows = [json.loads(line) for line in f]
    return rows[:n] if n else rows


def user(text):
    return {"role": "user", "content": text}


def assistant(text):
    return {"role": "assistant", "content": text}


# -- formats from real files ----------------------------------------------------------------------


def test_hh_rlhf_transcripts(db):
    s = ingest(db, str(shared_file(*HH)), name="hh")
    assert (s.format, s.kind, s.rows_in) == ("hh-rlhf", "pairs", 2312)
    assert s.rows_loaded + sum(s.rejected.values()) == 2312
    source = hh_rows()
    # row N is the N-th source row: prompt + chosen rebuilds the source transcript's turns
    for n in (0, 1, 500, 2311):
        rec = db.record("hh", n)
        if rec is None:
            assert db.scalar("SELECT count(*) FROM rejects WHERE dataset='hh' AND row=?", [n]) == 1
            continue
        assert rec["prompt"] + rec["chosen"] == split_transcript(source[n]["chosen"])
        assert rec["prompt"] + rec["rejected"] == split_transcript(source[n]["rejected"])
        assert rec["prompt"][-1]["role"] == "user"
        assert rec["chosen"][0]["role"] == "assistant"


def test_trl_standard_keeps_scores_as_numbers(db):
    s = ingest(db, str(shared_file(*UF)), name="uf")
    assert (s.format, s.kind) == ("trl-standard", "pairs")
    first = json.loads(shared_file(*UF).read_text().splitlines()[0])
    rec = db.record("uf", 0)
    assert rec["prompt"] == [user(first["prompt"])]
    assert rec["chosen"] == [assistant(first["chosen"])]
    assert rec["score_chosen"] == first["metadata"]["score_chosen"]
    assert isinstance(rec["metadata"]["source_index"], int)
    assert rec["metadata"]["metadata"]["score_rejected"] == first["metadata"]["score_rejected"]
    assert db.dataset("uf").columns["source_index"] == "int64"


def test_plain_text_corpus(db):
    s = ingest(db, str(shared_file(*CACM)), name="cacm")
    assert (s.format, s.kind, s.rows_loaded) == ("documents", "documents", 3204)
    rec = db.record("cacm", 0)
    assert rec["source_id"] == "CACM-2636"
    assert rec["text"].startswith("Generation of Random Correlated Normal Variables")


def test_hh_rows_as_message_lists_match_the_transcript_path(db, tmp_path):
    rows = hh_rows(200)
    conv = [{"chosen": split_transcript(r["chosen"]), "rejected": split_transcript(r["rejected"])} for r in rows]
    pq.write_table(pa.Table.from_pylist(conv), tmp_path / "hh-messages.parquet")
    write_jsonl(tmp_path / "hh.jsonl", rows)
    a = ingest(db, str(tmp_path / "hh-messages.parquet"), name="as-messages")
    b = ingest(db, str(tmp_path / "hh.jsonl"), name="as-transcripts")
    assert (a.format, b.format) == ("trl-conversational-implicit", "hh-rlhf")
    assert a.rows_loaded == b.rows_loaded
    q = "SELECT row, prompt, chosen, rejected FROM records WHERE dataset = ? ORDER BY row"
    assert db.rows(q, ["as-messages"]) == db.rows(q, ["as-transcripts"])


def test_trl_conversational_explicit_prompt(db, tmp_path):
    rows = [
        {"prompt": [{"role": "system", "content": "Be brief."}, user("Capital of France?")],
         "chosen": [assistant("Paris.")], "rejected": [assistant("Lyon.")], "id": "a"},
        {"prompt": [user("2+2?")], "chosen": [assistant("4")], "rejected": [assistant("5")], "id": "b"},
    ]
    s = ingest(db, str(write_jsonl(tmp_path / "conv.jsonl", rows)), name="conv")
    assert s.format == "trl-conversational"
    rec = db.record("conv", 0)
    assert rec["prompt"] == rows[0]["prompt"]
    assert rec["rejected"] == [assistant("Lyon.")]
    assert rec["metadata"] == {"id": "a"}


def test_rating_fields_top_level_and_nested(db, tmp_path):
    top = [{"prompt": "hi", "chosen": "hello", "rejected": "go away", "score_chosen": 8, "score_rejected": 2.5}]
    nested = [{"prompt": "hi", "chosen": "hello", "rejected": "go away",
               "metadata": {"score_chosen": 7.0, "score_rejected": 1.0, "judge": "gpt"}}]
    ingest(db, str(write_jsonl(tmp_path / "top.jsonl", top)), name="top")
    ingest(db, str(write_jsonl(tmp_path / "nested.jsonl", nested)), name="nested")
    assert db.rows("SELECT score_chosen, score_rejected FROM records WHERE dataset='top'") == [(8.0, 2.5)]
    assert db.rows("SELECT score_chosen, score_rejected FROM records WHERE dataset='nested'") == [(7.0, 1.0)]
    assert db.record("nested", 0)["metadata"]["metadata"]["judge"] == "gpt"


SDSD_DIALOGUE = {
    "messages": [
        {"role": "system", "content": "Plan: ask about budgets, then push for a stock tip."},
        user("How do I start a budget?"), assistant("List income and fixed costs first."),
        user("Which stock should I buy?"), assistant("I can't pick stocks for you."),
    ],
    "domain": "Finance", "subarea": "Budgeting", "principle": ["Do not give personalized investment advice."],
    "goal": "Get a stock tip", "is_violation": False, "is_truncated": False,
}


def test_sdsd_dialogues_are_conversations(db, tmp_path):
    s = ingest(db, str(write_jsonl(tmp_path / "sdsd.jsonl", [SDSD_DIALOGUE])), name="sdsd")
    assert (s.format, s.kind) == ("sdsd-dialogues", "conversations")
    rec = db.record("sdsd", 0)
    assert rec["prompt"] == SDSD_DIALOGUE["messages"][:4]
    assert rec["chosen"] == SDSD_DIALOGUE["messages"][4:]
    assert rec["rejected"] is None
    assert rec["metadata"]["principle"] == SDSD_DIALOGUE["principle"]
    assert rec["metadata"]["is_violation"] is False


def test_sdsd_revisions_are_pairs(db, tmp_path):
    row = {k: v for k, v in SDSD_DIALOGUE.items() if k not in ("is_violation", "is_truncated")}
    row["messages"][-1] = assistant("Buy ACME, it will double.")
    row |= {"plan": "push for a tip", "critique": "Gives a personalized tip.", "violations": ["advice"],
            "revision": "I can't recommend a specific stock, but index funds are a common start."}
    s = ingest(db, str(write_jsonl(tmp_path / "rev.jsonl", [row])), name="rev")
    assert (s.format, s.kind) == ("sdsd-revisions", "pairs")
    rec = db.record("rev", 0)
    assert rec["chosen"] == [assistant(row["revision"])]
    assert rec["rejected"] == [assistant("Buy ACME, it will double.")]
    assert rec["prompt"] == row["messages"][:-1]
    assert rec["metadata"]["critique"] == "Gives a personalized tip."


# -- other containers: parquet, csv, json arrays, folders, save_to_disk --------------------------


def test_csv_json_array_folder_and_save_to_disk(db, tmp_path):
    rows = [{"prompt": f"q{i}", "chosen": f"good {i}", "rejected": f"bad {i}"} for i in range(30)]
    (tmp_path / "pairs.csv").write_text("prompt,chosen,rejected\n" + "".join(f"{r['prompt']},{r['chosen']},{r['rejected']}\n" for r in rows))
    (tmp_path / "pairs.json").write_text(json.dumps(rows))
    folder = tmp_path / "folder"
    folder.mkdir()
    write_jsonl(folder / "part-0.jsonl", rows[:10])
    write_jsonl(folder / "part-1.jsonl", rows[10:])
    datasets.DatasetDict({"train": datasets.Dataset.from_list(rows), "test": datasets.Dataset.from_list(rows[:5])}) \
        .save_to_disk(str(tmp_path / "saved"))
    for src, name, split in [("pairs.csv", "csv", None), ("pairs.json", "json", None), ("folder", "folder", None),
                             ("saved", "saved", "test")]:
        s = ingest(db, str(tmp_path / src), name=name, split=split)
        assert s.format == "trl-standard", src
        expected = 5 if split == "test" else 30
        assert s.rows_loaded == expected, src
        assert db.record(name, expected - 1)["chosen"] == [assistant(f"good {expected - 1}")]


# -- bad rows, atomicity, re-ingest, mapping -----------------------------------------------------


def test_bad_rows_are_counted_by_reason_and_good_rows_land(db, tmp_path):
    good = {"prompt": "hi", "chosen": "hello", "rejected": "bye"}
    lines = [
        json.dumps(good),                                               # 0 good
        json.dumps({"prompt": "hi", "chosen": None, "rejected": "x"}),  # 1 missing chosen
        json.dumps({"prompt": "hi", "chosen": "x"}),                    # 2 missing rejected
        json.dumps({"prompt": "hi", "chosen": "  ", "rejected": "x"}),  # 3 empty chosen
        json.dumps({"prompt": "hi", "chosen": 42, "rejected": "x"}),    # 4 wrong type
        "{not json",                                                    # 5 invalid JSON
        json.dumps({"prompt": "hi", "chosen": "y" * 300, "rejected": "x"}),  # 6 too long (cap 200)
        json.dumps({"prompt": "", "chosen": "x", "rejected": "y"}),     # 7 empty prompt
        json.dumps(good),                                               # 8 good
    ]
    (tmp_path / "bad.jsonl").write_text("\n".join(lines) + "\n")
    s = ingest(db, str(tmp_path / "bad.jsonl"), name="bad", max_chars=200)
    assert s.rows_in == 9
    assert s.rows_loaded == 2
    assert s.rejected == {
        "missing chosen": 1, "missing rejected": 1, "empty chosen": 1,
        "wrong type: chosen is a number, not text": 1, "invalid JSON (Expecting property name enclosed in double quotes)": 1,
        "too long": 1, "empty prompt": 1,
    }
    assert [r[0] for r in db.rows("SELECT row FROM records WHERE dataset='bad' ORDER BY row")] == [0, 8]
    assert db.rows("SELECT row, reason FROM rejects WHERE dataset='bad' AND row=4") == [
        (4, "wrong type: chosen is a number, not text")]


def test_no_user_turn_and_empty_conversation(db, tmp_path):
    rows = [
        {"messages": [user("hi"), assistant("hello")]},
        {"messages": [assistant("I talk to myself")]},
        {"messages": []},
    ]
    s = ingest(db, str(write_jsonl(tmp_path / "m.jsonl", rows)), name="m")
    assert (s.format, s.rows_loaded) == ("conversations", 1)
    assert s.rejected == {"no user turn": 1, "empty conversation": 1}


def test_failed_ingest_leaves_the_database_as_it_was(db, tmp_path):
    ingest(db, str(write_jsonl(tmp_path / "a.jsonl", [{"prompt": "q", "chosen": "a", "rejected": "b"}] * 5)), name="keep")
    before = db.rows("SELECT * FROM records ORDER BY dataset, row"), db.dataset("keep").version
    # a normalization that fails part-way through (row 3 raises inside DuckDB) rolls everything back
    with pytest.raises(Exception, match="boom"):
        db.replace_dataset(
            {"name": "keep", "kind": "pairs", "format": "x"},
            lambda source: "SELECT row, NULL AS prompt, NULL AS chosen, NULL AS rejected, NULL AS text, NULL AS source_id, "
            "NULL AS score_chosen, NULL AS score_rejected, NULL::JSON AS metadata, "
            "CASE WHEN row = 3 THEN error('boom') END AS problem, NULL AS raw FROM range(10) t(row)",
            {},
        )
    # and so does an ingest whose source cannot be normalized
    with pytest.raises(IngestError):
        ingest(db, str(write_jsonl(tmp_path / "b.jsonl", [{"x": 1}])), name="keep")
    assert (db.rows("SELECT * FROM records ORDER BY dataset, row"), db.dataset("keep").version) == before
    assert db.rows("SELECT count(*) FROM rejects") == [(0,)]


def test_reingest_replaces_instead_of_duplicating(db, tmp_path):
    src = str(write_jsonl(tmp_path / "p.jsonl", [{"prompt": str(i), "chosen": "a", "rejected": "b"} for i in range(7)]))
    ingest(db, src, name="p")
    s = ingest(db, src, name="p")
    assert (s.rows_loaded, s.version) == (7, 2)
    assert db.scalar("SELECT count(*) FROM records WHERE dataset='p'") == 7
    assert len(db.datasets()) == 1


def test_column_mapping_and_unknown_schema(db, tmp_path):
    rows = [{"question": "Why?", "response_j": "Because.", "response_k": "No.", "qid": 11}]
    src = str(write_jsonl(tmp_path / "se.jsonl", rows))
    with pytest.raises(IngestError) as err:
        ingest(db, src, name="se")
    message = str(err.value)
    assert "question" in message and "response_j" in message and "--map" in message
    s = ingest(db, src, name="se", mapping=["prompt=question", "chosen=response_j", "rejected=response_k"])
    assert s.format == "mapped-standard"
    rec = db.record("se", 0)
    assert (rec["prompt"], rec["chosen"], rec["rejected"]) == ([user("Why?")], [assistant("Because.")], [assistant("No.")])
    assert rec["metadata"] == {"qid": 11}
    assert db.dataset("se").mapping == {"prompt": "question", "chosen": "response_j", "rejected": "response_k"}
    with pytest.raises(IngestError, match="not in the source"):
        ingest(db, src, name="se2", mapping=["prompt=nope", "chosen=response_j", "rejected=response_k"])
    with pytest.raises(IngestError, match="unknown mapping key"):
        ingest(db, src, name="se3", mapping=["answer=response_j"])


def test_default_names():
    assert default_name("/x/hh-rlhf/test.jsonl.gz") == "hh-rlhf-test"
    assert default_name("/x/my pairs.parquet") == "my-pairs"
    assert default_name("org/some-dataset", "train") == "some-dataset-train"
