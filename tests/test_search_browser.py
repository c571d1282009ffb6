"""The Search tab in a real Chromium, and its /search API through gradio_client."""

from __future__ import annotations

import re
from html import unescape as html_text

import pytest
from playwright.sync_api import expect

from components import search
from helpers import AppServer

UNINDEXED = "demo-sdsd-dialogues"


@pytest.fixture
def search_server(demo_db):
    for d in demo_db.datasets():
        if d.name != UNINDEXED:
            search.build_index(demo_db, d.name)
    server = AppServer(demo_db)
    yield server
    server.close()


@pytest.mark.browser
def test_search_page_two_and_open_a_hit(search_server, page):
    db = search_server.db
    ready = [s.dataset for s in search.index_statuses(db) if s.ready]
    expected = search.search(db, ready, "water", k=20)
    assert 10 < expected.total <= 20

    page.goto(search_server.url)
    page.get_by_role("tab", name="Search").click()
    box = page.locator("#search-query textarea")
    box.fill("water")
    box.press("Enter")
    expect(page.locator("#search-summary")).to_contain_text(f"{expected.total} hits")
    expect(page.locator("#search-summary")).to_contain_text("page 1 of 2")
    hits = page.locator("#search-results .sr-hit")
    expect(hits).to_have_count(10)
    expect(page.locator("#search-results mark").first).to_be_visible()
    first = expected.hits[0]
    expect(hits.first.locator(".sr-open")).to_have_text(f"{first.dataset} · row {first.row}")

    page.locator("#search-next").click()
    expect(page.locator("#search-summary")).to_contain_text("page 2 of 2")
    expect(hits).to_have_count(expected.total - 10)
    expect(hits.first.locator(".sr-rank")).to_have_text("#11")
    eleventh = expected.hits[10]
    link = hits.first.locator("a.sr-open")
    expect(link).to_have_attribute("href", f"?dataset={eleventh.dataset}&row={eleventh.row}")

    link.click()  # the hit opens its row in Browse (the deep link)
    expect(page).to_have_url(re.compile(rf"\?dataset={eleventh.dataset}&row={eleventh.row}$"))
    expect(page.locator("#browse-row-title")).to_contain_text(f"row {eleventh.row}")
    expect(page.get_by_role("tab", name="Browse", selected=True)).to_be_visible()


@pytest.mark.browser
def test_lucene_error_under_the_box_and_index_button(search_server, page):
    page.goto(search_server.url + "?tab=search")
    page.locator("#search-mode").get_by_text("Lucene syntax").click()
    box = page.locator("#search-query textarea")
    box.fill('chosen:"ice water" AND (')
    box.press("Enter")
    expect(page.locator("#search-error")).to_contain_text("Cannot parse")
    box.fill('chosen:"ice water"')
    box.press("Enter")
    expect(page.locator("#search-error")).to_have_text("")
    expect(page.locator("#search-results .sr-hit")).to_have_count(1)
    expect(page.locator("#search-results mark").first).to_have_text(re.compile("ice|water"))

    # a length filter changes the total (what passes it, over the whole ranked list)
    page.locator("#search-mode").get_by_text("Plain words").click()
    box.fill("water")
    page.get_by_text("Filters (applied to the whole ranked list)").click()
    page.locator("#search-length-min textarea").fill("400")
    box.press("Enter")
    db = search_server.db
    ready = [s.dataset for s in search.index_statuses(db) if s.ready]
    every = search.search(db, ready, "water").total
    kept = search.search(db, ready, "water", filters=search.Filters(ranges={"length": (400, None)})).total
    assert 0 < kept < every
    expect(page.locator("#search-summary")).to_contain_text(f"{kept} hit")
    page.locator("#search-length-min textarea").fill("")

    page.get_by_text("Indexes", exact=True).click()
    expect(page.locator("#search-indexes")).to_contain_text("not indexed")
    expect(page.locator("#search-index-dataset input")).to_have_value(UNINDEXED)
    page.locator("#search-index").click()
    expect(page.locator("#search-index-result")).to_contain_text(f"{UNINDEXED}: indexed 6 documents", timeout=60_000)
    expect(page.locator("#search-indexes")).not_to_contain_text("not indexed")
    assert search.index_status(search_server.db, UNINDEXED).ready

    # a search deep link: ?tab=search&q=... opens the tab with the results
    page.goto(search_server.url + "?tab=search&q=cold+weather&datasets=demo-field-notes")
    expect(page.locator("#search-summary")).to_contain_text("in demo-field-notes")
    expect(page.locator("#search-results mark").first).to_be_visible()
    expect(page.locator("#search-query textarea")).to_have_value("cold weather")


def test_search_api_round_trip(search_server):
    from gradio_client import Client

    client = Client(search_server.url, verbose=False)
    error, summary, html, page_no, pages = client.predict(
        "egg yolk", ["demo-assistant-pairs"], "contents", "words", "any", "", "", "margin", "", "", "any",
        api_name="/search")
    assert error == "" and "hit" in summary and page_no == 1
    assert "<mark>" in html and 'href="?dataset=demo-assistant-pairs&amp;row=0"' in html
    error, *_ = client.predict("egg AND", ["demo-assistant-pairs"], "contents", "lucene", "any", "", "",
                               "margin", "", "", "any", api_name="/search")
    assert "⚠️ Cannot parse 'egg AND'" in html_text(error)
