"""The Compare tab in a real Chromium: keyboard labeling, hostile text, flip -> export, agreement."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect

from components import labels
from components.ingest import ingest

from helpers import COMPARE_NAME_BOX, KAPPA_TABLE, AppServer, open_compare, press_and_wait, shown_row, write_pairs
from components import catalogue

pytestmark = pytest.mark.browser



@pytest.fixture
def server(db, tmp_path):
    ingest(db, str(write_pairs(tmp_path / "kb.jsonl", 24)), name="kb")
    s = AppServer(db)
    yield s
    s.close()





def test_label_twenty_pairs_with_the_keyboard_alone(server, page):
    db = server.db
    open_compare(page, server.url, "kb", "keyboard-kate")
    keys = ["1", "2", "3", "4", "s"] * 4
    expected = []
    for key in keys:
        row = shown_row(page)
        press_and_wait(page, key)
        expected.append((row, {"1": "chosen", "2": "rejected", "3": "tie", "4": "both_bad", "s": "skip"}[key]))

    events = db.dicts("SELECT row, label, options FROM label_events WHERE annotator = 'keyboard-kate' ORDER BY id")
    assert [(e["row"], e["label"]) for e in events] == expected
    assert len({row for row, _ in expected}) == 20  # twenty different pairs, each shown then labeled
    assert expected[0][0] == labels.shuffled_rows(db, "kb")[0]  # the queue's first pair came first
    assert all(json.loads(e["options"])["via"] == "ui" for e in events)
    expect(page.locator("#cmp-progress")).to_contain_text("You: 20 of 24 (4 skipped)")

    # keys do nothing while typing in a box: the note receives the text, no label is written
    page.keyboard.press("n")
    page.keyboard.type("1234 s u")
    assert page.locator("#cmp-note textarea, #cmp-note input").input_value() == "1234 s u"
    page.keyboard.press("Escape")
    page.keyboard.press("w")  # confidence 2, then label: the note and confidence go with it
    expect(page.locator("#cmp-confidence input[value='2']")).to_be_checked()
    row = shown_row(page)
    press_and_wait(page, "1")
    last = db.dicts("SELECT * FROM label_events WHERE annotator = 'keyboard-kate' ORDER BY id DESC LIMIT 1")[0]
    assert (last["row"], last["label"], last["confidence"], last["note"]) == (row, "chosen", 2, "1234 s u")
    assert page.locator("#cmp-note textarea, #cmp-note input").input_value() == ""  # reset for the next pair

    # undo is a key too, and an event: the pair comes back on screen
    press_and_wait(page, "u")
    assert shown_row(page) == row
    assert labels.current_label(db, "kb", row, "keyboard-kate") is None
    assert labels.label_event_count(db, "kb") == 22

    # the name is remembered by the browser
    page.reload()
    expect(page.locator(COMPARE_NAME_BOX)).to_have_value("keyboard-kate", timeout=20_000)
    expect(page.locator("#cmp-progress")).to_contain_text("You: 20 of 24")
    assert shown_row(page) == row  # resumes at the first pair not labeled yet


PAYLOADS = [
    "Before <script>window.__pwned='script';console.log('PWNED script')</script> after.",
    "Look: <img src=x onerror=\"window.__pwned='img';console.log('PWNED img')\"> done.",
    "A [harmless link](javascript:window.__pwned='md';console.log('PWNED md')) and "
    "<a href=\"javascript:window.__pwned='anchor';console.log('PWNED anchor')\">an anchor</a> end.",
    "<svg onload=\"window.__pwned='svg';console.log('PWNED svg')\"><circle r='4'/></svg> Shapes text.",
]


@pytest.fixture
def hostile(db, tmp_path):
    rows = [
        {
            "prompt": f"Prompt {i}: {PAYLOADS[i]}",
            "chosen": f"Chosen {i}: {PAYLOADS[(i + 1) % 4]}",
            "rejected": f"Rejected {i}: {PAYLOADS[(i + 2) % 4]}",
            "source_note": PAYLOADS[(i + 3) % 4],
        }
        for i in range(4)
    ]
    path = tmp_path / "xss.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    ingest(db, str(path), name="xss")
    s = AppServer(db)
    yield s
    s.close()


def test_hostile_text_runs_nothing_and_stays_readable(hostile, page):
    console, dialogs = [], []
    page.on("console", lambda m: console.append(m.text))
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    order = labels.shuffled_rows(hostile.db, "xss")
    page.goto(hostile.url + f"?tab=compare&dataset=xss&row={order[0]}")
    for n, i in enumerate(order):  # every pair, moving on with the keyboard
        if n:
            press_and_wait(page, "ArrowRight")
        expect(page.locator("#cmp-title")).to_contain_text(f"row {i} ")
        chosen, rejected, prompt = (page.locator(f"#cmp-{x}") for x in ("chosen", "rejected", "prompt"))
        expect(prompt).to_contain_text(f"Prompt {i}:")
        # the markup shows as text, with the words around it
        for pane, payload in ((prompt, PAYLOADS[i]), (chosen, PAYLOADS[(i + 1) % 4]),
                              (rejected, PAYLOADS[(i + 2) % 4])):
            text = pane.inner_text()
            for literal in ("<script>", "<img src=x onerror=", "<svg onload=", "<a href=\"javascript:"):
                if literal in payload:
                    assert literal in text, (literal, text)
            for words in ("Before", "after.", "Look:", "done.", "harmless link", "end.", "Shapes text."):
                if words in payload:
                    assert words in text, (words, text)
        # links that were javascript: go nowhere when clicked
        hrefs = page.locator("#cmp-keys a").evaluate_all("els => els.map(a => a.href)")
        assert not [h for h in hrefs if h.lower().startswith("javascript:")], hrefs  # no link can run script
        for link in page.locator("#cmp-keys a").get_by_text("harmless link").all():
            link.click()
        # the word diff (HTML built by the app) and the metadata show the markup as text too
        page.keyboard.press("d")
        expect(page.locator("#cmp-diff")).to_contain_text("Chosen (words not in rejected struck out)")
        assert "<" in page.locator("#cmp-diff").inner_text()
        page.keyboard.press("d")
        expect(page.locator("#cmp-diff")).to_be_hidden()
        assert page.evaluate("window.__pwned") is None
    page.locator("#cmp-keys").get_by_text("Pair metadata").click()
    expect(page.locator("#cmp-metadata")).to_contain_text("source_note")
    expect(page.locator("#cmp-metadata")).to_contain_text("window.__pwned")  # the payload, as text

    # Browse shows the same text (rows 0 and 2 carry every payload between them)
    for i in (0, 2):
        page.goto(hostile.url + f"?dataset=xss&row={i}")
        expect(page.locator("#browse-row-title")).to_contain_text(f"row {i}")
        expect(page.locator("#browse-prompt")).to_contain_text(f"Prompt {i}:")  # the shared turn, once
        expect(page.locator("#browse-rejected")).to_contain_text(f"Rejected {i}:")
        for words in ("after.", "done.", "harmless link", "Shapes text."):
            if words in PAYLOADS[(i + 1) % 4]:
                expect(page.locator("#browse-chosen")).to_contain_text(words)
        hrefs = page.locator("#browse-prompt a, #browse-chosen a, #browse-rejected a").evaluate_all("els => els.map(a => a.href)")
        assert not [h for h in hrefs if h.lower().startswith("javascript:")], hrefs  # no link can run script
        assert page.evaluate("window.__pwned") is None
    assert not [m for m in console if "PWNED" in m]
    assert not dialogs


def test_a_flip_made_in_the_ui_is_a_swapped_pair_in_the_export(server, page, tmp_path):
    import datasets

    db = server.db
    open_compare(page, server.url, "kb", "flipper", row=5)
    assert shown_row(page) == 5
    press_and_wait(page, "2")  # rejected is better
    assert labels.current_label(db, "kb", 5, "flipper")["label"] == "rejected"

    page.get_by_role("tab", name="Export").click()
    page.locator("#exp-labeled-only input").check()
    page.locator("#exp-go").click()
    expect(page.locator("#exp-summary")).to_contain_text("1 of 24 pairs written")
    with page.expect_download() as info:
        page.locator("#exp-file a").first.click()
    path = tmp_path / "download.jsonl"
    info.value.save_as(path)
    ds = datasets.load_dataset("json", data_files=str(path), split="train", cache_dir=str(tmp_path / "hf"))
    assert ds.num_rows == 1 and {"prompt", "chosen", "rejected"} <= set(ds.column_names)
    src = catalogue.record(db, "kb", 5)
    assert ds[0]["source_row"] == 5
    assert ds[0]["chosen"] == src["rejected"] and ds[0]["rejected"] == src["chosen"]


def test_agreement_panel_and_a_disagreement_opens_in_compare(server, page):
    db = server.db
    for row, (a, b) in enumerate(KAPPA_TABLE[15:35]):
        labels.add_label(db, "kb", row, a, "ann-a")
        labels.add_label(db, "kb", row, b, "ann-b")
    agr = labels.agreement(db, "kb")
    page.goto(server.url + "?tab=compare&dataset=kb")
    expect(page.locator("#cmp-title")).to_contain_text("kb · row")
    page.get_by_role("tab", name="Agreement").click()
    expect(page.locator("#agr-summary")).to_contain_text(f"Cohen's kappa: {agr.kappa:.3f}")
    expect(page.locator("#agr-summary")).to_contain_text(f"Krippendorff's alpha (nominal): {agr.alpha:.3f}")
    expect(page.locator("#agr-plot .js-plotly-plot")).to_be_visible()
    names, m = labels.confusion(db, "kb", "ann-a", "ann-b")
    expect(page.locator("#agr-confusion")).to_contain_text("ann-a: Chosen is better")
    first = agr.disagreements[0]["row"]
    cell = page.locator("#agr-disagreements [data-testid='cell-0-1']")
    expect(cell).to_contain_text("ann-a: ")
    cell.click()
    expect(page.locator("#cmp-title")).to_contain_text(f"row {first} ")
    expect(page.locator("#cmp-title")).to_contain_text("Disagreements")
    expect(page.locator("#cmp-mine")).to_contain_text("ann-a:")


def test_a_label_given_as_a_persona_records_it(app_server, page):
    from components import personas

    p = personas.personas(app_server.db)[0]
    page.goto(app_server.url + "?tab=compare&dataset=demo-trl-standard&row=3")
    expect(page.locator("#cmp-label-chosen")).to_be_visible(timeout=30_000)
    page.locator("#cmp-annotator input, #cmp-annotator textarea").first.fill("ada")
    page.locator("#cmp-persona input").first.click()
    page.get_by_role("option", name=p.name, exact=True).click()
    expect(page.locator("#cmp-persona-card")).to_contain_text(p.name)
    page.locator("#cmp-label-rejected").click()
    expect(page.locator("#cmp-status")).to_contain_text("Row 3", timeout=30_000)
    options = json.loads(app_server.db.scalar(
        "SELECT options::VARCHAR FROM label_events WHERE annotator = 'ada' AND row = 3"))
    assert (options["persona"], options["persona_version"]) == (p.name, p.version)
