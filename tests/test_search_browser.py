"""The Search tab in a real Chromium, and its /search API through gradio_client."""

from __future__ import annotations

import re
from html import unescape as html_text

import pytest
from playwright.sync_api import expect

from components import search
from helpers import AppServer
from components import catalogue

UNINDEXED = "demo-sdsd-dialogues"


@pytest.fixture
def search_server(demo_db):
    for d in catalogue.datasets(demo_db):
        if d.name != UNINDEXED:
            search.build_index(demo_db, d.name)
    server = AppServer(demo_db)
    yield server
    server.close()


def _contrast(fg: str, bg: str) -> float:
    """The WCAG contrast ratio of two CSS rgb() colours."""
    def luminance(css):
        r, g, b = [int(x) / 255 for x in re.findall(r"\d+", css)[:3]]
        lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in (r, g, b)]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]
    hi, lo = sorted([luminance(fg), luminance(bg)], reverse=True)
    return (hi + 0.05) / (lo + 0.05)


@pytest.mark.browser
def test_search_pages_live_in_the_url_back_restores_and_a_hit_opens_compare(search_server, page):
    db = search_server.db
    ready = [s.dataset for s in search.index_statuses(db) if s.ready]
    expected = search.search(db, ready, "water", k=20)
    assert 10 < expected.total <= 20

    page.goto(search_server.url)
    page.get_by_role("tab", name="Search").click()
    box = page.locator("#search-query textarea")
    box.fill("water")
    box.press("Enter")
    summary = page.locator("#search-summary")
    expect(summary).to_contain_text(f"{expected.total} hits")
    expect(summary).to_contain_text("page 1 of 2")
    expect(page).to_have_url(re.compile(r"\?tab=search&q=water&datasets=demo-"))
    hits = page.locator("#search-results .sr-hit")
    expect(hits).to_have_count(10)
    expect(page.locator("#search-results mark").first).to_be_visible()
    first = expected.hits[0]
    expect(hits.first.locator(".sr-open")).to_have_text(f"{first.dataset} · row {first.row}")
    expect(hits.first.locator(".sr-score")).to_have_text(f"BM25 {first.score:.4f}")

    page.locator("#search-next").click()
    expect(summary).to_contain_text("page 2 of 2")
    expect(page).to_have_url(re.compile(r"&p=2$"))
    expect(hits).to_have_count(expected.total - 10)
    expect(hits.first.locator(".sr-rank")).to_have_text("#11")
    page.go_back()  # Back: page 1 again, in place
    expect(summary).to_contain_text("page 1 of 2")
    expect(hits.first.locator(".sr-rank")).to_have_text("#1")
    expect(page.locator("#search-page input")).to_have_value("1")
    page.go_forward()
    expect(summary).to_contain_text("page 2 of 2")

    eleventh = expected.hits[10]
    link = hits.first.locator("a.sr-open")
    expect(link).to_have_attribute("href", f"?tab=compare&dataset={eleventh.dataset}&row={eleventh.row}&q=water")
    link.click()  # the hit opens its row in Compare, with the query
    expect(page).to_have_url(re.compile(rf"\?tab=compare&dataset={eleventh.dataset}&row={eleventh.row}&q=water$"))
    expect(page.get_by_role("tab", name="Compare", selected=True)).to_be_visible()


@pytest.mark.browser
def test_a_search_is_restored_from_its_url_and_a_new_query_starts_at_page_one(search_server, page):
    db = search_server.db
    ready = [s.dataset for s in search.index_statuses(db) if s.ready]
    query = "you OR the OR water"
    filters = search.Filters(ranges={"length": (100, None), "length_chosen": (20, None), "margin": (-100, None)})
    expected = search.search(db, ready, query, field="chosen", mode="lucene", filters=filters, k=10, offset=10)
    assert expected.total > 10 and expected.hits
    url = (f"?tab=search&q=you+OR+the+OR+water&datasets={','.join(ready)}&field=chosen&mode=lucene"
           "&length=100:&length_chosen=20:&margin=-100:&p=2")
    page.goto(search_server.url + url)
    summary = page.locator("#search-summary")
    expect(summary).to_contain_text(f"{expected.total} hits")
    expect(summary).to_contain_text(f"page 2 of {expected.pages}")
    expect(page.get_by_role("tab", name="Search", selected=True)).to_be_visible()
    expect(page.locator("#search-query textarea")).to_have_value(query)
    expect(page.locator("#search-mode input[value=lucene]")).to_be_checked()
    expect(page.locator("#search-field input")).to_have_value("chosen")
    expect(page.locator("#search-length-min textarea")).to_have_value("100")
    expect(page.locator("#search-length-chosen-min textarea")).to_have_value("20")
    expect(page.locator("#search-number input")).to_have_value(re.compile("margin"))
    expect(page.locator("#search-number-min textarea")).to_have_value("-100")
    expect(page.locator("#search-page input")).to_have_value("2")
    first = expected.hits[0]
    expect(page.locator("#search-results .sr-hit").first.locator(".sr-open")).to_have_text(
        f"{first.dataset} · row {first.row}")
    expect(page).to_have_url(search_server.url + url)  # the address stays as it was

    box = page.locator("#search-query textarea")
    box.fill("water")
    box.press("Enter")  # a new query: page 1, the same settings
    again = search.search(db, ready, "water", field="chosen", mode="lucene", filters=filters)
    expect(summary).to_contain_text(f"{again.total} hit")
    expect(page).to_have_url(re.compile(r"\?tab=search&q=water&datasets=.*&field=chosen&mode=lucene&length=100%3A"
                                        r"&length_chosen=20%3A&margin=-100%3A$"))
    expect(page.locator("#search-page input")).to_have_value("1")
    page.go_back()  # Back: the search of the shared link again, at its page
    expect(summary).to_contain_text(f"page 2 of {expected.pages}")
    expect(page.locator("#search-query textarea")).to_have_value(query)


