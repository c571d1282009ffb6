"""The Revise tab in Chromium: streaming into the page, Stop, an edited revision accepted, pending review."""

from __future__ import annotations

import re
import threading
import time

import pytest
from playwright.sync_api import expect

from components import revise as rv
from components import catalogue

DIALOGUES = "demo-sdsd-dialogues"
PAIRS = "demo-assistant-pairs"

pytestmark = pytest.mark.browser


def open_revise(page, server, dataset: str, row: int, model: str) -> None:
    page.goto(f"{server.url}?tab=revise&dataset={dataset}&row={row}")
    expect(page.locator("#revise-about")).to_contain_text(f"row {row}", timeout=30_000)
    page.locator("#revise-model textarea, #revise-model input").first.fill(model)


def set_number(page, elem_id: str, value) -> None:
    box = page.locator(f"#{elem_id} input[type=number]").first
    box.fill(str(value))
    box.press("Enter")
    box.blur()


def test_tokens_stream_into_the_page_and_stop_cancels(page, app_server, tiny_model):
    open_revise(page, app_server, DIALOGUES, 0, tiny_model)
    set_number(page, "revise-max-new", 3000)
    page.click("#revise-go")
    critique = page.locator("#revise-critique textarea")
    expect(critique).not_to_have_value("", timeout=60_000)  # the model loads, then text arrives
    seen = []
    deadline = time.time() + 30
    while len(set(seen)) < 4 and time.time() < deadline:
        seen.append(critique.input_value())
        page.wait_for_timeout(50)
    lengths = sorted({len(v) for v in seen})
    assert len(lengths) >= 4 and lengths[0] > 0  # several partial critiques reached the page
    page.click("#revise-stop")
    status = page.locator("#revise-status")
    expect(status).to_contain_text("Stopped", timeout=30_000)
    tokens = int(re.search(r"([\d,]+) tokens", status.inner_text()).group(1).replace(",", ""))
    assert 0 < tokens < 3000
    expect(status).to_contain_text("stopped before the revision")
    final = critique.input_value()
    # nothing more arrives after Stop: the generation thread ends (the server is this process), and
    # the page still shows what it showed when the handler said "Stopped"
    deadline = time.time() + 30
    while any(t.name == "revise-generate" for t in threading.enumerate()) and time.time() < deadline:
        time.sleep(0.05)
    assert not any(t.name == "revise-generate" for t in threading.enumerate())
    expect(status).to_contain_text("Stopped")
    assert critique.input_value() == final


def test_an_edited_revision_is_accepted_from_the_page(page, app_server, tiny_model):
    db = app_server.db
    open_revise(page, app_server, DIALOGUES, 1, tiny_model)
    set_number(page, "revise-max-new", 16)
    page.click("#revise-go")
    status = page.locator("#revise-status")
    expect(status).to_contain_text("Done", timeout=90_000)
    revision = page.locator("#revise-revision textarea")
    assert revision.input_value().strip()
    edited = "You could keep it simple: a target-date fund matches your age. <script>alert(1)</script>"
    revision.fill(edited)
    page.locator("#revise-who textarea, #revise-who input").first.fill("tester")
    page.click("#revise-accept")
    expect(page.locator("#revise-accepted")).to_contain_text("Accepted (edited) as row 0", timeout=30_000)
    rec = catalogue.record(db, f"{DIALOGUES}-revisions", 0)
    assert rec["chosen"] == [{"role": "assistant", "content": edited}]
    assert rec["rejected"] == [rv.conversation(db, DIALOGUES, 1).final]
    meta = rec["metadata"]
    assert meta["edited"] is True and meta["accepted_by"] == "tester" and meta["model"] == tiny_model
    assert meta["settings"]["max_new_tokens"] == 16 and meta["tokens"]["critique"] == 16
    assert meta["device"] == "cpu" and meta["dtype"] == "float32" and meta["source_row"] == 1
    page.click("#revise-accept")  # a second click does not store it twice
    expect(page.locator("#revise-accepted")).to_contain_text("Nothing to accept")
    assert catalogue.dataset(db, f"{DIALOGUES}-revisions").row_count == 1


def test_pending_batch_results_are_reviewed_in_the_page(page, app_server, tiny_model):
    db = app_server.db
    backend = rv.local_backend(tiny_model, "cpu")
    ps = rv.resolve_principles(db, "concise")
    job, _ = rv.start_job(db, PAIRS, [4, 5], ps, backend, rv.Settings(max_new_tokens=6, seed=1))
    rv.run_job(db, job["id"], backend)
    page.goto(app_server.url + "?tab=revise")
    template = page.locator("#revise-principles label", has_text="(template)").locator("input")
    expect(template).not_to_be_checked(timeout=30_000)
    page.locator("#revise-avoid textarea, #revise-avoid input").first.press_sequentially("crypto", delay=20)
    expect(template).to_be_checked()  # typing in the pink elephant's box ticks it
    page.get_by_text("Pending review", exact=True).click()
    table = page.locator("#revise-pending")
    expect(table).to_contain_text(PAIRS, timeout=30_000)
    first = rv.pending(db, job["id"])[0]
    table.get_by_test_id("cell-0-0").get_by_text(first["id"][:8]).click()
    box = page.locator("#revise-pending-revision textarea")
    expect(box).not_to_have_value("", timeout=15_000)
    box.fill("A kinder, clearer answer.")
    page.click("#revise-pending-accept")
    expect(page.get_by_text("Accepted (edited) as row 0")).to_be_visible(timeout=15_000)
    rec = catalogue.record(db, f"{PAIRS}-revisions", 0)
    assert rec["chosen"][0]["content"] == "A kinder, clearer answer." and rec["metadata"]["job_id"] == job["id"]
    assert len(rv.pending(db, job["id"])) == 1
