"""A dataset's label schema in the database: versioned like the guidelines, graded labels and their
aspects stored with the label they imply, ordinal agreement, rankings of N responses."""

from __future__ import annotations

import json

import krippendorff
import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from components import labels
from components.ingest import ingest
from components.labels import LabelError

from helpers import write_pairs

SCHEMA = {"overall": 7, "aspects": ["helpfulness", "safety"], "reasons": ["wrong facts", "too long"],
          "rationale": "optional"}


@pytest.fixture
def graded(db, tmp_path):
    ingest(db, str(write_pairs(tmp_path / "g.jsonl", 12)), name="g")
    labels.set_setting(db, "g", "label_schema", SCHEMA, "root")
    return db


def test_the_schema_is_a_versioned_setting_and_labels_record_its_version(db, tmp_path):
    ingest(db, str(write_pairs(tmp_path / "g.jsonl", 4)), name="g")
    assert labels.label_schema(db, "g") == labels.BINARY | {"version": 0}
    first = labels.submit(db, "g", 0, "chosen", "ada")
    assert first["schema_version"] == 0 and first["grade"] is None

    labels.set_setting(db, "g", "label_schema", {"overall": "5-point", "aspects": "safety"}, "root")
    labels.set_setting(db, "g", "label_schema", json.dumps(SCHEMA), "root")
    now = labels.label_schema(db, "g")
    assert (now["points"], now["aspects"], now["reasons"], now["version"]) == (
        7, ["helpfulness", "safety"], ["wrong facts", "too long"], 2)
    history = labels.setting_history(db, "g", "label_schema")
    assert [h["value"]["points"] for h in history] == [5, 7] and history[0]["set_by"] == "root"
    assert labels.project_settings(db, "g")["label_schema_version"] == 2

    event = labels.submit(db, "g", 1, None, "ada", grade=-2, aspects={"helpfulness": "A", "safety": "same"})
    stored = labels.current_label(db, "g", 1, "ada")
    assert (stored["label"], stored["grade"], json.loads(stored["aspects"]), stored["schema_version"]) == (
        "chosen", -2, {"helpfulness": "chosen", "safety": "tie"}, 2)
    assert event["schema_version"] == 2

    with pytest.raises(LabelError, match="schema must be"):
        labels.set_setting(db, "g", "label_schema", "[1,", "root")
    with pytest.raises(LabelError, match="binary, 5 or 7"):
        labels.set_setting(db, "g", "label_schema", {"overall": 3}, "root")
    assert labels.label_schema(db, "g")["version"] == 2  # a refused change is not a version


def test_graded_labels_map_to_chosen_rejected_tie_for_majority_and_export(graded, tmp_path):
    db = graded
    for who, grade in (("ada", 3), ("bo", 2), ("cy", -1)):
        labels.submit(db, "g", 0, None, who, grade=grade)
    labels.submit(db, "g", 1, None, "ada", grade=0)
    labels.submit(db, "g", 2, "both_bad", "ada")  # both bad and skip take no grade
    labels.submit(db, "g", 3, "skip", "ada")
    assert labels.majority_labels(db, "g")[0] == "rejected"  # two of three graded B (the rejected side) better
    assert labels.current_label(db, "g", 1, "ada")["label"] == "tie"
    summary = labels.export_pairs(db, "g", tmp_path / "out.jsonl", labeled_only=True)
    assert (summary.flipped, summary.left_out) == (1, {"tie": 1, "both_bad": 1, "skip": 1, "unlabeled": 8})


def test_a_graded_schema_refuses_what_does_not_fit_it(graded):
    db = graded
    with pytest.raises(LabelError, match="7-point scale: give a grade from -3 to 3"):
        labels.submit(db, "g", 0, "chosen", "ada")
    with pytest.raises(LabelError, match="whole number from -3 to 3"):
        labels.submit(db, "g", 0, None, "ada", grade=4)
    with pytest.raises(LabelError, match="unknown aspect 'tone'"):
        labels.submit(db, "g", 0, None, "ada", grade=1, aspects={"tone": "A"})
    with pytest.raises(LabelError, match="unknown reason"):
        labels.submit(db, "g", 0, None, "ada", grade=1, reasons=["rude"])
    labels.set_setting(db, "g", "label_schema", SCHEMA | {"rationale": "required"}, "root")
    with pytest.raises(LabelError, match="asks for a rationale"):
        labels.submit(db, "g", 0, None, "ada", grade=1)
    labels.submit(db, "g", 0, None, "ada", grade=1, reasons="too long", rationale="B is shorter")
    got = labels.current_label(db, "g", 0, "ada")
    assert (got["reasons"], got["rationale"], got["schema_version"]) == (["too long"], "B is shorter", 2)
    assert labels.label_event_count(db, "g") == 1  # nothing refused was written


def test_ordinal_agreement_is_the_libraries_figures(graded):
    db = graded
    ada = [-3, -2, 0, 1, 3, 2, -1, 0]
    bo = [-3, -1, 0, 2, 3, 1, -1, 1]
    cy = {0: -2, 2: 0, 4: 2}
    for row, (a, b) in enumerate(zip(ada, bo)):
        labels.submit(db, "g", row, None, "ada", grade=a)
        labels.submit(db, "g", row, None, "bo", grade=b)
    two = labels.agreement(db, "g", ["ada", "bo"])
    expected_kappa = cohen_kappa_score(ada, bo, labels=list(range(-3, 4)), weights="quadratic")
    assert two.points == 7 and two.graded_items == 8
    assert two.weighted_kappa == pytest.approx(expected_kappa)
    assert two.ordinal_alpha == pytest.approx(krippendorff.alpha(reliability_data=np.array([ada, bo], float),
                                                                 level_of_measurement="ordinal"))

    for row, grade in cy.items():
        labels.submit(db, "g", row, None, "cy", grade=grade)
    three = labels.agreement(db, "g")
    data = np.array([ada, bo, [cy.get(r, np.nan) for r in range(8)]], float)
    assert three.weighted_kappa is None  # kappa is for two annotators
    assert three.ordinal_alpha == pytest.approx(krippendorff.alpha(reliability_data=data,
                                                                   level_of_measurement="ordinal"))
    assert labels.agreement(db, "g").kappa is None and three.alpha is not None  # the nominal figures stay


def test_blind_grades_and_aspects_are_stored_from_the_source_side(graded):
    from components.views.label_state import LabelForm, label_current, new_queue

    db = graded
    labels.set_setting(db, "g", "blind", True, "root")
    state = new_queue(db, "g", annotator="ada")
    row = next(r for r in state["rows"] if labels.swapped("g", r))
    state = new_queue(db, "g", annotator="ada", row=row)
    label_current(db, state, None, "ada", LabelForm(shown_row=row),
                  graded={"grade": -3, "aspects": {"helpfulness": "chosen", "safety": "tie"}})
    got = labels.current_label(db, "g", row, "ada")
    # A (shown left) much better on a swapped pair: the source's rejected side is much better
    assert (got["label"], got["grade"], json.loads(got["aspects"])) == (
        "rejected", 3, {"helpfulness": "rejected", "safety": "tie"})
