"""Ingestion: every supported format from a real file, dirty files row by row, names, scratch and staging,
atomicity, re-ingest, mapping."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import datasets
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from components import formats
from components.formats import EMPTY_SIDE_SQL, split_transcript
from components.ingest import IngestError, default_name, empty_side_counts, ingest, stage
from components.store import Database
from helpers import ROOT, data_tab_ingest, shared_file
from components import catalogue

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


@pytest.mark.shared
def test_hh_rlhf_transcripts(db):
    s = ingest(db, str(shared_file(*HH)), name="hh")
    assert (s.format, s.kind, s.rows_in) == ("hh-rlhf", "pairs", 2312)
    assert s.rows_loaded + sum(s.rejected.values()) == 2312
    source = hh_rows()
    # row N is the N-th source row: prompt + chosen rebuilds the source transcript's turns
    for n in (0, 1, 500, 2311):
        rec = catalogue.record(db, "hh", n)
        if rec is None:
            assert db.scalar("SELECT count(*) FROM rejects WHERE dataset='hh' AND row=?", [n]) == 1
            continue
        assert rec["prompt"] + rec["chosen"] == split_transcript(source[n]["chosen"])
        assert rec["prompt"] + rec["rejected"] == split_transcript(source[n]["rejected"])
        assert rec["prompt"][-1]["role"] == "user"
        assert rec["chosen"][0]["role"] == "assistant"


@pytest.mark.shared
def test_trl_standard_keeps_scores_as_numbers(db):
    s = ingest(db, str(shared_file(*UF)), name="uf")
    assert (s.format, s.kind) == ("trl-standard", "pairs")
    first = json.loads(shared_file(*UF).read_text().splitlines()[0])
    rec = catalogue.record(db, "uf", 0)
    assert rec["prompt"] == [user(first["prompt"])]
    assert rec["chosen"] == [assistant(first["chosen"])]
    assert rec["score_chosen"] == first["metadata"]["score_chosen"]
    assert isinstance(rec["metadata"]["source_index"], int)
    assert rec["metadata"]["metadata"]["score_rejected"] == first["metadata"]["score_rejected"]
    assert catalogue.dataset(db, "uf").columns["source_index"] == "int64"


@pytest.mark.shared
def test_plain_text_corpus(db):
    s = ingest(db, str(shared_file(*CACM)), name="cacm")
    assert (s.format, s.kind, s.rows_loaded) == ("documents", "documents", 3204)
    rec = catalogue.record(db, "cacm", 0)
    assert rec["source_id"] == "CACM-2636"
    assert rec["text"].startswith("Generation of Random Correlated Normal Variables")


@pytest.mark.shared
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
    rec = catalogue.record(db, "conv", 0)
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
    assert catalogue.record(db, "nested", 0)["metadata"]["metadata"]["judge"] == "gpt"


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
    rec = catalogue.record(db, "sdsd", 0)
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
    rec = catalogue.record(db, "rev", 0)
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
        assert catalogue.record(db, name, expected - 1)["chosen"] == [assistant(f"good {expected - 1}")]


def test_parquet_is_staged_a_batch_at_a_time_with_progress(db, tmp_path, monkeypatch):
    from components.ingest import sources

    folder = tmp_path / "docs"
    folder.mkdir()
    # two files of one dataset: the second lacks the first's "lang" column; row 6 has no text
    pq.write_table(pa.table({"id": [f"a{i}" for i in range(5)], "text": [f"first file {i}" for i in range(5)],
                             "lang": ["en", "fr", "en", "de", "en"]}), folder / "part-0.parquet", row_group_size=2)
    pq.write_table(pa.table({"id": [f"b{i}" for i in range(4)], "text": ["second 0", " ", "second 2", "second 3"]}),
                   folder / "part-1.parquet", row_group_size=2)
    monkeypatch.setattr(stage, "BATCH_ROWS", 2)
    seen = []
    s = ingest(db, str(folder), name="docs", progress=lambda frac, desc: seen.append((frac, desc)))
    assert (s.kind, s.rows_in, s.rows_loaded, s.rejected) == ("documents", 9, 8, {"empty text": 1})
    texts = dict(db.rows("SELECT row, text FROM records WHERE dataset = 'docs'"))
    assert texts == {i: f"first file {i}" for i in range(5)} | {5: "second 0", 7: "second 2", 8: "second 3"}
    assert catalogue.record(db, "docs", 1)["metadata"]["lang"] == "fr"
    assert catalogue.record(db, "docs", 8)["metadata"].get("lang") is None
    assert [r["row"] for r in catalogue.rejects(db, "docs")] == [6]
    # progress after every batch of at most two rows, each with its rate, the fraction moving forward
    staged = [(frac, desc) for frac, desc in seen if desc.startswith("normalized")]
    counts = [int(desc.split()[1].replace(",", "")) for _, desc in staged]
    assert counts[-1] == 9 and all(0 < b - a <= 2 for a, b in zip([0] + counts, counts))
    assert all("rows/s" in desc for _, desc in staged) and "left" in staged[0][1]
    assert [f for f, _ in seen] == sorted(f for f, _ in seen)
    # row groups longer than a batch may hold are read a part at a time: the same rows land
    monkeypatch.setattr(sources, "BATCH_BYTES", 1)
    ingest(db, str(folder), name="again")
    assert db.rows("SELECT row, text, metadata FROM records WHERE dataset = 'again' ORDER BY row") == \
        db.rows("SELECT row, text, metadata FROM records WHERE dataset = 'docs' ORDER BY row")


# -- bad rows, atomicity, re-ingest, mapping -----------------------------------------------------


def test_bad_rows_are_counted_by_reason_and_good_rows_land(db, tmp_path):
    good = {"prompt": "hi", "chosen": "hello", "rejected": "bye"}
    lines = [
        json.dumps(good),                                               # 0 good
        json.dumps({"prompt": "hi", "chosen": None, "rejected": "x"}),  # 1 missing chosen
        json.dumps({"prompt": "hi", "chosen": "x"}),                    # 2 missing rejected
        json.dumps({"prompt": "hi", "chosen": "  ", "rejected": "x"}),  # 3 empty chosen: data, flagged
        json.dumps({"prompt": "hi", "chosen": 42, "rejected": "x"}),    # 4 wrong type
        "{not json",                                                    # 5 invalid JSON
        json.dumps({"prompt": "hi", "chosen": "y" * 300, "rejected": "x"}),  # 6 too long (cap 200)
        json.dumps({"prompt": "", "chosen": "x", "rejected": "y"}),     # 7 empty prompt
        json.dumps(good),                                               # 8 good
    ]
    (tmp_path / "bad.jsonl").write_text("\n".join(lines) + "\n")
    s = ingest(db, str(tmp_path / "bad.jsonl"), name="bad", max_chars=200)
    assert (s.rows_in, s.rows_loaded, s.empty_side) == (9, 3, 1)
    assert s.rejected == {
        "missing chosen": 1, "missing rejected": 1,
        "wrong type: chosen is a number, not text": 1, "invalid JSON (Expecting property name enclosed in double quotes)": 1,
        "too long": 1, "empty prompt": 1,
    }
    assert [r[0] for r in db.rows("SELECT row FROM records WHERE dataset='bad' ORDER BY row")] == [0, 3, 8]
    # a rejected row keeps its own text beside the reason
    assert db.rows("SELECT row, reason, raw FROM rejects WHERE dataset='bad' AND row IN (4, 5) ORDER BY row") == [
        (4, "wrong type: chosen is a number, not text", lines[4]),
        (5, "invalid JSON (Expecting property name enclosed in double quotes)", "{not json")]


# -- dirty files: each bad row is rejected with its reason, the others land -----------------------


def test_empty_sides_are_data_flagged_by_one_rule(db, tmp_path):
    rows = [
        {"prompt": "a", "chosen": "", "rejected": "no"},                 # empty chosen
        {"prompt": "b", "chosen": "yes", "rejected": " \n\t"},           # blank rejected
        {"prompt": "c", "chosen": "yes", "rejected": "no"},
        {"prompt": "d", "chosen": None, "rejected": "no"},               # missing: still a bad row
    ]
    s = ingest(db, str(write_jsonl(tmp_path / "e.jsonl", rows)), name="e")
    assert (s.rows_loaded, s.empty_side, s.rejected) == (3, 2, {"missing chosen": 1})
    assert "flagged 2 pairs with an empty side" in s.describe()
    conv = [{"chosen": [user("hi"), assistant("")], "rejected": [user("hi"), assistant("hello")]},
            {"chosen": [user("hi"), assistant("ok")], "rejected": [user("hi"), assistant("hello")]}]
    ingest(db, str(write_jsonl(tmp_path / "c.jsonl", conv)), name="c")
    flagged = f"SELECT dataset, row FROM records WHERE {EMPTY_SIDE_SQL} ORDER BY dataset, row"
    assert db.rows(flagged) == [("c", 0), ("e", 0), ("e", 1)]
    assert empty_side_counts(db) == {"c": 1, "e": 2}


@pytest.mark.shared
def test_hh_and_ultrafeedback_load_every_pair_and_flag_empty_sides(db):
    hh = ingest(db, str(shared_file(*HH)), name="hh")
    assert (hh.rows_loaded, hh.rows_in, hh.empty_side, hh.rejected) == (2312, 2312, 4, {})
    uf = ingest(db, str(shared_file(*UF)), name="uf")
    assert (uf.rows_loaded, uf.rows_in, uf.empty_side, uf.rejected) == (1000, 1000, 2, {})
    assert empty_side_counts(db) == {"hh": 4, "uf": 2}


def test_one_row_of_another_type_is_rejected_not_the_file(db, tmp_path):
    rows = [{"prompt": f"q{i}", "chosen": f"good {i}", "rejected": f"bad {i}"} for i in range(6)]
    rows[2]["chosen"] = 7
    rows[4]["chosen"] = ["a", "list", "of", "strings"]
    s = ingest(db, str(write_jsonl(tmp_path / "t.jsonl", rows)), name="lines")
    expected = {"wrong type: chosen is a number, not text": 1, "wrong type: chosen is a list of text, not text": 1}
    assert (s.format, s.rows_loaded, s.rejected) == ("trl-standard", 4, expected)
    (tmp_path / "t.json").write_text(json.dumps(rows, indent=2))
    s = ingest(db, str(tmp_path / "t.json"), name="array")
    assert (s.format, s.rows_loaded, s.rejected) == ("trl-standard", 4, expected)
    assert catalogue.record(db, "array", 5)["chosen"] == [assistant("good 5")]
    assert json.loads(catalogue.rejects(db, "array")[1]["raw"]) == rows[4]


def test_a_line_that_is_not_utf8_is_rejected(db, tmp_path):
    good = [json.dumps({"prompt": f"q{i}", "chosen": "é", "rejected": "no"}).encode() for i in range(3)]
    (tmp_path / "latin1.jsonl").write_bytes(b"\n".join([good[0], b'{"prompt": "caf\xe9", "chosen": "x", "rejected": "y"}',
                                                       good[1], good[2]]) + b"\n")
    s = ingest(db, str(tmp_path / "latin1.jsonl"), name="latin1")
    assert (s.rows_loaded, s.rejected) == (3, {"not UTF-8": 1})
    (tmp_path / "bom.jsonl").write_bytes(b"\xef\xbb\xbf" + b"\r\n".join(good) + b"\r\n")  # a Windows editor's file
    assert ingest(db, str(tmp_path / "bom.jsonl"), name="bom").rows_loaded == 3
    assert catalogue.rejects(db, "latin1") == [{"row": 1, "reason": "not UTF-8",
                                     "raw": '{"prompt": "caf\ufffd", "chosen": "x", "rejected": "y"}'}]


def test_truncated_or_corrupt_gzip_says_where(db, tmp_path):
    rows = [{"prompt": f"question {i}", "chosen": f"answer {i} " * 20, "rejected": "no"} for i in range(3000)]
    whole = gzip.compress("".join(json.dumps(r) + "\n" for r in rows).encode())
    (tmp_path / "cut.jsonl.gz").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(IngestError) as err:
        ingest(db, str(tmp_path / "cut.jsonl.gz"))
    message = str(err.value)
    assert message.startswith(f"{tmp_path / 'cut.jsonl.gz'}: the gzip data is truncated")
    assert f"of {len(whole) // 2:,}" in message and "complete lines" in message and "\n" not in message
    broken = bytearray(whole)
    broken[len(whole) // 2: len(whole) // 2 + 64] = bytes(64)
    (tmp_path / "bad.jsonl.gz").write_bytes(bytes(broken))
    with pytest.raises(IngestError, match=r"bad\.jsonl\.gz: the gzip data is corrupt .* near byte"):
        ingest(db, str(tmp_path / "bad.jsonl.gz"))
    assert catalogue.datasets(db) == [] and db.scalar("SELECT count(*) FROM records") == 0


def deep(n: int) -> str:
    return '{"prompt": "p", "chosen": "c", "rejected": "r", "x": ' + '{"a": ' * n + "1" + "}" * n + "}"


def test_json_nested_10000_deep_is_rejected_before_any_parser(db, tmp_path):
    good = json.dumps({"prompt": "p", "chosen": "c", "rejected": "r"})
    huge = json.dumps({"prompt": "p", "chosen": "c" * (2 << 20), "rejected": "r"})  # over the size cap: unread
    (tmp_path / "deep.jsonl").write_text("\n".join([good, deep(10_000), good, "[" * 10_000, huge]) + "\n")
    s = ingest(db, str(tmp_path / "deep.jsonl"), name="deep", max_chars=1000)
    assert (s.rows_loaded, s.rejected) == (2, {"nested too deep": 2, "too long": 1})
    assert catalogue.rejects(db, "deep")[0]["raw"].startswith('{"prompt": "p", "chosen": "c", "rejected": "r", "x": {"a": {"a":')
    (tmp_path / "deep.json").write_text("[" + ",".join([good, deep(10_000), good]) + "]")
    s = ingest(db, str(tmp_path / "deep.json"), name="deep-array")
    assert (s.rows_loaded, s.rejected) == (2, {"nested too deep": 1})


def test_empty_binary_and_nothing_to_load_are_one_line_each(db, tmp_path):
    (tmp_path / "empty.jsonl").write_bytes(b"\n  \n")
    (tmp_path / "noise.jsonl").write_bytes(bytes(range(256)) * 64)
    write_jsonl(tmp_path / "all-bad.jsonl", [{"messages": [assistant("talking to myself")]}] * 3)
    cases = [
        ("empty.jsonl", "empty file"),
        ("noise.jsonl", "not JSON lines (no line is a JSON object)"),
        ("all-bad.jsonl", "none of the 3 rows can be loaded (3 no user turn)"),
    ]
    for file, message in cases:
        with pytest.raises(IngestError) as err:
            ingest(db, str(tmp_path / file))
        assert str(err.value) == f"{tmp_path / file}: {message}"
    assert catalogue.datasets(db) == [] and db.scalar("SELECT count(*) FROM records") + db.scalar("SELECT count(*) FROM rejects") == 0


def test_json_array_element_that_is_not_an_object_keeps_its_value(db, tmp_path):
    (tmp_path / "a.json").write_text(json.dumps([{"prompt": "p", "chosen": "c", "rejected": "r"}, [1, "two"], "three"]))
    s = ingest(db, str(tmp_path / "a.json"), name="a")
    assert (s.rows_in, s.rows_loaded, s.rejected) == (3, 1, {"not a JSON object": 2})
    assert [(r["row"], r["raw"].strip()) for r in catalogue.rejects(db, "a")] == [(1, '[1, "two"]'), (2, '"three"')]


# -- names: two sources never silently replace each other -----------------------------------------


def test_default_names_stay_distinct_and_readable(db, tmp_path):
    rows = [{"prompt": "p", "chosen": "c", "rejected": "r"}]
    data, japan = write_jsonl(tmp_path / "データ.jsonl", rows), write_jsonl(tmp_path / "日本.jsonl", rows * 2)
    a, b = ingest(db, str(data)), ingest(db, str(japan))
    assert a.name != b.name and a.name.startswith("dataset-") and b.name.startswith("dataset-")
    assert [(d.name, d.row_count) for d in catalogue.datasets(db)] == sorted([(a.name, 1), (b.name, 2)])
    # the same source re-ingested replaces itself
    assert (ingest(db, str(data)).name, ingest(db, str(data)).version) == (a.name, 3)
    # a readable name taken by another source gets the source's short hash instead
    other = tmp_path / "other"
    other.mkdir()
    first = ingest(db, str(write_jsonl(tmp_path / "pairs.jsonl", rows)))
    second = ingest(db, str(write_jsonl(other / "pairs.jsonl", rows * 3)))
    assert first.name == "pairs" and second.name.startswith("pairs-") and "another source" in second.note
    assert catalogue.dataset(db, "pairs").row_count == 1
    # replacing it takes the explicit name
    assert ingest(db, str(other / "pairs.jsonl"), name="pairs").version == 2
    assert catalogue.dataset(db, "pairs").row_count == 3
    for bad in ("../x", "/x"):
        with pytest.raises(IngestError, match="must start with a letter or digit"):
            ingest(db, str(data), name=bad)


# -- scratch and staging: what a killed or failed ingest leaves behind -----------------------------


CHILD = """
import sys
sys.path.insert(0, sys.argv[1])
from components.ingest import ingest
from components.store import Database

