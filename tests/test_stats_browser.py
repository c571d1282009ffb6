"""The Statistics view in real Chromium: its charts render, and a bar leads to exactly its rows."""

from __future__ import annotations

import re

import pytest

from components import insights
from components.views.stats import bar_choices
from components import catalogue

DATASET = "demo-trl-standard"


def _diff_bucket(chosen: str, rejected: str) -> int:
    d = len(chosen) - len(rejected)
    return next(i for i, (_, lo, hi) in enumerate(insights.bins.DIFF_BUCKETS)
                if (lo is None or d >= lo) and (hi is None or d < hi))


@pytest.mark.browser
def test_statistics_render_and_a_bar_opens_exactly_its_rows(app_server, page):
    db = app_server.db
    page.goto(app_server.url + f"?tab=stats&dataset={DATASET}")
    for name in ("lengths", "diff", "longer", "turns"):
        page.locator(f"#stats-plot-{name} .js-plotly-plot").wait_for(timeout=30_000)
    assert page.locator("#stats-plot-diff .gtitle").text_content().startswith("Length bias")
    assert page.locator("#stats-plot-lengths .xtitle").text_content() == "characters"
    assert page.locator("#stats-plot-lengths .ytitle").text_content() == "pairs"
    assert page.locator("#stats-summary").inner_text().count(f"{DATASET} (version 1)") == 1
    # plotly's own toolbar offers the PNG download
    page.locator("#stats-plot-diff .js-plotly-plot").hover()
    assert page.locator("#stats-plot-diff [data-title='Download plot as a PNG']").count() == 1

    # the biggest length-difference bar, picked by its label, lists exactly the rows in that bucket
    s = insights.dataset_stats(db, DATASET)
    d = s["length_bias"]["by_difference"]
    i = max(range(len(d["counts"])), key=lambda k: d["counts"][k])
    label = next(lab for lab, key in bar_choices(s) if key == d["keys"][i])
    expected = []
    for row in range(catalogue.dataset(db, DATASET).row_count):
        rec = catalogue.record(db, DATASET, row)
        if _diff_bucket(rec["chosen"][-1]["content"], rec["rejected"][-1]["content"]) == i:
            expected.append(row)
    assert 0 < len(expected) < 12

    box = page.locator("#stats-bar input")
    box.click()
    box.fill(label[:30])
    page.get_by_role("option", name=label).click()
    links = page.locator("#stats-rows a.stats-row")
    links.first.wait_for(timeout=15_000)
    assert [int(t) for t in links.all_inner_texts()] == expected
    hrefs = [links.nth(k).get_attribute("href") for k in range(links.count())]
    assert hrefs == [f"?dataset={DATASET}&row={row}" for row in expected]
    assert re.search(rf"{len(expected)} rows", page.locator("#stats-rows").inner_text())
    page.screenshot(path=str(app_server.db.path.parent / "stats.png"), full_page=True)
