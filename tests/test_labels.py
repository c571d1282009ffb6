"""Labels: the event log and its view, undo, queues, agreement against the libraries, export, CLI."""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from pathlib import Path

import pytest

from components import labels
from components.ingest import ingest
from components.labels import LabelError
from components.store import Database

from helpers import KAPPA_TABLE, run_cli, write_pairs
from components import catalogue


@pytest.fixture
def pairs_db(db, tmp_path) -> Database:
    ingest(db, str(write_pairs(tmp_path / "pairs.jsonl", 30)), name="pairs")
    return db


# -- the event log and the view -----------------------------------------------------------------------


def test_migration_creates_log_and_view_with_the_agreed_columns(db):
    assert {"0003_labels", "0010_simulated_labels"} <= set(db.migrations())
    cols = [r[0] for r in db.rows("SELECT column_name FROM information_schema.columns "
                                  "WHERE table_name = 'current_labels' ORDER BY ordinal_position")]
    assert cols == ["dataset", "row", "annotator", "label", "confidence", "note", "tags", "created_at", "simulated",
                    "schema_version", "grade", "aspects", "reasons", "rationale", "ranking"]
    assert db.scalar("SELECT table_type FROM information_schema.tables WHERE table_name = 'current_labels'") == "VIEW"
    log_cols = [r[0] for r in db.rows("SELECT column_name FROM information_schema.columns "
                                      "WHERE table_name = 'label_events' ORDER BY ordinal_position")]
    assert log_cols == ["id", "dataset", "row", "annotator", "label", "confidence", "note", "tags", "options",
                        "created_at", "schema_version", "grade", "aspects", "reasons", "rationale", "ranking"]


def test_current_label_is_the_latest_event_and_nothing_is_overwritten(pairs_db):
    db = pairs_db
    labels.add_label(db, "pairs", 3, "chosen", "ada", confidence=2, note="clear win", tags=["factuality"])
    labels.add_label(db, "pairs", 3, "rejected", "ada", confidence=3)
    labels.add_label(db, "pairs", 3, "tie", "bob")
    cur = labels.current_label(db, "pairs", 3, "ada")
    assert (cur["label"], cur["confidence"]) == ("rejected", 3)
    assert labels.current_label(db, "pairs", 3, "bob")["label"] == "tie"
    assert labels.label_event_count(db, "pairs") == 3
    log = labels.label_log(db, "pairs").to_pylist()
    assert [e["label"] for e in log] == ["chosen", "rejected", "tie"]
    assert log[0]["note"] == "clear win" and log[0]["tags"] == ["factuality"]
    assert json.loads(log[0]["options"])["dataset_version"] == 1


def test_undo_is_an_event_and_walks_back_one_label_at_a_time(pairs_db):
    db = pairs_db
    labels.add_label(db, "pairs", 1, "chosen", "ada")
    labels.add_label(db, "pairs", 2, "rejected", "ada")
    labels.add_label(db, "pairs", 2, "both_bad", "ada")
    labels.add_label(db, "pairs", 2, "tie", "bob")

    undone = labels.undo(db, "pairs", "ada")
    assert (undone["row"], undone["label"]) == (2, "both_bad")
    assert labels.current_label(db, "pairs", 2, "ada")["label"] == "rejected"  # the earlier label is back
    assert labels.undo(db, "pairs", "ada")["label"] == "rejected"
    assert labels.current_label(db, "pairs", 2, "ada") is None
    assert labels.current_label(db, "pairs", 2, "bob")["label"] == "tie"  # someone else's label is untouched
    assert labels.undo(db, "pairs", "ada")["row"] == 1
    assert labels.undo(db, "pairs", "ada") is None  # nothing left
    assert labels.label_event_count(db, "pairs") == 4 + 3  # three undo events appended, none removed
    assert Counter(e["label"] for e in labels.label_log(db, "pairs").to_pylist())["undo"] == 3


