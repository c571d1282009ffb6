"""N rated responses into pairs (the UltraFeedback / Tulu recipes) and agreement on graded scales."""

from __future__ import annotations

import json
import random

import krippendorff
import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from components.labels import binarize as bz
from components.labels import ordinal
from components import catalogue

# Four rated responses per prompt, in UltraFeedback's raw shape; ties and a missing rating included.
ROWS = [
    {"instruction": "p0", "completions": [{"response": f"r0-{i}", "overall_score": s} for i, s in enumerate([7, 3, 9, 3])]},
    {"instruction": "p1", "completions": [{"response": f"r1-{i}", "overall_score": 5} for i in range(4)]},  # all tied
    {"instruction": "p2", "completions": [{"response": f"r2-{i}", "overall_score": s} for i, s in enumerate([8, 8, 2, 1])]},
    {"instruction": "p3", "completions": [{"response": "r3-0", "overall_score": 6}, {"response": "r3-1"},
                                          {"response": "r3-2", "overall_score": 4}, {"response": "r3-3", "overall_score": 4}]},
]
# Counted by hand: best-worst and best-random make one pair per prompt that is not all tied (3);
# all-pairs makes every pair of different ratings: 5 (p0: 6 less the 3/3 tie) + 0 + 5 (p2: 6 less
# the 8/8 tie) + 2 (p3: the unrated one makes none, 4/4 is a tie).
EXPECTED = {"best-worst": 3, "best-random": 3, "all-pairs": 12}


@pytest.fixture
def rated_file(tmp_path):
    path = tmp_path / "rated.jsonl"
    lines = [json.dumps(r) for r in ROWS] + ["{not json", json.dumps({"question": "no responses"})]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("recipe", bz.RECIPES)
def test_each_recipe_makes_the_pairs_counted_by_hand(rated_file, tmp_path, recipe):
    out = tmp_path / f"{recipe}.jsonl"
    summary = bz.binarize_file(str(rated_file), str(out), recipe, seed=3)
    pairs = [json.loads(line) for line in out.read_text().splitlines()]
    assert summary["pairs"] == len(pairs) == EXPECTED[recipe]
    assert summary["prompts"] == 4 and summary["rejected"] == 2  # the bad lines are counted, not dropped
    reasons = summary["rejected_reasons"]
    assert reasons.pop("not JSON") == 1 and list(reasons.values()) == [1] and "found keys ['question']" in next(iter(reasons))
    for p in pairs:
        assert p["margin"] > 0 and p["recipe"] == recipe and p["seed"] == 3
        assert p["chosen"] != p["rejected"]
    assert not any(p["prompt"] == "p1" for p in pairs)  # ties make no pair
    assert not any("r3-1" in (p["chosen"], p["rejected"]) for p in pairs)  # nor does an unrated response


def test_best_worst_takes_the_extremes_and_its_margin():
    pairs = bz.binarize_rows([bz.responses_of(r) for r in ROWS], "best-worst")
    assert [(p["prompt"], p["chosen"], p["rejected"], p["margin"]) for p in pairs] == [
        ("p0", "r0-2", "r0-1", 6.0), ("p2", "r2-0", "r2-3", 7.0), ("p3", "r3-0", "r3-2", 2.0)]


def test_best_random_is_reproducible_from_its_seed_and_never_pairs_a_tie():
    rows = [bz.responses_of(r) for r in ROWS]
    a = bz.binarize_rows(rows, "best-random", seed=11)
    assert a == bz.binarize_rows(rows, "best-random", seed=11)
    draws = {bz.binarize([8, 8, 2, 1], "best-random", random.Random(s))[0].rejected for s in range(50)}
    assert draws == {2, 3}  # the other 8 is a tie with the best, never its rejected side


def test_a_ranking_is_a_label_that_binarizes():
    scores = bz.scores_from_ranking([3, 0, 2, 1], 4)
    assert [(p.chosen, p.rejected) for p in bz.binarize(scores, "best-worst")] == [(3, 1)]
    assert len(bz.binarize(scores, "all-pairs")) == 6
    with pytest.raises(bz.BinarizeError, match="at most once"):
        bz.scores_from_ranking([0, 0], 2)


def test_an_unknown_recipe_is_one_clear_error(rated_file, tmp_path):
    with pytest.raises(bz.BinarizeError, match="use one of best-worst, best-random, all-pairs"):
        bz.binarize_file(str(rated_file), str(tmp_path / "x.jsonl"), "median")
    assert not (tmp_path / "x.jsonl").exists()


# -- graded labels ------------------------------------------------------------------------------

GRADES = {  # {pair: {annotator: grade on the 7-point scale}}, missing values included
    0: {"ada": -3, "bo": -2, "cy": -3}, 1: {"ada": 0, "bo": 1}, 2: {"ada": 2, "bo": 3, "cy": 2},
    3: {"ada": -1, "cy": 1}, 4: {"bo": 3}, 5: {"ada": 3, "bo": 3, "cy": 2}, 6: {"ada": -2, "bo": -3},
}


