"""Semantic and hybrid ranking and "rows like this" where people use them: the Search page's own
function (``views.search.run_search``), the labeling queue of the rows like a row (``triage``), and
the whole path in real Chromium -- rank by meaning, open the rows like a hit, label them in Compare.
The encoder is the tiny one ``test_semantic`` makes (random weights, a tokenizer trained here)."""

from __future__ import annotations

import re

import numpy as np

import pytest
from playwright.sync_api import expect

from components import labels, triage
from components.semantic import similar
from components.views import search as view
from components.views.search_form import SearchForm
from helpers import AppServer, shown_row
from test_semantic import world  # noqa: F401  (the fixture: 'howto' indexed and embedded, 'plain' indexed only)


def test_the_similar_queue_is_the_row_then_its_neighbours(world):
    db = world["db"]
    queue = triage.open_queue(db, "howto", "similar", "3")
    near = similar(db, "howto", 3, k=100)
    assert queue.rows == [3, *near.rows] and queue.rows[1] == 23  # row 23 repeats row 3's prompt
    assert len(queue.rows) == 40 and queue.engine == "embeddings"
    assert triage.open_queue(db, "plain", "similar", "3").engine == "MoreLikeThis"  # no vectors: BM25's flavour
    for bad in ("", "three", "999"):
        with pytest.raises(labels.LabelError):
            triage.open_queue(db, "howto", "similar", bad)
    nxt = triage.next_in_queue(db, "howto", "ann", "similar", "3")
    assert nxt == 3
    labels.add_label(db, "howto", 3, "chosen", "ann")
    assert triage.next_in_queue(db, "howto", "ann", "similar", "3") == 23


def test_the_page_ranks_by_meaning_fuses_and_finds_rows_like_a_row(world):
    db = world["db"]
    query = world["rows"][3]["prompt"][0]["content"]
    by_meaning = view.run_search(db, SearchForm(query, ["howto"], ranking="semantic"))
    assert by_meaning["error"] == ""
    assert [h.row for h in by_meaning["hits"][:2]] == [3, 23]
    assert "by meaning" in by_meaning["summary"] and "similarity 1.0000" in by_meaning["html"]
    assert "&rank=semantic" in by_meaning["url"]

    fused = view.run_search(db, SearchForm("sourdough bread", ["howto"], ranking="hybrid"))
    assert fused["error"] == "" and fused["total"] > 0
    assert "fused by rank" in fused["summary"] and re.search(r"fused 0\.\d+ \((BM25|semantic) #1", fused["html"])

    like = view.run_search(db, SearchForm("", ["howto"], similar=3))
    assert like["error"] == "" and like["hits"][0].row == 23
    assert like["summary"].startswith("**39** rows like row 3 of howto")
    assert "queue=similar&amp;q=3" in like["html"]  # "Label these rows" opens the same rows as a queue
    assert 'href="?tab=search&amp;similar=23&amp;datasets=howto"' in like["html"]  # every card: rows like it
    assert like["url"] == "?tab=search&q=&datasets=howto&similar=3"

    missing = view.run_search(db, SearchForm("bread", ["plain"], ranking="semantic"))
    assert "plain has no embeddings" in missing["error"] and "Traceback" not in missing["error"]
    typed = view.run_search(db, SearchForm("bread", ["howto"], similar=3))  # a query typed wins
    assert "rows like" not in typed["summary"] and "similar=" not in typed["url"]


@pytest.fixture
def server(world):
    s = AppServer(world["db"])
    yield s
    s.close()