def test_bad_requests_get_one_line_messages(pairs_db, demo_db):
    db = pairs_db
    cases = [
        (("nope", 0, "chosen", "ada"), "no dataset named"),
        (("pairs", 999, "chosen", "ada"), "row 999 is not a pair"),
        (("pairs", "x", "chosen", "ada"), "whole number"),
        (("pairs", 0, "better", "ada"), "unknown label"),
        (("pairs", 0, "chosen", "  "), "enter your annotator name"),
        (("pairs", 0, "chosen", "<script>"), "annotator name"),
        (("demo-field-notes", 0, "chosen", "ada"), "not preference pairs"),
    ]
    for args, message in cases:
        with pytest.raises(LabelError, match=message) as err:
            labels.add_label(db, *args)
        assert "\n" not in str(err.value)
    with pytest.raises(LabelError, match="confidence"):
        labels.add_label(db, "pairs", 0, "chosen", "ada", confidence=5)
    assert labels.label_event_count(db) == 0


def test_sixteen_threads_lose_nothing_and_double_nothing(pairs_db):
    db = pairs_db
    errors = []

    def annotate(k: int):
        try:
            for row in range(30):
                labels.add_label(db, "pairs", row, labels.JUDGMENTS[(row + k) % 4], f"worker{k:02d}")
        except Exception as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=annotate, args=(k,)) for k in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert labels.label_event_count(db, "pairs") == 16 * 30
    assert db.scalar("SELECT count(DISTINCT id) FROM label_events") == 16 * 30
    assert db.scalar("SELECT count(*) FROM (SELECT DISTINCT row, annotator FROM label_events)") == 16 * 30
    assert db.scalar("SELECT count(*) FROM current_labels") == 16 * 30
    for k in (0, 7, 15):
        mine = labels.labeled_rows(db, "pairs", f"worker{k:02d}")
        assert mine == {row: labels.JUDGMENTS[(row + k) % 4] for row in range(30)}


# -- queues -------------------------------------------------------------------------------------------


def test_queue_is_a_stable_shuffle_and_resumes_where_you_left_off(pairs_db):
    db = pairs_db
    order = labels.shuffled_rows(db, "pairs")
    assert sorted(order) == list(range(30)) and order != list(range(30))
    assert labels.shuffled_rows(db, "pairs") == order  # stable across calls (and processes: md5 of name/row)
    assert labels.next_row(db, "pairs", "ada") == order[0]
    for row in order[:5]:
        labels.add_label(db, "pairs", row, "chosen", "ada")
    labels.add_label(db, "pairs", order[5], "skip", "ada")
    assert labels.next_row(db, "pairs", "ada") == order[6]  # skipped pairs leave the queue too
    assert labels.next_row(db, "pairs", "bob") == order[0]  # everyone has their own place in the same order
    labels.undo(db, "pairs", "ada")
    assert labels.next_row(db, "pairs", "ada") == order[5]  # an undone label puts the pair back
    p = labels.progress(db, "pairs", "ada")
    assert p == {"total": 30, "mine": 5, "skipped": 0, "anyone": 5, "annotators": 1}
    for row in order:
        labels.add_label(db, "pairs", row, "tie", "ada")
    assert labels.next_row(db, "pairs", "ada") is None


def test_search_and_disagreement_queues(pairs_db):
    db = pairs_db
    found = labels.search_pairs(db, "pairs", "NUMBER 7:")
    assert found.rows == [7, 17, 27]  # every word, any case, source order
    assert found.engine == "text match" and "has no search index" in found.note
    assert labels.search_pairs(db, "pairs", '"answer 1 is"').rows == [1]  # a quoted phrase stays whole
    with pytest.raises(LabelError, match="type something to search for"):
        labels.search_pairs(db, "pairs", "   ")
    labels.add_label(db, "pairs", 4, "chosen", "ada")
    labels.add_label(db, "pairs", 4, "rejected", "bob")
    labels.add_label(db, "pairs", 9, "tie", "ada")
    labels.add_label(db, "pairs", 9, "tie", "bob")
    labels.add_label(db, "pairs", 11, "chosen", "ada")
    labels.add_label(db, "pairs", 11, "skip", "bob")  # a skip is no judgment: no disagreement
    assert labels.open_queue(db, "pairs", "disagreements").rows == [4]


