"""A reward model's stored scores, read: the queues they order, the suggestion beside a pair, and the
export's score columns (TRL's RewardTrainer trains on its margin)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

from components import labels
from components.ingest import ingest
from components.labels import LabelError
from components.labels.queues import open_queue, score_rows
from components.triage import next_in_queue
from components.store import Database

from helpers import write_pairs
from components import catalogue

T0 = datetime(2026, 1, 1, 12, 0, 0)

# the hand-made table: model -> {row: margin}; row 7 is scored by neither, row 9 only by rm-a
MARGINS = {
    "rm-a": {0: 2.0, 1: -0.5, 2: -3.0, 3: 0.1, 4: 0.0, 5: -0.1, 6: 1.5, 8: -1.0, 9: 0.7},
    "rm-b": {0: -1.0, 1: -0.2, 2: 1.0, 3: 0.3, 4: 0.5, 5: -0.4, 6: 2.0, 8: 1.0},
}
# labels: row -> the annotators' labels (the majority: 0 chosen, 1 rejected, 2 chosen, 3 rejected,
# 4 rejected, 5 tie, 6 none (a tie at the top), 7 rejected, 8 rejected, 9 chosen)
LABELS = {0: ["chosen", "chosen"], 1: ["rejected"], 2: ["chosen", "chosen", "rejected"], 3: ["rejected"],
          4: ["rejected"], 5: ["tie"], 6: ["chosen", "rejected"], 7: ["rejected"], 8: ["rejected", "skip"],
          9: ["chosen"]}


def write_scores(db: Database, dataset: str, model: str, margins: dict[int, float], revision: str = "r1",
                 version: int | None = None, at: datetime = T0) -> None:
    """Rows of pair_scores as the scoring job writes them (score_chosen - score_rejected = margin)."""
    version = catalogue.dataset(db, dataset).version if version is None else version
    rows = [[dataset, version, row, model, revision, "reward", 1.0 + m, 1.0, m, "job-1", "tester", at]
            for row, m in margins.items()]

    def run(cur):
        cur.executemany("INSERT INTO pair_scores VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)

    db.write(run)


@pytest.fixture
def scored(db, tmp_path) -> Database:
    ingest(db, str(write_pairs(tmp_path / "pairs.jsonl", 10)), name="pairs")
    # an older revision of rm-a and a model that scored only an older version: neither is read
    write_scores(db, "pairs", "rm-a", {r: -m for r, m in MARGINS["rm-a"].items()}, revision="r0",
                 at=T0 - timedelta(days=1))
    write_scores(db, "pairs", "rm-old", {r: -5.0 for r in range(10)}, version=0)
    for model, margins in MARGINS.items():
        write_scores(db, "pairs", model, margins)
    for row, given in LABELS.items():
        for k, label in enumerate(given):
            labels.add_label(db, "pairs", row, label, f"ann{k}")
    return db


def test_each_score_queue_returns_exactly_its_rows_in_order(scored):
    db = scored
    assert score_rows(db, "pairs", "model_flips", "rm-a") == [2, 8, 1, 5]  # margin < 0, most sure first
    assert score_rows(db, "pairs", "model_flips", "rm-b") == [0, 5, 1]
    # majority chosen with margin < 0 (row 2), majority rejected with margin > 0 (row 3); row 4's zero
    # margin takes no side, row 5's tie and row 6's split have no side, row 7 has no score
    assert score_rows(db, "pairs", "model_vs_majority", "rm-a") == [2, 3]
    assert score_rows(db, "pairs", "model_vs_majority", "rm-b") == [0, 8, 4, 3]  # |margin| ties by row
    assert score_rows(db, "pairs", "uncertain", "rm-a") == [4, 3, 5, 1, 9, 8, 6, 0, 2]
    # opposite signs only (row 4: rm-a has no preference), the largest gap first
    assert score_rows(db, "pairs", "models_disagree", "rm-a", "rm-b") == [2, 0, 8]
    assert score_rows(db, "pairs", "models_disagree") == [2, 0, 8]  # the two models that scored it
    assert open_queue(db, "pairs", "uncertain", model="rm-b").rows == [1, 3, 5, 4, 0, 2, 8, 6]


def test_score_queues_explain_what_is_missing(scored, tmp_path):
    db = scored
    for args, message in [
        (("model_flips",), "several models scored pairs: pick one of rm-a, rm-b"),
        (("model_flips", "rm-old"), "'rm-old' has not scored pairs"),
        (("models_disagree", "rm-a", "rm-a"), "pick two different models"),
    ]:
        with pytest.raises(LabelError, match=message):
            score_rows(db, "pairs", *args)
    ingest(db, str(write_pairs(tmp_path / "other.jsonl", 3)), name="other")
    with pytest.raises(LabelError, match="no model has scored other"):
        open_queue(db, "other", "uncertain")
    write_scores(db, "other", "rm-a", {0: 1.0})
    assert open_queue(db, "other", "uncertain").rows == [0]  # the only model is the default
    with pytest.raises(LabelError, match="two models disagreeing needs a second one"):
        open_queue(db, "other", "models_disagree")


def test_next_in_a_score_queue_skips_what_the_annotator_labeled(scored):
    db = scored
    assert next_in_queue(db, "pairs", "newcomer", "model_flips", model="rm-a") == 2
    assert next_in_queue(db, "pairs", "ann0", "model_flips", model="rm-a") is None  # ann0 labeled 2, 8, 1, 5
    assert next_in_queue(db, "pairs", "ann1", "model_flips", model="rm-a") == 1