@pytest.mark.browser
def test_rank_by_meaning_open_rows_like_a_hit_and_label_them(server, world, page):
    page.goto(server.url + "?tab=search")
    page.locator("#search-datasets").get_by_text("howto").first.wait_for(timeout=30_000)
    page.locator("#search-ranking").get_by_text("By meaning", exact=True).click()
    box = page.locator("#search-query textarea, #search-query input").first
    box.fill(world["rows"][3]["prompt"][0]["content"])
    box.press("Enter")
    first = page.locator("#search-results .sr-hit").first
    expect(first).to_contain_text("similarity 1.0000", timeout=30_000)
    expect(page.locator("#search-summary")).to_contain_text("by meaning")
    assert "rank=semantic" in page.url
    page.screenshot(path=str(server.db.path.parent / "search-semantic.png"), full_page=True)

    # "similar" on the second hit: the rows like it, in the page, and in the address bar
    second = page.locator("#search-results .sr-hit").nth(1)
    row = int(second.get_attribute("data-row"))
    second.locator("a.sr-similar").click()
    expect(page.locator("#search-summary")).to_contain_text(f"rows like row {row} of howto", timeout=30_000)
    assert re.search(rf"[?&]similar={row}(&|$)", page.url)
    expect(page.locator("#search-results .sr-hit").first).to_contain_text("similarity")

    # ... and as a labeling queue in Compare: the row itself first
    page.locator("#search-results a.sr-label-hits").click()
    page.get_by_role("tab", name="Compare", selected=True).wait_for(timeout=15_000)
    expect(page.locator("#cmp-title")).to_contain_text(f"Rows like row {row}", timeout=15_000)
    assert shown_row(page) == row


def test_the_search_api_takes_the_ranking_and_a_row_to_find_rows_like(server, world):
    from gradio_client import Client

    client = Client(server.url, verbose=False)
    query = world["rows"][3]["prompt"][0]["content"]
    error, summary, html, *_ = client.predict(query, ["howto"], "contents", "words", "any", "", "", "margin", "", "",
                                              "any", ranking="semantic", api_name="/search")
    assert error == "" and "by meaning" in summary and "similarity 1.0000" in html
    error, summary, html, *_ = client.predict("", ["howto"], "contents", "words", "any", "", "", "margin", "", "",
                                              "any", similar="3", api_name="/search")
    assert error == "" and summary.startswith("**39** rows like row 3 of howto")


def test_near_duplicates_by_embedding_in_the_statistics(world):
    from components import insights
    from components.semantic import clusters

    db = world["db"]
    exact = clusters.embedding_clusters(db, "howto", threshold=0.99999)  # row 23 repeats row 3's prompt
    assert exact["clusters_found"] == 1 and exact["clusters"][0]["first_rows"] == [3, 23]
    assert exact["field"] == "prompt" and exact["vectors"] == 40
    assert clusters.cluster_rows(db, "howto", 0, threshold=0.99999) == [3, 23]

    stats = insights.dataset_stats(db, "howto")
    emb = stats["duplicates"]["by_embedding"]
    assert emb["threshold"] == clusters.THRESHOLD and emb["clusters_found"] >= 1
    first = emb["clusters"][0]
    assert insights.rows_for(db, "howto", first["key"]).rows[:5] == first["first_rows"]
    assert "By embedding:" in "\n".join(insights.describe_stats(stats))
    assert insights.dataset_stats(db, "plain")["duplicates"]["by_embedding"] is None


def test_the_inverted_file_finds_the_pairs_the_exact_search_finds():
    from components.groups import groups_of
    from components.semantic.clusters import close_pairs

    rng = np.random.default_rng(1)
    base = rng.standard_normal((3000, 32)).astype(np.float32)
    planted = base[:60] + 0.01 * rng.standard_normal((60, 32)).astype(np.float32)  # near copies of rows 0-59
    vectors = np.concatenate([base, planted])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    exact = set(zip(*close_pairs(vectors, 0.99, exact_max=10**9)))
    approx = set(zip(*close_pairs(vectors, 0.99, exact_max=0)))
    assert {(i, 3000 + i) for i in range(60)} <= exact
    assert approx <= exact and len(approx) >= 0.95 * len(exact)
    groups = groups_of(len(vectors), *map(np.array, zip(*sorted(exact))))
    assert len(groups) == 60 and all(len(g) == 2 for g in groups)