@pytest.mark.browser
def test_plain_words_offer_lucene_and_an_unindexed_dataset_says_so(search_server, page):
    page.goto(search_server.url + f"?tab=search&q=water&datasets={UNINDEXED}")
    expect(page.locator("#search-error")).to_contain_text(f"{UNINDEXED} has no search index yet")
    expect(page.locator("#search-summary")).not_to_contain_text("0 hits")

    page.goto(search_server.url + "?tab=search&q=ice+AND+-water&datasets=demo-assistant-pairs")
    expect(page.locator("#search-summary")).to_contain_text("AND, -water as words")
    offer = page.locator("#search-try-lucene")
    expect(offer).to_be_visible()
    lucene = search.search(search_server.db, ["demo-assistant-pairs"], "ice AND -water", mode="lucene").total
    offer.click()
    expect(page.locator("#search-mode input[value=lucene]")).to_be_checked()
    expect(page.locator("#search-summary")).to_contain_text(f"{lucene} hit")
    expect(page).to_have_url(re.compile(r"&mode=lucene"))
    expect(offer).to_be_hidden()


@pytest.mark.browser
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_highlights_are_readable_in_both_themes(search_server, page, scheme):
    page.emulate_media(color_scheme=scheme)
    page.goto(search_server.url + "?tab=search&q=water&datasets=demo-assistant-pairs")
    mark = page.locator("#search-results mark").first
    expect(mark).to_be_visible()
    assert page.evaluate("document.body.classList.contains('dark') || "
                         "!!document.querySelector('.gradio-container.dark, .dark')") == (scheme == "dark")
    colours = mark.evaluate("m => [getComputedStyle(m).color, getComputedStyle(m).backgroundColor]")
    assert _contrast(*colours) >= 4.5, colours


@pytest.mark.browser
def test_lucene_error_filters_and_background_index_with_progress(search_server, page):
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
    expect(page.locator("#search-results .sr-part")).to_have_text(re.compile(r"^chosen · assistant, turn \d+$"))

    # a length filter and a per-side length at once change the total over the whole ranked list
    page.locator("#search-mode").get_by_text("Plain words").click()
    box.fill("water")
    page.get_by_text("Filters (applied to the whole ranked list)").click()
    page.locator("#search-length-min textarea").fill("400")
    page.locator("#search-length-prompt-max textarea").fill("300")
    box.press("Enter")
    db = search_server.db
    ready = [s.dataset for s in search.index_statuses(db) if s.ready]
    every = search.search(db, ready, "water").total
    kept = search.search(db, ready, "water", filters=search.Filters(
        ranges={"length": (400, None), "length_prompt": (None, 300)})).total
    assert 0 < kept < every
    expect(page.locator("#search-summary")).to_contain_text(f"{kept} hit")
    page.locator("#search-length-min textarea").fill("")
    page.locator("#search-length-prompt-max textarea").fill("")

    page.get_by_text("Indexes", exact=True).click()
    expect(page.locator("#search-indexes")).to_contain_text("not indexed")
    expect(page.locator("#search-index-dataset input")).to_have_value(UNINDEXED)
    page.locator("#search-index").click()
    expect(page.locator("#search-index-result")).to_contain_text(f"Indexing {UNINDEXED} in the background")
    row = page.locator(f'#search-indexes tr[data-dataset="{UNINDEXED}"]')
    expect(row).to_contain_text("ready", timeout=60_000)  # the panel follows the build by itself
    assert search.index_status(search_server.db, UNINDEXED).ready
    # the dataset indexed meanwhile joins the search selection
    expect(page.locator("#search-datasets")).to_contain_text(UNINDEXED)
    box.press("Enter")
    expect(page.locator("#search-summary")).to_contain_text(UNINDEXED)


def test_search_api_round_trip(search_server):
    from gradio_client import Client

    client = Client(search_server.url, verbose=False)
    error, summary, html, page_no, pages, url = client.predict(
        "egg yolk", ["demo-assistant-pairs"], "contents", "words", "any", "", "", "margin", "", "", "any",
        api_name="/search")
    assert error == "" and "hit" in summary and page_no == 1
    assert "<mark>" in html and 'href="?tab=compare&amp;dataset=demo-assistant-pairs&amp;row=0&amp;q=egg+yolk"' in html
    assert url == "push:?tab=search&q=egg+yolk&datasets=demo-assistant-pairs"
    # the per-side lengths and the second numeric filter by name
    *_, two = client.predict("egg", ["demo-assistant-pairs"], "contents", "words", "any", "", "", "margin", "", "",
                             "any", length_chosen_min="1", number2="score_chosen", number2_min="0",
                             api_name="/search")
    assert two.endswith("&length_chosen=1%3A&score_chosen=0%3A")
    error, *_ = client.predict("egg AND", ["demo-assistant-pairs"], "contents", "lucene", "any", "", "",
                               "margin", "", "", "any", api_name="/search")
    assert "⚠️ Cannot parse 'egg AND'" in html_text(error)
