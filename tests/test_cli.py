"""The command line, run as a user runs it: `python app.py ...` in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from helpers import ROOT, run_cli, shared_file


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


def test_database_held_by_the_server_is_said_plainly(app_process, tmp_path):
    url, proc, db_path = app_process()
    r = run_cli("datasets", "--db", str(db_path))
    assert r.returncode == 1
    assert "in use by process" in r.stderr and "Traceback" not in r.stderr
    # the server loaded the demo data into the empty database on first start
    proc.terminate()
    proc.wait(timeout=30)
    r = run_cli("datasets", "--db", str(db_path), "--json")
    names = {d["name"] for d in json.loads(r.stdout)}
    assert {"demo-assistant-pairs", "demo-trl-standard", "demo-trl-conversational", "demo-sdsd-dialogues"} <= names
