"""The command line, run as a user runs it: `python app.py ...` in a subprocess."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys

import pytest

from helpers import ROOT, run_cli, shared_file


@pytest.mark.shared
def test_ingest_and_datasets_json(tmp_path):
    db = str(tmp_path / "cli.duckdb")
    src = shared_file("ultrafeedback-binarized-sample", "eval_clean.jsonl")
    r = run_cli("ingest", str(src), "--name", "uf-eval", "--db", db, "--json")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["name"] == "uf-eval" and summary["format"] == "trl-standard"
    assert summary["rows_in"] == 200 and summary["rows_loaded"] + sum(summary["rejected"].values()) == 200
    r = run_cli("datasets", "--db", db, "--json")
    listed = json.loads(r.stdout)
    assert [(d["name"], d["kind"], d["row_count"], d["format"]) for d in listed] == [
        ("uf-eval", "pairs", summary["rows_loaded"], "trl-standard")]
    r = run_cli("datasets", "--db", db)
    assert "uf-eval" in r.stdout and "pairs" in r.stdout


def test_ingest_with_mapping_from_the_command_line(tmp_path):
    src = tmp_path / "qa.jsonl"
    src.write_text(json.dumps({"question": "Why?", "response_j": "Because.", "response_k": "No."}) + "\n")
    db = str(tmp_path / "cli.duckdb")
    r = run_cli("ingest", str(src), "--db", db)
    assert r.returncode == 1
    assert r.stderr.count("\n") == 1 and "--map" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("ingest", str(src), "--db", db, "--map", "prompt=question", "chosen=response_j", "rejected=response_k")
    assert r.returncode == 0, r.stderr
    assert "1 of 1 rows loaded as pairs (format mapped-standard" in r.stdout


def test_failures_are_one_line(tmp_path):
    db = str(tmp_path / "cli.duckdb")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    r = subprocess.run([sys.executable, str(ROOT / "app.py"), "ingest", "someone/no-such-dataset", "--db", db],
                       cwd=ROOT, capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 1
    assert r.stderr.startswith("error: cannot load 'someone/no-such-dataset' from the Hugging Face Hub")
    assert r.stderr.count("\n") == 1
    r = run_cli("ingest", str(tmp_path / "missing.jsonl"), "--db", db)
    assert (r.returncode, r.stderr) == (1, f"error: {tmp_path / 'missing.jsonl'}: no such file or folder\n")


def test_database_held_by_another_process_is_said_plainly(tmp_path):
    db_path = tmp_path / "held.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, duckdb; con = duckdb.connect(sys.argv[1]); print('open', flush=True); "
         "sys.stdin.read()", str(db_path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        src = tmp_path / "p.jsonl"
        src.write_text(json.dumps({"prompt": "q", "chosen": "a", "rejected": "b"}) + "\n")
        r = run_cli("ingest", str(src), "--db", str(db_path))
        assert r.returncode == 1
        assert f"in use by process {holder.pid}" in r.stderr and r.stderr.count("\n") == 1
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)


def test_empty_sides_are_reported_by_ingest_and_datasets(tmp_path):
    src = tmp_path / "e.jsonl"
    src.write_text("".join(json.dumps({"prompt": f"q{i}", "chosen": "" if i < 2 else "yes", "rejected": "no"}) + "\n"
                           for i in range(5)))
    db = str(tmp_path / "cli.duckdb")
    r = run_cli("ingest", str(src), "--db", db)
    assert r.returncode == 0, r.stderr
    assert "5 of 5 rows loaded" in r.stdout and "2 pairs with an empty side" in r.stdout
    r = run_cli("datasets", "--db", db, "--json")
    assert [(d["name"], d["row_count"], d["empty_side_count"]) for d in json.loads(r.stdout)] == [("e", 5, 2)]


def test_dirty_files_give_one_line_and_rc_1_when_nothing_lands(tmp_path):
    deep = '{"prompt": "p", "chosen": "c", "rejected": ' + "[" * 10_000 + "]" * 10_000 + "}\n"
    files = {
        "empty.jsonl": b"",
        "binary.jsonl": bytes(range(256)) * 40,
        "cut.jsonl.gz": gzip.compress(deep.encode() * 50)[:300],
        "deep.jsonl": deep.encode() * 2,
    }
    expected = {
        "empty.jsonl": "empty file",
        "binary.jsonl": "not JSON lines (no line is a JSON object)",
        "cut.jsonl.gz": "the gzip data is truncated",
        "deep.jsonl": "none of the 2 rows can be loaded (2 nested too deep)",
    }
    db = str(tmp_path / "cli.duckdb")
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        r = run_cli("ingest", str(tmp_path / name), "--db", db)
        assert r.returncode == 1, name
        assert r.stderr.startswith(f"error: {tmp_path / name}: {expected[name]}"), r.stderr
        assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    r = run_cli("ingest", str(tmp_path / "deep.jsonl"), "--db", db, "--name", "../x")
    assert (r.returncode, r.stderr.count("\n")) == (1, 1) and "must start with a letter or digit" in r.stderr
    r = run_cli("datasets", "--db", db, "--json")
    assert json.loads(r.stdout) == []