def wait_here(frac, desc):
    print(desc, flush=True)
    sys.stdin.readline()

ingest(Database(sys.argv[2]), sys.argv[3], progress=wait_here)
"""


def test_scratch_of_a_killed_ingest_is_removed_by_the_next(tmp_path):
    src = write_jsonl(tmp_path / "p.jsonl", [{"prompt": "p", "chosen": "c", "rejected": "r"}])
    db_path = tmp_path / "studio.duckdb"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(ROOT), str(db_path), str(src)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().startswith("reading")
        left = list(tmp_path.glob(f".studio-ingest-{child.pid}-*"))
        assert len(left) == 1 and left[0].is_dir()
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    assert left[0].is_dir()  # a crash leaves it: on disk, beside the database, never in memory
    shm = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(tempfile.gettempdir())
    legacy = Path(tempfile.mkdtemp(prefix="studio-ingest-", dir=shm))  # what older versions left there
    recent = Path(tempfile.mkdtemp(prefix="studio-ingest-", dir=shm))
    try:
        os.utime(legacy, (time.time() - 7200, time.time() - 7200))
        db = Database(db_path)
        ingest(db, str(src))
        assert not left[0].exists() and not legacy.exists()
        assert recent.is_dir()  # an older version's ingest may still be writing there
        assert not list(tmp_path.glob(".studio-ingest-*"))
        db.close()
    finally:
        shutil.rmtree(recent, ignore_errors=True)
        shutil.rmtree(legacy, ignore_errors=True)


def test_staged_rows_are_invisible_until_the_swap_and_leftovers_are_swept(db, tmp_path):
    table = pa.table({"prompt": ["p"] * 3, "chosen": ["c", None, "c"], "rejected": ["r"] * 3,
                      "__row": pa.array([0, 1, 2], pa.int64())})
    columns = {f.name: f.type for f in table.schema}
    plan = formats.detect(columns)
    key = stage.stage(db, lambda rel: formats.select_sql(plan, columns, rel), table)
    assert stage.counts(db, key) == (2, {"missing chosen": 1}, 0)
    assert catalogue.datasets(db) == []
    info = catalogue.replace_dataset(db, {"name": "s", "kind": "pairs", "format": plan.format}, key)
    assert (info.row_count, info.rejected_reasons) == (2, {"missing chosen": 1})
    assert db.scalar("SELECT count(*) FROM records WHERE dataset <> 's'") == 0
    # rows a killed process staged (another process id) go at the next ingest; this one's stay
    dead = "~staging:999999999:0123456789ab"
    db.write(lambda cur: cur.execute("INSERT INTO records (dataset, row) VALUES (?, 0), (?, 1)", [dead, dead]))
    ingest(db, str(write_jsonl(tmp_path / "x.jsonl", [{"prompt": "p", "chosen": "c", "rejected": "r"}])), name="x")
    assert db.scalar("SELECT count(*) FROM records WHERE starts_with(dataset, '~')") == 0


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
    snapshot = "SELECT * FROM records ORDER BY dataset, row", "SELECT * FROM rejects ORDER BY dataset, row"
    before = [db.rows(q) for q in snapshot], catalogue.dataset(db, "keep")
    # a normalization that fails part-way through (row 7 raises inside DuckDB, in the second batch of
    # four, after the first was committed) leaves nothing staged
    table = pa.table({"__row": pa.array(range(10), pa.int64())})
    with pytest.raises(duckdb.Error, match="boom"):
        stage.stage(db, lambda rel: "SELECT __row AS row, NULL AS prompt, NULL AS chosen, NULL AS rejected, NULL AS text, "
                    "NULL AS source_id, NULL AS score_chosen, NULL AS score_rejected, NULL::JSON AS metadata, "
                    f"CASE WHEN __row = 7 THEN error('boom') END AS problem, NULL AS raw FROM {rel}", table, batch_rows=4)
    # nor do ingests that fail at any step: unknown schema, nothing loadable, a swap into a bad name
    with pytest.raises(IngestError):
        ingest(db, str(write_jsonl(tmp_path / "b.jsonl", [{"x": 1}])), name="keep")
    with pytest.raises(IngestError):
        ingest(db, str(write_jsonl(tmp_path / "c.jsonl", [{"prompt": "q", "chosen": "a"}])), name="keep")
    with pytest.raises(IngestError):
        ingest(db, str(tmp_path / "a.jsonl"), name="../keep")
    assert ([db.rows(q) for q in snapshot], catalogue.dataset(db, "keep")) == before


def test_reingest_replaces_instead_of_duplicating(db, tmp_path):
    src = str(write_jsonl(tmp_path / "p.jsonl", [{"prompt": str(i), "chosen": "a", "rejected": "b"} for i in range(7)]))
    ingest(db, src, name="p")
    s = ingest(db, src, name="p")
    assert (s.rows_loaded, s.version) == (7, 2)
    assert db.scalar("SELECT count(*) FROM records WHERE dataset='p'") == 7
    assert len(catalogue.datasets(db)) == 1


def test_column_mapping_and_unknown_schema(db, tmp_path):
    rows = [{"question": "Why?", "response_j": "Because.", "response_k": "No.", "qid": 11}]
    src = str(write_jsonl(tmp_path / "se.jsonl", rows))
    with pytest.raises(IngestError) as err:
        ingest(db, src, name="se")
    message = str(err.value)
    assert "question" in message and "response_j" in message and "--map" in message
    s = ingest(db, src, name="se", mapping=["prompt=question", "chosen=response_j", "rejected=response_k"])
    assert s.format == "mapped-standard"
    rec = catalogue.record(db, "se", 0)
    assert (rec["prompt"], rec["chosen"], rec["rejected"]) == ([user("Why?")], [assistant("Because.")], [assistant("No.")])
    assert rec["metadata"] == {"qid": 11}
    assert catalogue.dataset(db, "se").mapping == {"prompt": "question", "chosen": "response_j", "rejected": "response_k"}
    with pytest.raises(IngestError, match="not in the source"):
        ingest(db, src, name="se2", mapping=["prompt=nope", "chosen=response_j", "rejected=response_k"])
    with pytest.raises(IngestError, match="unknown mapping key"):
        ingest(db, src, name="se3", mapping=["answer=response_j"])


def test_default_names():
    assert default_name("/x/hh-rlhf/test.jsonl.gz") == "hh-rlhf-test"
    assert default_name("/x/my pairs.parquet") == "my-pairs"
    assert default_name("/x/Ünïcode pairs (v2).jsonl") == "Unicode-pairs-v2"
    assert default_name("org/some-dataset", "train") == "some-dataset-train"


# -- the served app -------------------------------------------------------------------------------


@pytest.mark.browser
def test_served_app_survives_a_deeply_nested_file_sent_through_the_data_tab(app_server, page, tmp_path):
    from playwright.sync_api import expect

    src = tmp_path / "deep.jsonl"
    good = json.dumps({"prompt": "p", "chosen": "c", "rejected": "r"})
    src.write_text("\n".join([good, deep(10_000), good]) + "\n")
    page.goto(app_server.url)
    data_tab_ingest(page, str(src))
    expect(page.locator("#data-result")).to_contain_text("2 of 3 rows loaded", timeout=30_000)
    expect(page.locator("#data-result")).to_contain_text("nested too deep")
    assert catalogue.dataset(app_server.db, "deep").rejected_reasons == {"nested too deep": 1}
    # the same process still serves the page and answers the next ingest
    with urllib.request.urlopen(app_server.url, timeout=10) as r:
        assert r.status == 200
    page.reload()
    data_tab_ingest(page, str(src), "deep-again")
    expect(page.locator("#data-result")).to_contain_text("2 of 3 rows loaded", timeout=30_000)
    expect(page.locator("#data-table")).to_contain_text("deep-again")
