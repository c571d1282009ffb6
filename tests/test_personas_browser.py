"""Personas in Chromium: one row revised for two personas in the Revise tab, both accepted; the card shows."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from components import personas as pz
from components import catalogue

DIALOGUES = "demo-sdsd-dialogues"

pytestmark = pytest.mark.browser


def pick_persona(page, name: str) -> None:
    page.locator("#revise-persona input").click()
    page.get_by_role("option", name=name, exact=True).click()
    expect(page.locator("#revise-persona-card")).to_contain_text(name)


def test_one_row_revised_for_two_personas_and_both_accepted(page, app_server, tiny_model):
    db = app_server.db
    page.goto(f"{app_server.url}?tab=revise&dataset={DIALOGUES}&row=2")
    expect(page.locator("#revise-about")).to_contain_text("row 2", timeout=30_000)
    page.locator("#revise-model textarea, #revise-model input").first.fill(tiny_model)
    box = page.locator("#revise-max-new input[type=number]").first
    box.fill("8")
    box.press("Enter")
    page.locator("#revise-who textarea, #revise-who input").first.fill("tester")
    status, accepted = page.locator("#revise-status"), page.locator("#revise-accepted")
    for row, name in enumerate(("harm-reduction-worker", "libertarian-investor")):
        pick_persona(page, name)
        page.click("#revise-go")
        expect(status).to_contain_text(f"Written for persona {name}", timeout=90_000)
        page.click("#revise-accept")
        expect(accepted).to_contain_text(f"Accepted for persona {name} as row {row}", timeout=30_000)
    card = page.locator("#revise-persona-card")
    expect(card.locator("dt", has_text="values")).to_be_visible()
    recs = [catalogue.record(db, f"{DIALOGUES}-revisions", i) for i in (0, 1)]
    for rec, name in zip(recs, ("harm-reduction-worker", "libertarian-investor")):
        persona = pz.resolve(db, name)
        assert rec["prompt"][0] == {"role": "system", "content": persona.system_message}
        m = rec["metadata"]
        assert (m["persona"], m["persona_version"], m["source_row"], m["accepted_by"]) == (name, 1, 2, "tester")
    assert recs[0]["prompt"][1:] == recs[1]["prompt"][1:]  # the same conversation, two people
    assert catalogue.dataset(db, f"{DIALOGUES}-revisions").row_count == 2