def test_ordinal_alpha_is_krippendorffs_at_the_ordinal_level():
    names = ["ada", "bo", "cy"]
    items = [i for i in sorted(GRADES) if len(GRADES[i]) >= 2]
    matrix = np.array([[GRADES[i].get(a, np.nan) for i in items] for a in names], dtype=float)
    expected = krippendorff.alpha(reliability_data=matrix, level_of_measurement="ordinal")
    assert ordinal.ordinal_alpha(GRADES, names) == pytest.approx(expected, abs=1e-12)
    nominal = krippendorff.alpha(reliability_data=matrix, level_of_measurement="nominal")
    assert abs(expected - nominal) > 0.1  # the level matters: near misses count as near


def test_weighted_kappa_is_scikit_learns_and_counts_distance():
    both = [i for i in sorted(GRADES) if "ada" in GRADES[i] and "bo" in GRADES[i]]
    a = [GRADES[i]["ada"] for i in both]
    b = [GRADES[i]["bo"] for i in both]
    labels = list(range(-3, 4))
    for w in ("linear", "quadratic"):
        assert ordinal.weighted_kappa(a, b, 7, w) == pytest.approx(cohen_kappa_score(a, b, labels=labels, weights=w))
    near = ordinal.weighted_kappa([-3, 3, 0], [-2, 2, 0])
    far = ordinal.weighted_kappa([-3, 3, 0], [2, -2, 0])
    assert near > 0.5 > far


def test_grades_are_checked_against_their_scale():
    assert ordinal.check_grade("-2", 5) == -2
    for bad, points in ((3, 5), ("1.5", 7), (True, 7), (None, 5)):
        with pytest.raises(ordinal.OrdinalError, match="whole number"):
            ordinal.check_grade(bad, points)
    with pytest.raises(ordinal.OrdinalError, match="5 or 7"):
        ordinal.check_grade(0, 3)
    assert [ordinal.as_preference(g) for g, _ in ordinal.SCALES[5]] == ["chosen", "chosen", "tie", "rejected", "rejected"]


def test_n_response_sources_load_with_every_response_kept(db, tmp_path):
    """UltraFeedback's raw rows and a prompt with a list of responses: the pair is the best-scored
    against the worst, every response is kept for ranking, and a row of one response is a counted reject."""
    from components.ingest import ingest
    from components.labels.ranking import record_responses

    uf = tmp_path / "uf.jsonl"
    with open(uf, "w") as fh:
        for i, scores in enumerate([[6, 9, 2, 7], [5, 5, 5, 5]]):
            fh.write(json.dumps({"instruction": f"Question {i}", "completions": [
                {"response": f"answer {i}.{j}", "overall_score": s,
                 "annotations": {"helpfulness": {"Rating": str(j + 1), "Rationale": "why"}}}
                for j, s in enumerate(scores)]}) + "\n")
        fh.write(json.dumps({"instruction": "Lonely", "completions": [{"response": "one", "overall_score": 1,
                                                                        "annotations": {}}]}) + "\n")
    summary = ingest(db, str(uf), name="uf")
    assert (summary.format, summary.rows_loaded, summary.rejected) == ("ultrafeedback-raw", 2, {"fewer than two responses": 1})
    assert db.scalar("SELECT reason FROM rejects WHERE dataset = 'uf'") == "fewer than two responses"
    first = catalogue.record(db, "uf", 0)
    assert (first["chosen"][-1]["content"], first["rejected"][-1]["content"]) == ("answer 0.1", "answer 0.2")
    assert (first["score_chosen"], first["score_rejected"]) == (9, 2)
    responses = record_responses(first["metadata"])
    assert [r["score"] for r in responses] == [6, 9, 2, 7] and responses[3]["aspects"] == {"helpfulness": 4.0}
    tied = catalogue.record(db, "uf", 1)  # all tied: the first against the second
    assert (tied["chosen"][-1]["content"], tied["rejected"][-1]["content"]) == ("answer 1.0", "answer 1.1")

    plain = tmp_path / "plain.jsonl"
    plain.write_text(json.dumps({"prompt": "Say hi", "responses": ["hi", "hello", "hey"], "scores": [1, 3, 2]}) + "\n")
    summary = ingest(db, str(plain), name="plain")
    assert (summary.format, summary.rows_loaded) == ("responses", 1)
    rec = catalogue.record(db, "plain", 0)
    assert (rec["chosen"][-1]["content"], rec["rejected"][-1]["content"]) == ("hello", "hi")
    assert [r["content"] for r in record_responses(rec["metadata"])] == ["hi", "hello", "hey"]