def test_a_queue_of_the_pairs_with_an_empty_side(db, tmp_path):
    src = tmp_path / "gaps.jsonl"
    src.write_text("".join(json.dumps({"prompt": f"q{i}", "chosen": "" if i in (2, 5) else f"a{i}",
                                       "rejected": "" if i == 6 else f"b{i}"}) + "\n" for i in range(8)))
    ingest(db, str(src), name="gaps")
    assert labels.open_queue(db, "gaps", "empty_side").rows == [2, 5, 6]
    assert "empty_side" in labels.QUEUES


def test_search_queue_ranks_by_the_bm25_index_once_there_is_one(pairs_db):
    from components import search

    db = pairs_db
    assert labels.search_pairs(db, "pairs", "plus 7").engine == "text match"
    search.build_index(db, "pairs")
    found = labels.search_pairs(db, "pairs", "plus 7")
    assert found.engine == "BM25 index" and found.note is None
    rows = found.rows
    assert rows[0] == 7  # "7 plus 7 is 14" ranks first
    assert len(rows) == len(set(rows)) and set(rows) <= set(range(30))


# -- agreement ----------------------------------------------------------------------------------------

def test_cohen_kappa_matches_scikit_learn_and_the_textbook(pairs_db, tmp_path):
    from sklearn.metrics import cohen_kappa_score

    db = pairs_db
    ingest(db, str(write_pairs(tmp_path / "fifty.jsonl", 50)), name="fifty")
    for row, (a, b) in enumerate(KAPPA_TABLE):
        labels.add_label(db, "fifty", row, a, "ann-a")
        labels.add_label(db, "fifty", row, b, "ann-b")
    agr = labels.agreement(db, "fifty")
    assert agr.annotators == ["ann-a", "ann-b"] and agr.items == 50
    assert agr.kappa == pytest.approx(0.4)
    assert agr.kappa == pytest.approx(cohen_kappa_score([a for a, _ in KAPPA_TABLE], [b for _, b in KAPPA_TABLE]))
    assert agr.raw == pytest.approx(0.7)
    names, m = labels.confusion(db, "fifty", "ann-a", "ann-b")
    assert names[:2] == ["chosen", "rejected"]
    assert [row[:2] for row in m[:2]] == [[20, 5], [10, 15]]
    assert len(agr.disagreements) == 15


# Krippendorff's alpha: four annotators, twelve pairs, missing values (None), four categories.
ALPHA_TABLE = {
    "w": ["chosen", "rejected", "tie", "tie", "rejected", "chosen", "both_bad", "chosen", "rejected", None, None, None],
    "x": ["chosen", "rejected", "tie", "tie", "rejected", "rejected", "both_bad", "chosen", "rejected", "tie", None, "tie"],
    "y": [None, "tie", "tie", "tie", "rejected", "tie", "both_bad", "rejected", "rejected", "tie", "chosen", None],
    "z": ["chosen", "rejected", "tie", "tie", "rejected", "both_bad", "both_bad", "chosen", "rejected", "tie", "chosen", None],
}


def _alpha_by_hand(table: dict[str, list]) -> float:
    """Nominal alpha from the coincidence matrix (Krippendorff 2011), written out independently."""
    units = list(zip(*table.values()))
    o: Counter = Counter()
    for unit in units:
        values = [v for v in unit if v is not None]
        m = len(values)
        if m < 2:
            continue
        for i, c in enumerate(values):
            for j, k in enumerate(values):
                if i != j:
                    o[(c, k)] += 1 / (m - 1)
    cats = sorted({c for c, _ in o})
    n_c = {c: sum(o[(c, k)] for k in cats) for c in cats}
    n = sum(n_c.values())
    disagree_obs = sum(o[(c, k)] for c in cats for k in cats if c != k)
    disagree_exp = sum(n_c[c] * n_c[k] for c in cats for k in cats if c != k)
    return 1 - (n - 1) * disagree_obs / disagree_exp


