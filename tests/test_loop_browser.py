"""The annotator's loop in a real Chromium: deep links that show the dataset they name, a search hit
opened in Compare without a reload, earlier answers shown again, blind labeling, lists that follow
renames and deletes, Browse, and labels that always carry the signed-in user's name."""

from __future__ import annotations

import json

import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError
from playwright.sync_api import expect

from components import access, labels
from components.ingest import ingest

from helpers import COMPARE_NAME_BOX, AppServer, name_annotator, press_and_wait, shown_row, write_pairs
from components import catalogue

pytestmark = pytest.mark.browser



@pytest.fixture
def server(db, tmp_path):
    ingest(db, str(write_pairs(tmp_path / "aaa.jsonl", 6)), name="aaa")  # first in every list
    ingest(db, str(write_pairs(tmp_path / "kb.jsonl", 24)), name="kb")
    turns = {"prompt": [{"role": "user", "content": "Tell me about the zebra."},
                        {"role": "assistant", "content": "Zebras are striped."},
                        {"role": "user", "content": "And horses?"}],
             "chosen": [{"role": "assistant", "content": "Horses are not striped."}],
             "rejected": [{"role": "assistant", "content": "Horses are striped too."}]}
    (tmp_path / "turns.jsonl").write_text(json.dumps(turns) + "\n")
    ingest(db, str(tmp_path / "turns.jsonl"), name="turns")
    s = AppServer(db)
    yield s
    s.close()





def test_a_deep_link_sets_the_one_current_dataset_and_a_missing_one_says_so(server, page):
    for _ in range(3):  # every load, not most of them
        page.goto(server.url + "?tab=compare&dataset=kb&row=5")
        expect(page.locator("#cmp-title")).to_contain_text("kb · row 5 ")
        expect(page.locator("#cmp-dataset input")).to_have_value("kb")
    # Agreement, Export and Start/resume act on the dataset shown
    labels.add_label(server.db, "kb", 5, "chosen", "x")
    page.get_by_role("tab", name="Agreement").click()
    expect(page.locator("#agr-summary")).to_contain_text("kb")
    page.get_by_role("tab", name="Export").click()
    page.locator("#exp-go").click()
    expect(page.locator("#exp-summary")).to_contain_text("of 24 pairs")
    page.get_by_role("tab", name="Label").click()
    page.locator("#cmp-start").click()
    expect(page.locator("#cmp-title")).to_contain_text("kb · row")

    page.goto(server.url + "?tab=compare&dataset=nope&row=1")
    expect(page.locator("#cmp-status")).to_contain_text("No dataset named nope")
    expect(page.locator("#cmp-dataset input")).to_have_value("")
    assert "aaa" not in page.locator("#cmp-title").inner_text()
    page.goto(server.url + "?dataset=nope&row=1")
    expect(page.locator("#browse-summary")).to_contain_text("No dataset named nope")
    expect(page.locator("#browse-dataset input")).to_have_value("")


def test_a_hit_opens_in_compare_without_a_reload_its_words_marked(server, page):
    page.goto(server.url)
    expect(page.locator("#browse-dataset input")).to_have_value("aaa")
    page.evaluate("window.__samePage = true")

    def click_link(href: str) -> None:  # a link as the search results make it, anywhere in the page
        page.evaluate("""href => { const a = document.createElement('a'); a.href = href; a.textContent = 'hit';
                         a.id = 'test-hit'; document.body.prepend(a); }""", href)
        page.locator("#test-hit").click()
        page.evaluate("document.querySelector('#test-hit')?.remove()")

    click_link("?tab=compare&dataset=kb&row=7&q=plus")
    expect(page.locator("#cmp-title")).to_contain_text("kb · row 7 ")
    expect(page.locator("#cmp-title")).to_contain_text("Search hits for “plus”")
    assert page.evaluate("window.__samePage") is True  # no reload
    assert "row=7" in page.url
    expect(page.locator("#cmp-chosen mark").first).to_have_text("plus")
    expect(page.locator("#cmp-prompt mark").first).to_have_text("plus")
    expect(page.locator("#cmp-dataset input")).to_have_value("kb")

    click_link("?tab=compare&dataset=kb&q=number+1")  # "label these hits": a queue of the query's pairs
    found = labels.open_queue(server.db, "kb", "search", "number 1").rows
    assert 1 < len(found) < 24
    expect(page.locator("#cmp-title")).to_contain_text(f"pair 1 of {len(found)} in Search hits for “number 1”")
    assert shown_row(page) == found[0]

    click_link("?tab=compare&dataset=turns&row=0&q=zebra")  # the match is in an earlier turn: unfolded
    expect(page.locator("#cmp-earlier mark").first).to_have_text("zebra")
    assert page.evaluate("window.__samePage") is True


