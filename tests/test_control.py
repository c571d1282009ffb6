"""The CLI beside a running app: commands on the served database go through the server."""

from __future__ import annotations

import json
import os
import stat

from helpers import run_cli


def test_cli_works_beside_the_running_app(app_process, tmp_path):
    url, proc, db_path = app_process()
    sock = db_path.with_name(db_path.name + ".sock")
    assert stat.S_IMODE(os.stat(sock).st_mode) == 0o600  # only the owner of the database may send commands

    listed = run_cli("datasets", "--db", str(db_path), "--json")
    assert listed.returncode == 0, listed.stderr
    assert "demo-trl-standard" in {d["name"] for d in json.loads(listed.stdout)}

    pairs = tmp_path / "beside.jsonl"
    pairs.write_text('{"prompt": "What is a yolk?", "chosen": "The yellow of an egg.", "rejected": "A joke."}\n')
    loaded = run_cli("ingest", str(pairs), "--db", str(db_path), "--json")
    assert loaded.returncode == 0, loaded.stderr
    assert json.loads(loaded.stdout)["rows_loaded"] == 1

    out = tmp_path / "export.jsonl"
    exported = run_cli("export", "beside", "--out", str(out), "--db", str(db_path))
    assert exported.returncode == 0, exported.stderr
    assert json.loads(out.read_text())["chosen"][-1]["content"] == "The yellow of an egg."

    again = run_cli("datasets", "--db", str(db_path), "--json")
    assert "beside" in {d["name"] for d in json.loads(again.stdout)}

    missing = run_cli("export", "no-such-dataset", "--out", str(tmp_path / "x.jsonl"), "--db", str(db_path))
    assert missing.returncode == 1 and "no-such-dataset" in missing.stderr and "Traceback" not in missing.stderr

    second = run_cli("serve", "--db", str(db_path), "--port", "1")
    assert second.returncode == 1 and "in use" in second.stderr
    assert proc.poll() is None  # the server still runs


def test_a_stale_socket_is_not_a_server(tmp_path):
    """A process that holds the file without serving (a socket file left by a killed server): one line."""
    import subprocess
    import sys

    from helpers import ROOT

    db_path = tmp_path / "s.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, duckdb; c = duckdb.connect(sys.argv[1]); print('ready', flush=True); "
         "sys.stdin.read()", str(db_path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert holder.stdout.readline().strip() == "ready"
        db_path.with_name("s.duckdb.sock").write_text("")
        listed = run_cli("datasets", "--db", str(db_path))
        assert listed.returncode == 1
        assert "in use" in listed.stderr and "Traceback" not in listed.stderr
    finally:
        holder.stdin.close()
        holder.wait(timeout=20)
