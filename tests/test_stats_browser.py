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


@pytest.mark.browser
def test_accuracy_bars_open_their_queue_and_map_points_open_their_rows(app_server, page, tmp_path):
    """With a reward model's scores and embeddings, the accuracy chart and the map are drawn; a click
    on a bar opens the queue of that bin's wrong pairs in Compare, a click on a point its row."""
    import os

    import pyarrow as pa
    from test_semantic import make_tiny_encoder

    from components.scores.store import write_scores
    from components.semantic import embed_dataset

    db = app_server.db
    info = catalogue.dataset(db, DATASET)
    rows = list(range(info.row_count))
    write_scores(db, pa.table({"row": rows, "score_chosen": [-1.0 if r % 3 == 0 else 1.0 for r in rows],
                               "score_rejected": [0.0] * len(rows)}),
                 dataset=DATASET, version=info.version, model="rm-test", revision="r1", kind="reward", job=None,
                 scored_by="tester")
    os.environ["HF_HUB_OFFLINE"] = "1"
    texts = [m["content"] for r in rows for side in ("prompt", "chosen", "rejected")
             for m in (catalogue.record(db, DATASET, r)[side] or [])]
    embed_dataset(db, DATASET, str(make_tiny_encoder(tmp_path / "encoder", texts)), started_by="tester")

    page.goto(app_server.url + f"?tab=stats&dataset={DATASET}")
    page.locator("#stats-plot-map .js-plotly-plot").wait_for(timeout=30_000)
    page.locator("#stats-summary").get_by_text("clusters of near-duplicate prompts").wait_for(timeout=30_000)
    page.wait_for_timeout(500)
    page.locator("#stats-plot-accuracy .js-plotly-plot").wait_for(timeout=30_000)
    assert page.locator("#stats-plot-accuracy .gtitle").text_content().startswith("Reward model rm-test")
    assert "PCA (scikit-learn)" in page.locator("#stats-map-note").inner_text()
    page.screenshot(path=str(db.path.parent / "stats-model-map.png"), full_page=True)

    # the bin with the most pairs: its bar opens the queue of exactly its pairs the model got wrong
    rm = insights.dataset_stats(db, DATASET)["reward_model"]["by_difference"]
    j = max(range(len(rm["pairs"])), key=lambda k: rm["pairs"][k])
    wrong = insights.rows_for(db, DATASET, rm["keys"][j]).rows
    assert 0 < len(wrong) < rm["pairs"][j]
    box = page.evaluate("""(j) => {
        const gd = document.querySelector('#stats-plot-accuracy .js-plotly-plot');
        const bar = gd.querySelectorAll('.barlayer .trace')[0].querySelectorAll('.point')[j];
        bar.scrollIntoView({block: 'center'});  // the mouse clicks inside the viewport only
        const r = bar.getBoundingClientRect();
        return {x: r.left + r.width / 2, y: r.top + r.height / 2};
    }""", j)
    page.mouse.move(box["x"], box["y"])
    page.mouse.click(box["x"], box["y"])
    page.get_by_role("tab", name="Compare", selected=True).wait_for(timeout=15_000)
    title = page.locator("#cmp-title")
    title.get_by_text(f"row {wrong[0]}").wait_for(timeout=15_000)
    assert f"pair 1 of {len(wrong)} in A bar of the statistics" in title.inner_text()

    # back on the map: the most isolated point opens its own row
    page.goto(app_server.url + f"?tab=stats&dataset={DATASET}")
    page.locator("#stats-plot-map .js-plotly-plot .scatterlayer .point").first.wait_for(timeout=30_000)
    page.locator("#stats-summary").get_by_text("clusters of near-duplicate prompts").wait_for(timeout=30_000)
    page.wait_for_timeout(500)
    point = page.evaluate("""() => {
        const gd = document.querySelector('#stats-plot-map .js-plotly-plot');
        gd.scrollIntoView({block: 'center'});
        const pts = [];
        gd.querySelectorAll('.scatterlayer .trace').forEach((t, ti) => t.querySelectorAll('.point').forEach((p, i) => {
            const r = p.getBoundingClientRect();
            pts.push({x: r.left + r.width / 2, y: r.top + r.height / 2, row: gd._fullData[ti].customdata[i]});
        }));
        let best = null, far = -1;
        for (const p of pts) {
            const d = Math.min(...pts.filter((q) => q !== p).map((q) => Math.hypot(p.x - q.x, p.y - q.y)));
            if (d > far) { far = d; best = p; }
        }
        return best;
    }""")
    page.mouse.move(point["x"], point["y"])
    page.mouse.click(point["x"], point["y"])
    page.get_by_role("tab", name="Compare", selected=True).wait_for(timeout=15_000)
    page.locator("#cmp-title").get_by_text(f"row {point['row']}").wait_for(timeout=15_000)
    assert re.search(rf"[?&]row={point['row']}(&|$)", page.url)