def test_a_revisited_pair_shows_my_answers_and_blind_labels_map_back(server, page):
    db = server.db
    page.goto(server.url + "?tab=compare&dataset=kb&row=5")
    expect(page.locator("#cmp-title")).to_contain_text("row 5 ")
    name_annotator(page, "rev")
    page.keyboard.press("w")
    page.locator("#cmp-tags input").fill("tone")
    page.keyboard.press("Enter")
    page.keyboard.press("Escape")
    page.locator("#cmp-note textarea").fill("too long")
    page.keyboard.press("Escape")
    press_and_wait(page, "2")
    assert labels.current_label(db, "kb", 5, "rev")["tags"] == ["tone"]
    expect(page.locator("#cmp-note textarea")).to_have_value("")
    press_and_wait(page, "ArrowLeft")  # back to the pair: my label, confidence, tags and note
    assert shown_row(page) == 5
    expect(page.locator("#cmp-mine")).to_contain_text("Rejected is better, confidence 2")
    expect(page.locator("#cmp-confidence input[value='2']")).to_be_checked()
    expect(page.locator("#cmp-note textarea")).to_have_value("too long")
    expect(page.locator("#cmp-tags")).to_contain_text("tone")

    # blind: an admin turns it on for the dataset; the sides are A and B in each pair's drawn order
    page.locator("#cmp-blind input").check()
    expect(page.locator("#cmp-status")).to_contain_text("Blind labeling is on")
    assert labels.setting_history(db, "kb", "blind")[-1] | {"set_at": None} == {
        "key": "blind", "value": True, "set_by": "local", "set_at": None}
    flipped = next(r for r in labels.shuffled_rows(db, "kb") if labels.swapped("kb", r) and r != 5)
    kept = next(r for r in labels.shuffled_rows(db, "kb") if not labels.swapped("kb", r) and r != 5)
    for row in (flipped, kept):
        page.goto(server.url + f"?tab=compare&dataset=kb&row={row}")
        expect(page.locator("#cmp-title")).to_contain_text(f"row {row} ")
        expect(page.locator("#cmp-chosen")).to_contain_text("A · key 1 if better")
        expect(page.locator("#cmp-chosen")).not_to_contain_text("in the source")
        expect(page.locator("#cmp-label-chosen")).to_have_text("1 · A is better")
        a_side = catalogue.record(db, "kb", row)["rejected" if row == flipped else "chosen"][0]["content"]
        expect(page.locator("#cmp-chosen")).to_contain_text(a_side[:20])
        press_and_wait(page, "1")  # A is better
        assert labels.current_label(db, "kb", row, "rev")["label"] == ("rejected" if row == flipped else "chosen")
    events = db.dicts("SELECT options FROM label_events WHERE annotator = 'rev' ORDER BY id DESC LIMIT 1")
    assert json.loads(events[0]["options"])["blind"] is True