def test_krippendorff_alpha_matches_the_library_and_a_hand_computation(pairs_db):
    import krippendorff
    import numpy as np

    db = pairs_db
    for who, row_labels in ALPHA_TABLE.items():
        for row, lab in enumerate(row_labels):
            if lab:
                labels.add_label(db, "pairs", row, lab, who)
    labels.add_label(db, "pairs", 11, "skip", "y")  # skips are missing values, not a category
    agr = labels.agreement(db, "pairs")
    assert agr.annotators == ["w", "x", "y", "z"]
    assert agr.kappa is None  # Cohen's kappa is for two annotators
    code = {lab: i for i, lab in enumerate(labels.JUDGMENTS)}
    matrix = np.array([[np.nan if v is None else code[v] for v in vals] for vals in ALPHA_TABLE.values()])
    expected = krippendorff.alpha(reliability_data=matrix, level_of_measurement="nominal")
    assert agr.alpha == pytest.approx(expected)
    assert agr.alpha == pytest.approx(_alpha_by_hand(ALPHA_TABLE))
    assert 0.6 < agr.alpha < 0.8
    assert agr.items == 11  # pair 11 has one judgment only
    assert [d["row"] for d in agr.disagreements] == [1, 5, 7]
    assert agr.disagreements[0]["labels"] == {"w": "rejected", "x": "rejected", "y": "tie", "z": "rejected"}
    assert agr.disagreements[0]["majority"] == "rejected"
    # with two of them chosen, kappa is there and equals the pairwise value
    two = labels.agreement(db, "pairs", ["w", "z"])
    assert two.annotators == ["w", "z"] and two.kappa == two.pairwise[0]["kappa"]


def test_agreement_is_undefined_not_an_error_when_everyone_uses_one_label(pairs_db):
    for who in ("a1", "a2"):
        for row in range(3):
            labels.add_label(pairs_db, "pairs", row, "chosen", who)
    agr = labels.agreement(pairs_db, "pairs")
    assert agr.kappa is None and agr.alpha is None and agr.raw == 1.0


# -- export -------------------------------------------------------------------------------------------


def _load(path: Path):
    import datasets

    builder = "parquet" if path.suffix == ".parquet" else "json"
    return datasets.load_dataset(builder, data_files=str(path), split="train", cache_dir=str(path.parent / "hf-cache"))


@pytest.fixture
def labeled(pairs_db) -> Database:
    db = pairs_db
    labels.add_label(db, "pairs", 0, "chosen", "ada")
    labels.add_label(db, "pairs", 1, "rejected", "ada")  # flip
    labels.add_label(db, "pairs", 2, "tie", "ada")
    labels.add_label(db, "pairs", 3, "both_bad", "ada")
    labels.add_label(db, "pairs", 4, "skip", "ada")
    labels.add_label(db, "pairs", 5, "rejected", "ada")
    labels.undo(db, "pairs", "ada")  # pair 5 back to unlabeled
    # majority: 1 is flipped by two of three, 6 has a tie at the top
    labels.add_label(db, "pairs", 1, "rejected", "bob")
    labels.add_label(db, "pairs", 1, "chosen", "cy")
    labels.add_label(db, "pairs", 6, "chosen", "bob")
    labels.add_label(db, "pairs", 6, "rejected", "cy")
    return db


