"""A reward model's accuracy by length difference, on a hand-made table of scores and labels (real
DuckDB file, real ingest, scores through the scoring job's own write, labels through the label log)."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from helpers import run_cli

from components import catalogue, insights, labels, triage
from components.ingest import ingest
from components.scores.store import write_scores
from components.views import stats as stats_view

# row: (chosen chars, rejected chars, margin of rm-len or None when unscored, labels)
TABLE = {
    0: (100, 10, 1.0, ["chosen", "chosen"]),           # longer by 50–199 (bin 7); majority chosen, model right
    1: (100, 20, -0.5, ["chosen"]),                     # bin 7; wrong against both
    2: (100, 30, 0.0, ["rejected"]),                    # bin 7; a margin of 0 is not a win: wrong against both
    3: (100, 40, -2.0, ["rejected", "rejected", "chosen"]),  # bin 7; wrong vs the data, agrees with the majority
    4: (10, 100, 0.5, ["tie"]),                         # shorter by 50–199 (bin 3); a tie majority has no side
    5: (10, 110, -1.0, ["chosen", "rejected"]),         # bin 3; tied votes: no majority
    6: (20, 100, 2.0, []),                              # bin 3; right, unlabeled
    7: (50, 50, 0.3, ["rejected", "skip"]),             # same length (bin 5); majority rejected (a skip is no vote)
    8: (50, 50, -0.3, []),                              # bin 5; wrong vs the data
    9: (3000, 10, 3.0, ["chosen"]),                     # chosen longer by 2000+ (bin 10); right against both
    10: (30, 30, None, ["chosen"]),                     # not scored: in no figure
    11: (10, 3000, -1.0, ["both_bad"]),                 # chosen shorter by 2000+ (bin 0); both bad has no side
}
# the hand count, per bin: (pairs, right, judged, agree, rows wrong vs the data, rows wrong vs the majority)
EXPECTED = {
    0: (1, 0, 0, 0, [11], []),
    3: (3, 2, 0, 0, [5], []),
    5: (2, 1, 1, 0, [8], [7]),
    7: (4, 1, 4, 2, [1, 2, 3], [1, 2]),
    10: (1, 1, 1, 1, [], []),
}


@pytest.fixture
def scored(db, tmp_path):
    src = tmp_path / "acc.jsonl"
    src.write_text("".join(json.dumps({
        "prompt": [{"role": "user", "content": f"question {row}"}],
        "chosen": [{"role": "assistant", "content": "c" * c}],
        "rejected": [{"role": "assistant", "content": "r" * r}]}) + "\n" for row, (c, r, _, _) in TABLE.items()))
    ingest(db, str(src), name="acc")
    version = catalogue.dataset(db, "acc").version
    for model, margin_of in (("rm-len", lambda m: m), ("rm-other", lambda m: 1.0)):
        rows = [row for row, t in TABLE.items() if t[2] is not None]
        results = pa.table({"row": rows, "score_chosen": [margin_of(TABLE[r][2]) for r in rows],
                            "score_rejected": [0.0] * len(rows)})
        write_scores(db, results, dataset="acc", version=version, model=model, revision="r1", kind="reward",
                     job=None, scored_by="tester")
    for row, (_, _, _, given) in TABLE.items():
        for k, label in enumerate(given):
            labels.add_label(db, "acc", row, label, f"ann{k}")
    return db


def test_each_bins_accuracy_equals_a_hand_count_and_its_queue_holds_exactly_its_pairs(scored):
    db = scored
    rm = insights.dataset_stats(db, "acc")["reward_model"]
    assert rm["models"] == ["rm-len", "rm-other"] and rm["model"] == "rm-len"  # the first, as the score queues
    d = rm["by_difference"]
    for i in range(len(d["labels"])):
        pairs, right, judged, agree, wrong, wrong_h = EXPECTED.get(i, (0, 0, 0, 0, [], []))
        assert (d["pairs"][i], d["right"][i], d["judged"][i], d["agree"][i]) == (pairs, right, judged, agree), i
        assert d["accuracy"][i] == (right / pairs if pairs else None)
        assert d["majority_accuracy"][i] == (agree / judged if judged else None)
        # a bar is a labeling queue of exactly the pairs of that bin the model got wrong
        assert triage.open_queue(db, "acc", "bin", d["keys"][i]).rows == wrong, i
        assert triage.open_queue(db, "acc", "bin", d["keys_majority"][i]).rows == wrong_h, i
        found = insights.rows_for(db, "acc", d["keys"][i])
        assert found.rows == wrong and found.total == pairs - right
    assert (rm["pairs"], rm["right"], rm["judged"], rm["agree"]) == (11, 5, 6, 3)
    assert rm["accuracy"] == 5 / 11 and rm["majority_accuracy"] == 3 / 6
    # the picker lists every bin with a wrong pair, with its count
    by_key = {key: label for label, key in stats_view.bar_choices(insights.dataset_stats(db, "acc"))}
    assert by_key[d["keys"][7]] == "rm-len wrong vs the data: longer by 50–199 (3)"
    assert by_key[d["keys_majority"][5]] == "rm-len wrong vs the majority: same length (1)"
    assert d["keys"][4] not in by_key  # no pairs there


def test_another_model_and_unknown_keys(scored):
    db = scored
    rm = insights.dataset_stats(db, "acc", model="rm-other")["reward_model"]
    assert rm["model"] == "rm-other" and rm["accuracy"] == 1.0
    # it prefers chosen everywhere: against the majority it is wrong on the pairs people flipped
    assert rm["by_difference"]["judged"][7] == 4 and rm["by_difference"]["agree"][7] == 2
    assert insights.rows_for(db, "acc", rm["by_difference"]["keys_majority"][7]).rows == [2, 3]
    for key in ('rm:["nobody", 7]', "rm:[\"rm-len\", 99]", "rm:notjson", 'rmh:["rm-len", "7"]'):
        with pytest.raises(insights.StatsError):
            insights.rows_for(db, "acc", key)
    fig = stats_view.figures(insights.dataset_stats(db, "acc"))[stats_view.PLOTS.index("accuracy")]
    assert fig.layout.meta == {"link": "queue", "dataset": "acc"}
    assert [list(t.customdata) for t in fig.data] == [rm_keys(db, "keys"), rm_keys(db, "keys_majority")]


def rm_keys(db, which: str) -> list[str]:
    return insights.dataset_stats(db, "acc")["reward_model"]["by_difference"][which]


def test_the_statistics_command_prints_the_same_figures(scored, tmp_path):
    scored.close()
    path = str(tmp_path / "test.duckdb")
    done = run_cli("stats", "acc", "--db", path)
    assert done.returncode == 0, done.stderr
    assert "Reward model rm-len: scores the chosen side higher in 45.5% of 11 scored pairs; agrees with the " \
           "people's majority in 50.0% of 6 judged pairs. Other models: rm-other." in done.stdout
    assert "- longer by 50–199: 25.0% of 4 · vs majority 50.0% of 4" in done.stdout
    assert "- shorter by 50–199: 66.7% of 3\n" in done.stdout
    done = run_cli("stats", "acc", "--model", "rm-other", "--json", "--db", path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["reward_model"]["accuracy"] == 1.0
    bad = run_cli("stats", "acc", "--model", "nope", "--db", path)
    assert bad.returncode == 1 and "'nope' has not scored acc; scored by: rm-len, rm-other" in bad.stderr