def test_lists_follow_a_rename_and_a_delete_and_browse_shows_a_row_once(server, page):
    db = server.db
    labels.add_label(db, "aaa", 1, "chosen", "early")
    page.goto(server.url + "?tab=compare&dataset=aaa&row=1")
    expect(page.locator("#cmp-title")).to_contain_text("aaa · row 1 ")
    page.get_by_role("tab", name="Browse").click()
    expect(page.locator("#browse-dataset input")).to_have_value("aaa")
    # a row opens below the table: the shared turn once, no clear icon on read-only panes, in view
    page.locator("#browse-table").get_by_text("Question number 4").click()
    expect(page.locator("#browse-row-title")).to_contain_text("row 4")
    expect(page.locator("#browse-prompt")).to_contain_text("Question number 4")
    expect(page.locator("#browse-chosen")).not_to_contain_text("Question number 4")
    expect(page.locator("#browse-rejected")).to_contain_text("It is 9")
    expect(page.locator("#browse-chosen button[aria-label='Clear']")).to_be_hidden()
    page.wait_for_function("() => { const r = document.querySelector('#browse-row-title').getBoundingClientRect();"
                           " return r.top >= 0 && r.top < window.innerHeight; }", timeout=10_000)

    page.get_by_text("Rename or delete this dataset").click()
    page.locator("#browse-new-name textarea, #browse-new-name input").fill("aaa-two")
    page.locator("#browse-rename").click()
    expect(page.locator("#browse-manage-result")).to_contain_text("Renamed aaa to aaa-two")
    expect(page.locator("#browse-dataset input")).to_have_value("aaa-two")
    expect(page.locator("#browse-summary")).to_contain_text("aaa-two")
    assert labels.labeled_rows(db, "aaa-two", "early") == {1: "chosen"}
    page.get_by_role("tab", name="Compare").click()
    expect(page.locator("#cmp-title")).to_contain_text("aaa-two · row 1 ")  # followed without a reload
    expect(page.locator("#cmp-dataset input")).to_have_value("aaa-two")
    expect(page.locator("#cmp-progress")).to_contain_text("Everyone: 1 of 6")

    page.get_by_role("tab", name="Browse").click()
    page.locator("#browse-confirm textarea, #browse-confirm input").fill("aaa-two")
    page.locator("#browse-delete").click()
    expect(page.locator("#browse-manage-result")).to_contain_text("Deleted aaa-two (6 rows)")
    expect(page.locator("#browse-dataset input")).to_have_value("")
    assert catalogue.dataset(db, "aaa-two") is None and labels.label_event_count(db, "aaa-two") == 1
    page.locator("#browse-dataset input").click()
    expect(page.get_by_role("option", name="kb")).to_be_visible()
    expect(page.get_by_role("option", name="aaa-two")).to_have_count(0)
    page.keyboard.press("Escape")
    page.get_by_role("tab", name="Compare").click()
    expect(page.locator("#cmp-status")).to_contain_text("aaa-two was deleted")


@pytest.fixture
def signed_in(db, tmp_path):
    ingest(db, str(write_pairs(tmp_path / "kb.jsonl", 8)), name="kb")
    access.add_user(db, "ada", "annotator", "ada-password")
    access.add_user(db, "vic", "viewer", "vic-password")
    s = AppServer(db)
    yield s
    s.close()


def test_signed_in_labels_carry_the_callers_name(signed_in, page):
    db = signed_in.db
    ada = Client(signed_in.url, auth=("ada", "ada-password"), verbose=False)
    event = ada.predict("kb", 2, "tie", "mallory", api_name="/label")
    assert event["annotator"] == "ada"
    vic = Client(signed_in.url, auth=("vic", "vic-password"), verbose=False)
    with pytest.raises(AppError, match="labeling needs the annotator role"):
        vic.predict("kb", 3, "tie", "vic", api_name="/label")

    page.goto(signed_in.url + "?tab=compare&dataset=kb&row=4")
    page.locator("input[type=text], input:not([type])").first.fill("ada")
    page.locator("input[type=password]").fill("ada-password")
    page.keyboard.press("Enter")
    expect(page.locator("#cmp-title")).to_contain_text("kb · row 4 ", timeout=20_000)
    expect(page.locator("#cmp-annotator")).to_contain_text("Labelling as ada")
    expect(page.locator(COMPARE_NAME_BOX)).to_be_disabled()
    press_and_wait(page, "1")
    assert labels.current_label(db, "kb", 4, "ada")["label"] == "chosen"
    assert {r[0] for r in db.rows("SELECT DISTINCT annotator FROM label_events")} == {"ada"}
