"""The Browse and Data screens in a real Chromium."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect

from helpers import data_tab_ingest
from components import catalogue

pytestmark = pytest.mark.browser


def test_pick_demo_dataset_and_open_row_by_deep_link(app_server, page):
    page.goto(app_server.url)
    # pick a demo dataset from the dropdown
    page.locator("#browse-dataset input").click()
    page.get_by_role("option", name="demo-trl-standard").click()
    expect(page.locator("#browse-summary")).to_contain_text("12 rows")
    first = catalogue.record(app_server.db, "demo-trl-standard", 0)["prompt"][0]["content"]
    expect(page.locator("#browse-table")).to_contain_text(first[:40])
    # clicking a row of the page opens it
    second = catalogue.record(app_server.db, "demo-trl-standard", 1)
    page.locator("#browse-table").get_by_text(second["prompt"][0]["content"][:30]).click()
    expect(page.locator("#browse-row-title")).to_contain_text("row 1")
    expect(page.locator("#browse-chosen")).to_contain_text(second["chosen"][0]["content"][:40])
    # a deep link opens row 3 of another dataset, with its conversation as chat
    page.goto(app_server.url + "?dataset=demo-trl-conversational&row=3")
    rec = catalogue.record(app_server.db, "demo-trl-conversational", 3)
    expect(page.locator("#browse-row-title")).to_contain_text("row 3")
    expect(page.locator("#browse-chosen")).to_contain_text(rec["chosen"][-1]["content"][:40])
    expect(page.locator("#browse-rejected")).to_contain_text(rec["rejected"][-1]["content"][:40])
    expect(page.locator("#browse-metadata")).to_contain_text("annotator_count")


def test_ingest_from_the_data_tab(app_server, page, tmp_path):
    src = tmp_path / "mine.jsonl"
    src.write_text("".join(json.dumps({"prompt": f"q{i}", "chosen": "yes", "rejected": None if i == 2 else "no"}) + "\n"
                           for i in range(5)))
    page.goto(app_server.url)
    data_tab_ingest(page, str(src))
    expect(page.locator("#data-result")).to_contain_text("4 of 5 rows loaded", timeout=30_000)
    expect(page.locator("#data-result")).to_contain_text("missing rejected")
    assert catalogue.dataset(app_server.db, "mine").row_count == 4
    expect(page.locator("#data-table")).to_contain_text("mine")
