"""Effectiveness: the app's ingest, indexer and batch search reproduce Pyserini's published BM25
figure on CACM (MAP 0.3114 over the judged topics), and its plain-words search ranks exactly as
Pyserini's LuceneSearcher does."""

from __future__ import annotations

import re
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


def read_qrels(path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = defaultdict(dict)
    for line in path.read_text().splitlines():
        if line.strip():
            qid, _, docid, rel = line.split()
            qrels[qid][docid] = int(rel)
    return qrels


def read_run(path) -> dict[str, list[tuple[str, float]]]:
    run: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for line in path.read_text().splitlines():
        qid, q0, docid, rank, score, tag = line.split()
        assert q0 == "Q0" and int(rank) >= 1 and tag
        run[qid].append((docid, float(score)))
    return run


def mean_average_precision(run, qrels) -> tuple[float, int]:
    """MAP as trec_eval computes it: over the topics with judgments that the run answers; each
    topic's documents in decreasing score (ties: decreasing docid); AP divides by all relevant."""
    aps = []
    for qid, judged in qrels.items():
        relevant = {d for d, rel in judged.items() if rel > 0}
        if not relevant or qid not in run:
            continue
        ranked = sorted(run[qid], key=lambda x: x[0], reverse=True)
        ranked.sort(key=lambda x: x[1], reverse=True)  # stable: ties keep decreasing docid
        found, total = 0, 0.0
        for i, (docid, _) in enumerate(ranked, 1):
            if docid in relevant:
                found += 1
                total += found / i
        aps.append(total / len(relevant))
    return sum(aps) / len(aps), len(aps)


def test_average_precision_by_hand():
    run = {"1": [("a", 3.0), ("b", 2.0), ("c", 1.0)], "2": [("x", 1.0), ("y", 1.0)]}
    qrels = {"1": {"a": 1, "c": 1, "z": 1}, "2": {"x": 1}, "3": {"q": 1}, "4": {"a": 0}}
    # topic 1: (1/1 + 2/3) / 3; topic 2: tie broken by decreasing docid puts y first: 1/2
    value, n = mean_average_precision(run, qrels)
    assert n == 2 and value == pytest.approx(((1 + 2 / 3) / 3 + 0.5) / 2)


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
    qrels = read_qrels(shared_file("cacm", "qrels.cacm.txt"))
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
    value, judged = mean_average_precision(run, qrels)
    assert judged == 52
    assert abs(value - PUBLISHED_MAP) <= 0.001, f"MAP {value:.4f}"


def test_plain_words_rank_as_pyserini_lucene_searcher(cacm):
    """Pyserini's LuceneSearcher.search(q, k) is Anserini's SimpleSearcher.search(q, k): compare with
    that Java class straight (importing pyserini.search.lucene would pull in torch for nothing)."""
    J = search.java()
    db = Database(cacm)
    try:
        simple = J.autoclass("io.anserini.search.SimpleSearcher")(db.search_index("cacm")["path"])
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
