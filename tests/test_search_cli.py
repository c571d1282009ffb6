"""The index and search commands, run as a user runs them (``python app.py ...``)."""

from __future__ import annotations

import json

import pytest

from components.ingest import ingest, load_demo
from components.store import Database
from helpers import run_cli


@pytest.fixture
def demo_file(tmp_path):
    path = tmp_path / "cli.duckdb"
    db = Database(path)
    load_demo(db)
    db.close()
    return path


def test_index_then_search_words_json_and_lucene(demo_file, tmp_path):
    db = str(demo_file)
    built = run_cli("index", "demo-assistant-pairs", "demo-field-notes", "--k1", "1.2", "--b", "0.75", "--db", db)
    assert built.returncode == 0, built.stderr
    assert "demo-assistant-pairs: indexed 14 documents" in built.stdout and "k1=1.2 b=0.75" in built.stdout
    assert (tmp_path / "cli-indexes" / "demo-field-notes").is_dir()

    text = run_cli("search", "demo-field-notes", "running in the cold", "--k", "3", "--db", db)
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert "hits in demo-field-notes" in lines[0]
    assert len(lines) == 4 and lines[1].split()[:2] == ["1", "0"]  # rank, docid (the row)
    assert "[running]" in lines[1] and "[cold]" in lines[1]

    js = run_cli("search", "demo-assistant-pairs,demo-field-notes", "egg OR water", "--json", "--k", "50", "--db", db)
    assert js.returncode == 0, js.stderr
    hits = [json.loads(line) for line in js.stdout.splitlines()]
    assert {h["dataset"] for h in hits} == {"demo-assistant-pairs", "demo-field-notes"}
    assert [h["rank"] for h in hits] == list(range(1, len(hits) + 1))
    assert all(h["docid"] == f"{h['dataset']}/{h['row']}" and "<mark>" in h["snippet_html"] for h in hits)
    assert all(h["link"] == f"?tab=compare&dataset={h['dataset']}&row={h['row']}&q=egg+OR+water" for h in hits)
    assert all(h["part"] in ("", "prompt", "chosen", "rejected") and "speaker" in h and "margin" in h for h in hits)

    fielded = run_cli("search", "demo-assistant-pairs", 'chosen:"ice water" AND prompt:egg -rejected:zebra', "--lucene",
                      "--json", "--db", db)
    assert fielded.returncode == 0, fielded.stderr
    assert [json.loads(line)["part"] for line in fielded.stdout.splitlines()] == ["chosen"]

    bad = run_cli("search", "demo-assistant-pairs", "egg AND (yolk", "--lucene", "--db", db)
    assert bad.returncode != 0 and bad.stdout == ""
    assert bad.stderr.strip().startswith("error: Cannot parse 'egg AND (yolk'")
    assert "Traceback" not in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


def test_filters_batch_runs_and_a_stale_index(demo_file, tmp_path):
    db = str(demo_file)
    assert run_cli("index", "--all", "--json", "--db", db).returncode == 0

    every = run_cli("search", "demo-trl-standard", "water", "--json", "--k", "100", "--db", db)
    kept = run_cli("search", "demo-trl-standard", "water", "--filter", "margin=5:", "--json", "--k", "100", "--db", db)
    assert every.returncode == 0 and kept.returncode == 0, kept.stderr
    with_store = Database(demo_file)
    margins = {r: c - rj for r, c, rj in with_store.rows(
        "SELECT row, score_chosen, score_rejected FROM records WHERE dataset = 'demo-trl-standard'")
        if c is not None and rj is not None}
    all_rows = [json.loads(line)["row"] for line in every.stdout.splitlines()]
    kept_rows = [json.loads(line)["row"] for line in kept.stdout.splitlines()]
    assert kept_rows == [r for r in all_rows if margins.get(r, -1) >= 5] and 0 < len(kept_rows) < len(all_rows)
    with_store.close()
    bad = run_cli("search", "demo-trl-standard", "water", "--filter", "margin>5", "--db", db)
    assert bad.returncode == 1 and "NAME=MIN:MAX" in bad.stderr

    topics = tmp_path / "topics.tsv"
    topics.write_text("q1\tcold weather running\nq2\tgarden vegetables\n")
    run = tmp_path / "notes.run"
    out = run_cli("search", "demo-field-notes", "--topics", str(topics), "--output", str(run), "--k", "5", "--db", db)
    assert out.returncode == 0, out.stderr
    lines = [line.split() for line in run.read_text().splitlines()]
    assert {q for q, *_ in lines} == {"q1", "q2"} and all(len(parts) == 6 for parts in lines)
    assert lines[0][:4] == ["q1", "Q0", "note-001", "1"] and all(parts[5] == "studio-bm25" for parts in lines)
    scores = [float(parts[4]) for parts in lines if parts[0] == "q1"]
    assert scores == sorted(scores, reverse=True) and len(set(scores)) == len(scores)
    run2 = tmp_path / "rows.run"
    assert run_cli("search", "demo-trl-standard", "--topics", str(topics), "--output", str(run2), "--db", db).returncode == 0
    assert all(parts[2].isdigit() for parts in (line.split() for line in run2.read_text().splitlines()))
    topics.write_text("no tab here\n")
    broken = run_cli("search", "demo-field-notes", "--topics", str(topics), "--output", str(run), "--db", db)
    assert broken.returncode == 1 and "expected 'qid<TAB>query'" in broken.stderr

    store = Database(demo_file)
    ingest(store, str(_notes_again(tmp_path)), name="demo-field-notes")  # re-ingest: a new version
    store.close()
    stale = run_cli("search", "demo-field-notes", "cold", "--db", db)
    assert stale.returncode == 1 and "stale" in stale.stderr and "python app.py index demo-field-notes" in stale.stderr
    assert "Traceback" not in stale.stderr


def _notes_again(tmp_path):
    from components.ingest import DEMO_DIR

    path = tmp_path / "notes.jsonl"
    path.write_text((DEMO_DIR / "field-notes.jsonl").read_text())
    return path
