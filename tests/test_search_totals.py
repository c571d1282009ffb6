"""The exact total and the page of a filtered search, computed the fast way (bit sets per segment, a
dense filter applied after ranking), agree with Lucene's own count and with the filter as a clause of
the ranked query, over two datasets searched at once (several segments)."""

from __future__ import annotations

import json
import random

import pytest

from components import labels, search
from components.ingest import ingest
from components.search import engine, total
from components.search.filters import combine, filter_clauses
from components.search.index import open_searcher
from components.search.java import LOCK
from components.search.query import parse_query
from components.store import Database

WORDS = ("apple banana cherry walrus tapir quokka garden kettle lantern meadow orbit pepper river "
         "saddle thunder velvet willow yonder zephyr amber").split()


def _rows(seed: int, n: int) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        def words(k):
            return " ".join(rng.choice(WORDS) for _ in range(k))
        rows.append({"prompt": words(rng.randint(1, 6)), "chosen": words(rng.randint(0, 30)),
                     "rejected": words(rng.randint(1, 8)), "score_chosen": float(i % 10), "score_rejected": 1.0})
    return rows


@pytest.fixture(scope="module")
def two(tmp_path_factory) -> Database:
    tmp = tmp_path_factory.mktemp("totals")
    db = Database(tmp / "t.duckdb")
    for name, seed in (("first", 1), ("second", 2)):
        src = tmp / f"{name}.jsonl"
        src.write_text("".join(json.dumps(r) + "\n" for r in _rows(seed, 300)))
        ingest(db, str(src), name=name)
        search.build_index(db, name)
    for row in range(0, 300, 7):  # some labels, for the label filters
        labels.add_label(db, "first", row, "chosen", "ann")
    yield db
    db.close()


QUERIES = [
    ("walrus", "words"), ("apple tapir", "words"), ("zephyr amber orbit", "words"),
    ('"apple banana" kettle', "words"), ("chosen:walrus meadow", "words"),
    ("+walrus +tapir", "lucene"), ("walrus -tapir", "lucene"), ("wil*", "lucene"), ("apple AND (river OR orbit)", "lucene"),
]
FILTERS = [
    search.Filters(),
    search.Filters(ranges={"length": (20, None)}),  # passes most rows: applied after ranking
    search.Filters(ranges={"score_chosen": (9, None)}),  # passes a tenth: a clause of the ranking
    search.Filters(label="labeled"),
    search.Filters(label="unlabeled"),
    search.Filters(ranges={"length": (20, None), "score_chosen": (2, 7)}),
]


@pytest.mark.parametrize("text,mode", QUERIES)
@pytest.mark.parametrize("filters", FILTERS, ids=lambda f: repr(f.ranges or f.label))
def test_total_and_pages_agree_with_lucene(two, text, mode, filters):
    names = ["first", "second"]
    searcher = open_searcher(search.searchable(two, names))
    with LOCK:
        assert searcher.getIndexReader().leaves().size() >= 2  # several segments
        query = parse_query(text, "contents", mode).lucene
        clauses = filter_clauses(two, names, filters)
        full = combine(query, clauses)
        expected_total = searcher.count(full)
        # the filter as a clause of the ranked query, ranked whole: the reference order
        _, everything = engine.ranked(searcher, full, 0, 1000)
    reference = [(d, row) for d, row, _, _ in everything]
    assert len(reference) == expected_total
    for offset in (0, 10, 30):
        res = search.search(two, names, text, mode=mode, k=10, offset=offset, filters=filters)
        assert res.total == expected_total
        assert [(h.dataset, h.row) for h in res.hits] == reference[offset:offset + 10]


def test_a_dense_filter_is_applied_after_ranking_and_a_sparse_one_in_it(two):
    searcher = open_searcher(search.searchable(two, ["first", "second"]))
    with LOCK:
        (_, dense), = filter_clauses(two, ["first", "second"], search.Filters(ranges={"length": (20, None)}))
        (_, sparse), = filter_clauses(two, ["first", "second"], search.Filters(ranges={"score_chosen": (9, None)}))
        assert total.density(searcher, dense) >= engine.DENSE
        assert total.density(searcher, sparse) == pytest.approx(0.1)


def test_plain_words_are_counted_as_a_disjunction_and_required_clauses_by_lucene(two):
    searcher = open_searcher(search.searchable(two, ["first"]))
    with LOCK:
        assert len(total.disjuncts(searcher.rewrite(parse_query('apple "tapir walrus"').lucene))) == 2
        assert total.disjuncts(searcher.rewrite(parse_query("+apple tapir", mode="lucene").lucene)) is None


ROWS = {"first": _rows(1, 300), "second": _rows(2, 300)}
LABELED = {("first", row) for row in range(0, 300, 7)}
PREDICATES = [  # each filter written again from the source rows, without the app's filter code
    (search.Filters(), lambda d, r, row: True),
    (search.Filters(ranges={"length_chosen": (20, None)}), lambda d, r, row: len(row["chosen"]) >= 20),  # dense
    (search.Filters(ranges={"score_chosen": (9, None)}), lambda d, r, row: row["score_chosen"] >= 9),  # sparse
    (search.Filters(label="labeled"), lambda d, r, row: (d, r) in LABELED),
    (search.Filters(label="unlabeled"), lambda d, r, row: (d, r) not in LABELED),
    (search.Filters(ranges={"length_chosen": (20, None), "score_chosen": (2, 7)}),
     lambda d, r, row: len(row["chosen"]) >= 20 and 2 <= row["score_chosen"] <= 7),
]


@pytest.mark.parametrize("text,mode", QUERIES)
@pytest.mark.parametrize("filters,keep", PREDICATES, ids=["all", "dense", "sparse", "labeled", "unlabeled", "both"])
def test_total_and_pages_agree_with_the_filter_applied_by_hand(two, text, mode, filters, keep):
    """The reference: Lucene's ranking of the query alone, every hit, filtered in Python from the
    rows as they were written. The total and every page must be that list's length and its slices."""
    names = ["first", "second"]
    searcher = open_searcher(search.searchable(two, names))
    with LOCK:
        n, everything = engine.ranked(searcher, parse_query(text, "contents", mode).lucene, 0, 1000)
    assert n < 1000
    reference = [(d, r) for d, r, _, _ in everything if keep(d, r, ROWS[d][r])]
    assert 0 < len(reference) or text == "zephyr amber orbit"
    for offset in (0, 10, 30):
        res = search.search(two, names, text, mode=mode, k=10, offset=offset, filters=filters)
        assert res.total == len(reference)
        assert [(h.dataset, h.row) for h in res.hits] == reference[offset:offset + 10]