@pytest.mark.parametrize("suffix", ["jsonl", "parquet"])
def test_export_conversational_loads_back_with_trl_keys_and_flips_swapped(labeled, tmp_path, suffix):
    db = labeled
    out = tmp_path / f"ada.{suffix}"
    s = labels.export_pairs(db, "pairs", out, annotator="ada")
    assert (s.rows, s.flipped, s.agreed) == (30 - 3, 1, 1)
    assert s.left_out == {"tie": 1, "both_bad": 1, "skip": 1}
    ds = _load(out)
    assert {"prompt", "chosen", "rejected"} <= set(ds.column_names)
    assert ds.num_rows == 27
    rows = {r["source_row"]: r for r in ds}
    assert list(rows) == sorted(rows)  # source order
    assert 2 not in rows and 3 not in rows and 4 not in rows
    src = {row: catalogue.record(db, "pairs", row) for row in (0, 1)}
    flipped = rows[1]
    assert flipped["chosen"] == src[1]["rejected"] and flipped["rejected"] == src[1]["chosen"]
    assert flipped["human_label"] == "rejected"
    assert rows[0]["chosen"] == src[0]["chosen"] and rows[5]["human_label"] is None
    assert flipped["prompt"] == [{"role": "user", "content": "Question number 1: what is 1 plus 1?"}]
    assert all(m["role"] == "assistant" for m in flipped["chosen"])


def test_export_standard_strings_majority_and_switches(labeled, tmp_path):
    db = labeled
    s = labels.export_pairs(db, "pairs", tmp_path / "std.jsonl", style="standard")
    ds = _load(tmp_path / "std.jsonl")
    rows = {r["source_row"]: r for r in ds}
    assert isinstance(rows[1]["prompt"], str) and rows[1]["prompt"] == "Question number 1: what is 1 plus 1?"
    assert rows[1]["chosen"].startswith("It is 3")  # majority (ada, bob) flipped pair 1
    assert s.source == "majority" and s.left_out == {"tie": 1, "both_bad": 1, "skip": 1, "no_majority": 1}

    kept = labels.export_pairs(db, "pairs", tmp_path / "kept.jsonl", keep_ties=True)
    assert kept.rows == 30 and kept.kept == {"tie": 1, "both_bad": 1, "skip": 1, "no_majority": 1}
    rows = {r["source_row"]: r for r in _load(tmp_path / "kept.jsonl")}
    assert rows[2]["human_label"] == "tie" and rows[2]["chosen"][0]["content"].startswith("2 plus 2")

    only = labels.export_pairs(db, "pairs", tmp_path / "only.parquet", labeled_only=True)
    assert only.rows == 2 and only.left_out["unlabeled"] == 30 - 6
    assert [r["source_row"] for r in _load(tmp_path / "only.parquet")] == [0, 1]


def test_export_of_the_label_log_keeps_every_event(labeled, tmp_path):
    s = labels.export_log(labeled, "pairs", tmp_path / "log.jsonl")
    assert s.rows == labels.label_event_count(labeled, "pairs") == 11
    log = [json.loads(line) for line in open(tmp_path / "log.jsonl")]
    assert [e["label"] for e in log].count("undo") == 1
    assert log[6]["options"]["undoes"] == log[5]["id"]
    labels.export_log(labeled, "pairs", tmp_path / "log.parquet")
    assert _load(tmp_path / "log.parquet").num_rows == 11


def test_export_errors_are_clear(labeled, tmp_path, monkeypatch):
    with pytest.raises(LabelError, match=r"\.jsonl, \.json or \.parquet"):
        labels.export_pairs(labeled, "pairs", tmp_path / "x.csv")
    with pytest.raises(LabelError, match="conversational or standard"):
        labels.export_pairs(labeled, "pairs", tmp_path / "x.jsonl", style="chatml")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))  # no saved login either
    labels.export_pairs(labeled, "pairs", tmp_path / "x.jsonl")
    with pytest.raises(LabelError, match="no Hugging Face token"):
        labels.push_to_hub(tmp_path / "x.jsonl", "me/prefs")


def _unwritable(tmp_path: Path, kind: str) -> Path:
    if kind == "directory":
        (tmp_path / "folder.jsonl").mkdir()
        return tmp_path / "folder.jsonl"
    if kind == "under a file":  # its folder cannot be made: a file holds that name
        (tmp_path / "plain.txt").write_text("x")
        return tmp_path / "plain.txt" / "out.jsonl"
    return Path("/proc/preference-studio-export.parquet")  # a file system that takes no new files


