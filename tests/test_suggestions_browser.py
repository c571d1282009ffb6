"""A reward model's suggestion in the Compare tab in real Chromium: shown beside the pair, accepted with
its key (the label records it), hidden in blind mode; and the score queues over the API."""

from __future__ import annotations

import json

import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError
from playwright.sync_api import expect

from components import labels
from components.ingest import ingest

from helpers import AppServer, open_compare, press_and_wait, shown_row, write_pairs
from test_suggestions import write_scores

MARGINS = {row: (row - 5) / 2 or 0.25 for row in range(12)}  # rows 0-4 prefer the rejected side


@pytest.fixture
def server(db, tmp_path):
    ingest(db, str(write_pairs(tmp_path / "kb.jsonl", 12)), name="kb")
    write_scores(db, "kb", "rm-tiny", MARGINS)
    s = AppServer(db)
    yield s
    s.close()


def _options(db, annotator: str) -> list[tuple[int, str, dict]]:
    return [(r, lab, json.loads(o)) for r, lab, o in db.rows(
        "SELECT row, label, options::VARCHAR FROM label_events WHERE annotator = ? ORDER BY id", [annotator])]


@pytest.mark.browser
def test_a_suggestion_is_shown_accepted_with_its_key_and_hidden_when_blind(server, page):
    db = server.db
    open_compare(page, server.url, "kb", "sam", row=1)
    box = page.locator("#cmp-suggestion")
    expect(box).to_contain_text("rm-tiny prefers the rejected side (right) by 2.000")
    expect(box).to_contain_text("margin -2.000")
    press_and_wait(page, "a")  # accept: the model's side is the label
    row = shown_row(page)
    expect(page.locator("#cmp-status")).to_contain_text("Row 1: Rejected is better (the model's suggestion)")
    expect(box).to_contain_text(f"by {abs(MARGINS[row]):.3f}")
    press_and_wait(page, "1")  # a label of one's own beside a suggestion records the suggestion too
    (r1, lab1, o1), (r2, lab2, o2) = _options(db, "sam")
    assert (r1, lab1, o1["accepted_suggestion"]) == (1, "rejected", True)
    assert o1["suggestion"] == {"model": "rm-tiny", "model_revision": "r1", "margin": -2.0, "label": "rejected"}
    assert (r2, lab2, o2["accepted_suggestion"]) == (row, "chosen", False)
    assert o2["suggestion"]["margin"] == MARGINS[row]

    # blind: no suggestion, no scores, and the key writes nothing
    labels.set_setting(db, "kb", "blind", True, "admin")
    open_compare(page, server.url, "kb", "sam", row=3)
    expect(page.locator("#cmp-title")).to_contain_text("row 3 ")
    expect(page.locator("#cmp-chosen")).to_contain_text("Answer 3 is")
    expect(box).to_be_hidden()
    expect(page.locator("#cmp-accept")).to_be_hidden()
    page.keyboard.press("a")
    page.keyboard.press("ArrowRight")
    expect(page.locator("#cmp-title")).not_to_contain_text("row 3 ")
    assert len(_options(db, "sam")) == 2
    assert "rm-tiny" not in page.locator("#cmp-keys").inner_text()


def test_next_pair_takes_a_score_queue_and_a_model(server):
    client = Client(server.url, verbose=False)
    flips = [0, 1, 2, 3, 4]  # margin -2.5 ... -0.5: the most confident first
    assert client.predict("kb", "ada", "model_flips", "rm-tiny", api_name="/next_pair") == flips[0]
    client.predict("kb", 0, "rejected", "ada", api_name="/label")
    assert client.predict("kb", "ada", "model_flips", "rm-tiny", api_name="/next_pair") == flips[1]
    assert client.predict("kb", "ada", "uncertain", api_name="/next_pair") == 5  # |0.25| is the smallest
    assert client.predict("kb", "ada", api_name="/next_pair") == labels.next_row(server.db, "kb", "ada")
    with pytest.raises(AppError, match="has not scored kb"):
        client.predict("kb", "ada", "uncertain", "nope", api_name="/next_pair")
    with pytest.raises(AppError, match="unknown queue"):
        client.predict("kb", "ada", "bogus", api_name="/next_pair")
