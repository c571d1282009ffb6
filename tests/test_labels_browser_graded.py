"""The Compare tab on a graded label schema and on N-response pairs, in a real Chromium, keyboard only."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect

from components import labels
from components.ingest import ingest

from helpers import AppServer, open_compare, press_and_wait, shown_row, write_pairs

pytestmark = pytest.mark.browser


@pytest.fixture
def graded_server(db, tmp_path):
    ingest(db, str(write_pairs(tmp_path / "gr.jsonl", 6)), name="gr")
    labels.set_setting(db, "gr", "label_schema", {"overall": 7, "aspects": ["helpfulness", "safety"]}, "root")
    s = AppServer(db)
    yield s
    s.close()


def test_a_seven_point_grade_and_two_aspects_from_the_keyboard(graded_server, page):
    db = graded_server.db
    open_compare(page, graded_server.url, "gr", "grader-gus")
    panel = page.locator("#cmp-graded-panel")
    expect(panel).to_contain_text("B much better")
    expect(page.locator("#cmp-label-chosen")).to_be_hidden()  # the binary buttons make way for the scale

    first = shown_row(page)
    page.keyboard.press("Tab")  # the first aspect's row
    expect(panel.locator(".cmp-aspect[data-index='0']")).to_have_class("cmp-aspect cmp-row-active")
    page.keyboard.press("1")  # helpfulness: A; moves on to safety
    page.keyboard.press("3")  # safety: the same; back to the overall grade
    expect(panel.locator(".cmp-overall")).to_have_class("cmp-overall cmp-row-active")
    press_and_wait(page, "6")  # 6 of 7: B better (grade +2)

    second = shown_row(page)
    press_and_wait(page, "1")  # A much better, no aspect given

    got = {r["row"]: r for r in db.dicts(
        "SELECT row, label, grade, aspects::VARCHAR AS aspects, schema_version FROM label_events "
        "WHERE annotator = 'grader-gus' ORDER BY id")}
    assert (got[first]["label"], got[first]["grade"], json.loads(got[first]["aspects"]),
            got[first]["schema_version"]) == ("rejected", 2, {"helpfulness": "chosen", "safety": "tie"}, 1)
    assert (got[second]["label"], got[second]["grade"], got[second]["aspects"]) == ("chosen", -3, None)
    # the aspects chosen on one pair do not carry over to the next: the panel starts afresh
    expect(panel.locator(".cmp-picked")).to_have_count(0)
    expect(page.locator("#cmp-status")).to_contain_text("Chosen is better")


RESPONSES = ["Paris is the capital of France.", "I think it is Lyon.", "Paris.", "France has no capital."]


@pytest.fixture
def ranking_server(db, tmp_path):
    path = tmp_path / "uf.jsonl"
    with open(path, "w") as fh:
        for i in range(3):
            fh.write(json.dumps({"instruction": f"Question {i}: what is the capital of France?", "completions": [
                {"response": f"{r} ({i})", "overall_score": s,
                 "annotations": {"helpfulness": {"Rating": str(int(s // 2))}}}
                for r, s in zip(RESPONSES, [9, 3, 7, 1])]}) + "\n")
    ingest(db, str(path), name="uf")
    s = AppServer(db)
    yield s
    s.close()


def test_four_responses_ranked_from_the_keyboard(ranking_server, page):
    db = ranking_server.db
    open_compare(page, ranking_server.url, "uf", "ranker-rita")
    panel = page.locator("#cmp-graded-panel")
    expect(panel.locator(".cmp-resp")).to_have_count(4)
    expect(panel).to_contain_text(RESPONSES[3])
    expect(page.locator("#cmp-chosen")).to_be_hidden()  # the two panes make way for the four responses

    row = shown_row(page)
    page.keyboard.press("3")
    page.keyboard.press("3")  # twice the same response: counted once
    page.keyboard.press("2")
    page.keyboard.press("Backspace")  # takes the 2 back
    page.keyboard.press("1")
    expect(panel.locator(".cmp-rank-now")).to_have_text("3 > 1")
    press_and_wait(page, "4")  # the third of four: the one left goes last and the ranking is sent

    event = db.dicts("SELECT row, label, ranking FROM label_events WHERE annotator = 'ranker-rita'")
    # 3 > 1 > 4 > 2; the pair stored is the best-scored response (1) against the worst (4): chosen ranked above
    assert [(e["row"], e["label"], list(e["ranking"])) for e in event] == [(row, "chosen", [2, 0, 3, 1])]
