"""Costly queries from strangers: a time budget per search and a cap on the terms a wildcard stands for,
on an index of 200,000 documents made here; other people's searches go on meanwhile."""

from __future__ import annotations

import json
import random
import string
import threading
import time

import pytest

from components import search
from components.ingest import ingest
from components.search.errors import OverBudget, QuerySyntaxError, SearchError, TooManyClauses, TooManyTerms

N_DOCS = 200_000
# regular expressions (up to the 64 allowed) that each walk the whole term dictionary but match few terms (the budget
# stops them), one that matches nearly every term (the cap refuses it), and ten fuzzy words
RARE = "qzxjv"
COSTLY = [" ".join([f"/.*{a}.*{b}.*{c}.*/" for a in RARE for b in RARE for c in RARE if len({a, b, c}) > 1][:64]),
          "/[a-z]*[aeiou][a-z]*/", " ".join(f"{w}~2" for w in ("cat", "dog", "sun", "map", "rug",
                                                                            "pen", "cup", "box", "hat", "jar"))]


ISSUE_QUERY = " ".join(["/.*x.*y.*z.*/"] * 1000)  # 17 KB: it held every search up for 16 s before


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """200k documents of random words (a term dictionary of about a million terms)."""
    from components.store import Database

    folder = tmp_path_factory.mktemp("big")
    rng = random.Random(7)
    common = ["garden", "tomato", "python", "river", "engine", "market", "winter", "castle"]
    path = folder / "docs.jsonl"
    with open(path, "w") as fh:
        for i in range(N_DOCS):
            words = ["".join(rng.choices(string.ascii_lowercase, k=rng.randint(4, 9))) for _ in range(6)]
            words.append(common[i % len(common)])
            fh.write(json.dumps({"id": f"d{i}", "text": " ".join(words)}) + "\n")
    db = Database(folder / "big.duckdb")
    summary = ingest(db, str(path), name="big")
    assert summary.rows_loaded == N_DOCS
    search.build_index(db, "big")
    yield db
    db.close()


def test_a_costly_query_stops_at_its_budget_in_one_line(big, monkeypatch):
    search.search(big, ["big"], "garden")  # Java started and warm
    # a budget far below what sixty-four walks of the term dictionary take on any machine
    monkeypatch.setenv("STUDIO_SEARCH_BUDGET_MS", "10")
    stopped, budget = 0, 0
    for q in COSTLY:
        try:
            res = search.search(big, ["big"], q, mode="lucene")
        except (OverBudget, TooManyTerms) as err:  # typed: a page tells them apart without reading words
            message = str(err)
            assert message.startswith(("the search was stopped after 0.01 s, its time budget",
                                       "the query's wildcards, fuzzy words or regular expressions stand for more "
                                       "than 1,024 terms")), message
            assert "\n" not in message and "Exception" not in message
            stopped += 1
            budget += isinstance(err, OverBudget) and "time budget" in message
        else:
            assert res.total > 0
    assert stopped >= 2 and budget >= 1  # the regular expressions over every term are stopped or refused
    # the budget is per search: a plain search right after is whole
    monkeypatch.delenv("STUDIO_SEARCH_BUDGET_MS")
    res = search.search(big, ["big"], "garden tomato")
    assert res.total == N_DOCS // 4


def test_other_searches_stay_quick_while_someone_sends_costly_ones(big, monkeypatch):
    monkeypatch.setenv("STUDIO_SEARCH_BUDGET_MS", "300")
    for _ in range(3):  # warm
        search.search(big, ["big"], "river engine")
    stop = threading.Event()
    refused = []

    def attacker():
        import jnius

        try:
            while not stop.is_set():
                for q in [*COSTLY, ISSUE_QUERY]:
                    try:
                        search.search(big, ["big"], q, mode="lucene")
                    except SearchError as err:
                        refused.append(str(err))
        finally:
            jnius.detach()  # a thread that called Java lets go of the JVM before it ends

    threads = [threading.Thread(target=attacker) for _ in range(4)]  # four people at once
    for thread in threads:
        thread.start()
    waits = []
    try:
        time.sleep(0.2)
        for q in ["river", "castle market", "winter python", "garden", "engine tomato"] * 3:
            t = time.perf_counter()
            res = search.search(big, ["big"], q)
            waits.append(time.perf_counter() - t)
            assert res.total > 0
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    assert refused, "the costly queries should have hit their budget"
    assert max(waits) < 1.0, waits  # the issue's figure: no one waits a second behind a costly query


def test_a_thousand_regular_expressions_are_refused_before_parsing(big):
    with pytest.raises(QuerySyntaxError, match="the query has 1,000 wildcards, fuzzy words, ranges or regular "
                                               "expressions; at most 64 are searched at once"):
        search.search(big, ["big"], ISSUE_QUERY, mode="lucene")


def test_more_clauses_than_lucene_allows_is_one_line(big):
    words = " ".join(f"w{i}" for i in range(1100))
    for mode in ("words", "lucene"):
        with pytest.raises(TooManyClauses) as err:
            search.search(big, ["big"], words, mode=mode)
        assert str(err.value).startswith("the query has more than 1,024 words or terms, Lucene's limit")
    # a narrow wildcard is searched in full; one that stands for more than 1,024 terms is refused
    res = search.search(big, ["big"], "gard* tomat*", mode="lucene")
    assert N_DOCS // 4 <= res.total < N_DOCS // 4 + 100  # garden, tomato and the few random words like them
    with pytest.raises(TooManyTerms, match="stand for more than 1,024 terms of the index"):
        search.search(big, ["big"], "a*", mode="lucene")