@pytest.mark.parametrize("kind", ["directory", "under a file", "proc"])
def test_export_to_a_path_that_cannot_be_written_is_one_line_and_leaves_nothing(labeled, tmp_path, kind):
    out = _unwritable(tmp_path, kind)
    for export in (lambda: labels.export_pairs(labeled, "pairs", out), lambda: labels.export_log(labeled, "pairs", out)):
        with pytest.raises(LabelError, match=f"^cannot write {re.escape(str(out))}: ") as err:
            export()
        assert "\n" not in str(err.value)
    assert not Path(str(out) + ".part").exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".part")) == []


@pytest.mark.parametrize("kind", ["directory", "under a file", "proc"])
def test_cli_export_to_a_path_that_cannot_be_written(labeled, tmp_path, kind):
    path = labeled.path
    labeled.close()
    out = _unwritable(tmp_path, kind)
    r = run_cli("export", "pairs", "--out", str(out), "--db", str(path))
    assert r.returncode == 1
    assert r.stderr.startswith(f"error: cannot write {out}: ") and r.stderr.count("\n") == 1, r.stderr
    assert r.stdout == ""
    assert not Path(str(out) + ".part").exists()


# The majority rule (events.MAJORITY_SQL), on a table made by hand: row -> {annotator: label}.
MAJORITY_TABLE = {
    0: {"a": "chosen", "b": "chosen", "c": "rejected"},  # 2-1
    1: {"a": "chosen", "b": "rejected"},  # 1-1: no majority
    2: {"a": "rejected", "b": "rejected", "c": "tie", "d": "skip"},  # a skip does not vote
    3: {"a": "skip", "b": "skip"},  # no judgment at all
    4: {"a": "tie", "b": "both_bad", "c": "both_bad"},
    5: {"a": "chosen", "b": "rejected", "c": "tie"},  # three-way tie at the top
    6: {"c": "rejected"},  # one vote is a majority
}


def test_majority_rule_on_a_hand_made_table(pairs_db):
    db = pairs_db
    labels.add_label(db, "pairs", 7, "chosen", "a")
    labels.add_label(db, "pairs", 7, "rejected", "a")  # only the current label votes
    labels.add_label(db, "pairs", 8, "rejected", "b")
    labels.undo(db, "pairs", "b")  # an undone label does not vote
    for row, votes in MAJORITY_TABLE.items():
        for who, lab in votes.items():
            labels.add_label(db, "pairs", row, lab, who)
    assert labels.majority_labels(db, "pairs") == {
        0: "chosen", 1: None, 2: "rejected", 4: "both_bad", 5: None, 6: "rejected", 7: "rejected"}
    assert labels.majority_rows(db, "pairs", "rejected") == [2, 6, 7]  # the flipped pairs
    # among some annotators only
    assert labels.majority_labels(db, "pairs", ["a", "c"]) == {
        0: None, 1: "chosen", 2: None, 4: None, 5: None, 6: "rejected", 7: "rejected"}
    # the export and the disagreement list apply the same rule
    assert labels.preference_labels(db, "pairs") == {
        0: "chosen", 1: "no_majority", 2: "rejected", 3: "skip", 4: "both_bad", 5: "no_majority", 6: "rejected",
        7: "rejected"}
    assert {d["row"]: d["majority"] for d in labels.disagreements(db, "pairs")} == {
        0: "chosen", 1: None, 2: "rejected", 4: "both_bad", 5: None}


