"""A labeling project in a real Chromium: the guidelines panel beside the pair (edited by an admin,
versioned, recorded with each label), and a signed-in reviewer resolving a disagreement."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect

from components import access, labels
from components.ingest import ingest

from helpers import AppServer, sign_in, write_pairs

pytestmark = pytest.mark.browser


@pytest.fixture
def project(db, tmp_path):
    ingest(db, str(write_pairs(tmp_path / "p.jsonl", 6)), name="p")
    labels.set_setting(db, "p", "overlap", 2, "lead")
    labels.set_setting(db, "p", "guidelines", "## Prefer facts\nA wrong sum always loses.", "lead")
    s = AppServer(db)
    yield s
    s.close()


def test_the_guidelines_panel_is_beside_the_pair_and_each_label_records_its_version(project, page):
    db = project.db
    page.goto(project.url + "?tab=compare&dataset=p")
    page.locator("#cmp-annotator textarea, #cmp-annotator input").fill("ada")
    page.keyboard.press("Escape")
    expect(page.locator("#cmp-progress")).to_contain_text("Project:")
    box = page.locator("#cmp-guidelines-box")
    expect(box).to_contain_text("Guidelines (version 1)")
    expect(page.locator("#cmp-guidelines h2")).to_have_text("Prefer facts")
    expect(page.locator("#cmp-guidelines")).to_contain_text("A wrong sum")
    held = db.scalar("SELECT row FROM reservations WHERE annotator = 'ada'")
    expect(page.locator("#cmp-title")).to_contain_text(f"row {held} ")  # the queue handed out and held it
    page.locator("#cmp-guidelines-box button").first.click()  # collapsible
    expect(page.locator("#cmp-guidelines")).to_be_hidden()
    page.keyboard.press("1")
    expect(page.locator("#cmp-status")).to_contain_text(f"Row {held}: Chosen is better")
    options = json.loads(db.scalar("SELECT options FROM label_events WHERE annotator = 'ada'"))
    assert options["guidelines_version"] == 1 and options["seconds"] > 0

    # an admin edits the guidelines on the Project screen: a new version
    page.get_by_role("tab", name="Project").click()
    expect(page.locator("#prj-progress")).to_contain_text("2 in progress")  # one labelled, the next held
    expect(page.locator("#prj-progress")).to_contain_text("ada 1 (+1 held)")
    expect(page.locator("#prj-team")).to_contain_text("ada")
    page.locator("#prj-guidelines textarea").fill("## Prefer facts\nAlso prefer the shorter answer.")
    page.locator("#prj-save").click()
    expect(page.locator("#prj-saved")).to_contain_text("guidelines (version 2)")
    page.get_by_role("tab", name="Label").click()
    page.locator("#cmp-start").click()
    expect(page.locator("#cmp-guidelines-box")).to_contain_text("Guidelines (version 2)")
    page.locator("#cmp-guidelines-box button").first.click()
    expect(page.locator("#cmp-guidelines")).to_contain_text("shorter answer")


@pytest.fixture
def reviewed(db, tmp_path):
    ingest(db, str(write_pairs(tmp_path / "p.jsonl", 6)), name="p")
    access.add_user(db, "rev", "reviewer", "rev-password")
    labels.add_label(db, "p", 2, "chosen", "ada", confidence=3, note="the sum is right")
    labels.add_label(db, "p", 2, "rejected", "bo", confidence=1, note="shorter is better")
    labels.add_label(db, "p", 4, "tie", "ada")
    labels.add_label(db, "p", 4, "tie", "bo")
    s = AppServer(db)
    yield s
    s.close()


def test_a_reviewer_resolves_a_disagreement(reviewed, page):
    db = reviewed.db
    sign_in(page, reviewed.url + "?tab=compare&dataset=p", "rev", "rev-password", "#cmp-title")
    expect(page.locator("#cmp-title")).to_contain_text("p · row", timeout=30_000)
    page.get_by_role("tab", name="Review").click()
    expect(page.locator("#rev-summary")).to_contain_text("1 disagreement · 0 resolved")
    page.locator("#rev-queue").get_by_test_id("cell-0-1").click()
    expect(page.locator("#rev-title")).to_contain_text("row 2")
    expect(page.locator("#rev-labels")).to_contain_text("the sum is right")
    expect(page.locator("#rev-labels")).to_contain_text("shorter is better")
    expect(page.locator("#rev-chosen")).to_contain_text("2 plus 2 is 4")
    page.locator("#rev-label").get_by_text("Chosen is better").click()
    page.locator("#rev-reason textarea, #rev-reason input").first.fill("4 is the right sum")
    page.locator("#rev-save").click()
    expect(page.locator("#rev-status")).to_contain_text("Row 2: final label Chosen is better recorded")
    expect(page.locator("#rev-summary")).to_contain_text("1 resolved · 0 to go")
    expect(page.locator("#rev-title")).to_contain_text("by rev")
    assert labels.reviewed(db, "p")[2] | {"created_at": None} == {
        "reviewer": "rev", "label": "chosen", "reason": "4 is the right sum", "created_at": None}
    assert labels.decisions(db, "p")[2] == ("chosen", "review")
    assert labels.majority_labels(db, "p")[2] is None  # the review is no vote