def test_cli_export(labeled, tmp_path):
    path = labeled.path
    labeled.close()  # the CLI opens the file itself (one process owns it)
    out = tmp_path / "cli.jsonl"
    r = run_cli("export", "pairs", "--out", str(out), "--annotator", "ada", "--db", str(path), "--json")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert (summary["rows"], summary["flipped"], summary["source"]) == (27, 1, "annotator ada")
    rows = {json.loads(line)["source_row"]: json.loads(line) for line in open(out)}
    assert rows[1]["chosen"][0]["content"].startswith("It is 3")

    r = run_cli("export", "pairs", "--out", str(tmp_path / "s.parquet"), "--format", "standard", "--majority",
                "--labeled-only", "--keep-ties", "--db", str(path))
    assert r.returncode == 0 and "6 of 30 pairs written" in r.stdout, r.stdout + r.stderr

    r = run_cli("export", "pairs", "--out", str(tmp_path / "log.jsonl"), "--labels-log", "--db", str(path))
    assert r.returncode == 0 and "11 label events" in r.stdout

    r = run_cli("export", "nope", "--out", str(out), "--db", str(path))
    assert r.returncode == 1 and r.stderr.strip() == "error: no dataset named 'nope'"
    r = run_cli("export", "pairs", "--out", str(out), "--annotator", "a", "--majority", "--db", str(path))
    assert r.returncode == 2 and "not allowed with" in r.stderr
    r = run_cli("export", "pairs", "--out", str(tmp_path / "l.jsonl"), "--labels-log", "--majority", "--db", str(path))
    assert r.returncode == 1 and r.stderr.startswith("error: --labels-log writes every event")
    assert not (tmp_path / "l.jsonl").exists()


# -- the Compare view's plain functions, and the word diff ------------------------------------------


def test_word_diff_marks_changed_words_and_escapes_everything():
    from components.diff import counts, word_diff

    a, b = word_diff("Keep <b>this</b> and drop that.", "Keep <b>this</b> and add <script>x</script>.")
    assert a == 'Keep &lt;b&gt;this&lt;/b&gt; and <del class="wd-del">drop that.</del>'
    assert b == 'Keep &lt;b&gt;this&lt;/b&gt; and <ins class="wd-ins">add &lt;script&gt;x&lt;/script&gt;.</ins>'
    assert "<script>" not in a + b
    assert counts("two words\nhere") == (14, 3)


def test_safe_markdown_shows_tags_as_text_and_leaves_code_alone():
    from components.views.common import safe_markdown

    text = "Hi <img src=x onerror=alert(1)> and `<b>` then\n```html\n<div>raw</div>\n```\n<svg onload=x> 3 < 4"
    out = safe_markdown(text)
    assert "&lt;img src=x" in out and "&lt;svg onload" in out and "<img" not in out and "<svg" not in out
    assert "`<b>`" in out and "\n<div>raw</div>\n" in out  # code spans and fenced code stay as written
    assert out.endswith("3 < 4")


def test_labeling_screen_queue_label_undo_and_move(pairs_db):
    from components.views import label as screen

    db = pairs_db
    order = labels.shuffled_rows(db, "pairs")
    labels.add_label(db, "pairs", order[0], "chosen", "ada")
    st = screen.new_queue(db, "pairs", "unlabeled", None, "ada")
    assert screen.current_row(st) == order[1]  # resumes after what ada labeled
    view = screen.pair_view(db, "pairs", order[1], with_diff=True)
    assert view["prompt"][0]["content"].startswith(f"Question number {order[1]}")
    assert view["left_len"].endswith("words") and "wd-del" in view["diff"]
    st = screen.label_current(db, st, "rejected", "ada", screen.LabelForm(confidence=3, note="flip", tags=["factuality"]))
    assert screen.current_row(st) == order[2]
    assert labels.current_label(db, "pairs", order[1], "ada")["confidence"] == 3
    assert "You:** 2 of 30" in screen.progress_markdown(db, st, "ada")
    st = screen.undo_last(db, st, "ada")
    assert screen.current_row(st) == order[1] and labels.current_label(db, "pairs", order[1], "ada") is None
    assert screen.current_row(screen.move(st, -1)) == order[0]
    linked = screen.new_queue(db, "pairs", "unlabeled", None, "ada", row=order[0])
    assert screen.current_row(linked) == order[0]  # a deep link opens the pair asked for
    searched = screen.new_queue(db, "pairs", "search", "number 7:", "ada")
    assert searched["rows"] == [7, 17, 27]
    assert "in *Search hits for “number 7:” (text match)*" in screen.title_markdown(searched)
    missing = screen.new_queue(db, "pairs", "unlabeled", None, "ada", row=999)
    assert "row 999 is not a pair" in missing["message"]
