"""A labeling project for a team: settings with history, the overlap queue and its reservations
(three signed-in annotators labelling concurrently through the API), gold accuracy, reviews, the
export's order of preference, time per label and the settings command."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from components import access, labels
from components.ingest import ingest
from components.labels import LabelError
from components.text import utc_now

from helpers import AppServer, run_cli, write_pairs

PASSWORDS = {"ann1": "ann1-password", "ann2": "ann2-password", "ann3": "ann3-password"}


@pytest.fixture
def pairs(db, tmp_path):
    ingest(db, str(write_pairs(tmp_path / "p.jsonl", 10)), name="p")
    return db


def judged_per_row(db, dataset="p") -> dict[int, int]:
    return dict(db.rows("SELECT row, count(*) FROM current_labels WHERE dataset = ? AND label <> 'skip' "
                        "GROUP BY row", [dataset]))


# -- settings -----------------------------------------------------------------------------------


def test_settings_keep_their_history_and_guidelines_are_versioned(pairs):
    db = pairs
    assert labels.project_settings(db, "p") == {"blind": False, "overlap": None, "guidelines": "",
                                                "guidelines_version": 0, "label_schema": None,
                                                "label_schema_version": 0}
    labels.set_setting(db, "p", "overlap", "2", "lead")
    labels.set_setting(db, "p", "guidelines", "# Prefer facts\nA wrong sum loses.", "lead")
    labels.set_setting(db, "p", "guidelines", "# Prefer facts\nA wrong sum always loses.", "lead")
    now = labels.project_settings(db, "p")
    assert (now["overlap"], now["guidelines_version"]) == (2, 2)
    assert [h["value"] for h in labels.setting_history(db, "p", "guidelines")] == [
        "# Prefer facts\nA wrong sum loses.", "# Prefer facts\nA wrong sum always loses."]
    event = labels.submit(db, "p", 0, "chosen", "ada")
    assert event["guidelines_version"] == 2
    assert json.loads(db.scalar("SELECT options FROM label_events WHERE id = ?", [event["id"]]))[
        "guidelines_version"] == 2
    for bad, message in ((("overlap", "two"), "whole number"), (("overlap", 1000), "from 1 to 100"),
                         (("colour", 1), "unknown setting")):
        with pytest.raises(LabelError, match=message):
            labels.set_setting(db, "p", *bad, "lead")
    labels.set_setting(db, "p", "overlap", 0, "lead")
    assert labels.overlap(db, "p") is None


# -- the overlap queue -------------------------------------------------------------------------


def test_without_overlap_the_queue_is_the_shuffled_order_for_everyone(pairs):
    order = labels.shuffled_rows(pairs, "p")
    assert labels.next_pair(pairs, "p", "ada") == order[0] == labels.next_pair(pairs, "p", "bo")
    assert pairs.scalar("SELECT count(*) FROM reservations") == 0


def test_the_last_open_slot_is_never_handed_to_two_annotators(pairs):
    db = pairs
    labels.set_setting(db, "p", "overlap", 2, "lead")
    first = labels.next_pair(db, "p", "ada")
    assert labels.next_pair(db, "p", "ada") == first  # asking again: the same pair, still held
    assert labels.next_pair(db, "p", "bo") == first  # the pair's second slot: closest to complete
    other = labels.next_pair(db, "p", "cy")
    assert other != first  # both slots of the first pair are held
    labels.submit(db, "p", first, "chosen", "ada")
    with pytest.raises(LabelError, match="already has the 2 annotators it needs"):
        labels.submit(db, "p", first, "tie", "cy")  # bo holds the last slot
    labels.submit(db, "p", first, "rejected", "bo")
    assert judged_per_row(db)[first] == 2
    labels.submit(db, "p", first, "tie", "ada")  # changing one's own label is no extra slot
    assert judged_per_row(db)[first] == 2
    assert labels.next_pair(db, "p", "bo") == other  # cy's pair, its second slot


def test_an_expired_reservation_frees_its_slot(pairs):
    db = pairs
    labels.set_setting(db, "p", "overlap", 1, "lead")
    t0 = utc_now()
    row = labels.next_pair(db, "p", "ada", now=t0, ttl=60)
    assert labels.next_pair(db, "p", "bo", now=t0 + timedelta(seconds=30)) != row
    labels.release(db, "p", "bo")
    assert labels.next_pair(db, "p", "bo", now=t0 + timedelta(seconds=61)) == row  # ada's hold ran out
    with pytest.raises(LabelError, match="already has the 1 annotator it needs"):
        labels.submit(db, "p", row, "chosen", "ada")  # bo holds it now (reservations run on the clock)


def test_skips_leave_the_skippers_queue_but_fill_no_slot(pairs):
    db = pairs
    labels.set_setting(db, "p", "overlap", 1, "lead")
    row = labels.next_pair(db, "p", "ada")
    labels.submit(db, "p", row, "skip", "ada")
    assert labels.next_pair(db, "p", "ada") != row
    assert labels.next_pair(db, "p", "bo") == row


def test_a_model_judges_labels_fill_no_slot(pairs):
    db = pairs
    labels.set_setting(db, "p", "overlap", 1, "lead")
    for row in range(10):  # a judge labelled every pair (as personas.judge records it)
        labels.add_label(db, "p", row, "chosen", "sim-teacher@tiny", options={"persona": "teacher", "simulated": True})
    assert labels.project_progress(db, "p")["complete"] == 0
    row = labels.next_pair(db, "p", "ada")  # people still get every pair
    labels.submit(db, "p", row, "rejected", "ada")
    with pytest.raises(LabelError, match="already has the 1 annotator"):
        labels.submit(db, "p", row, "chosen", "bo")
    assert labels.project_progress(db, "p")["complete"] == 1
    assert judged_per_row(db)[row] == 2  # the judge's label is kept beside the person's


def test_time_per_label_is_recorded_from_the_hand_out(pairs):
    db = pairs
    labels.set_setting(db, "p", "overlap", 2, "lead")
    t0 = utc_now() - timedelta(seconds=12)
    row = labels.next_pair(db, "p", "ada", now=t0)
    event = labels.submit(db, "p", row, "chosen", "ada")
    assert 12 <= event["seconds"] < 12 + 60
    assert labels.submit(db, "p", row, "tie", "ada", seconds=3.5)["seconds"] == 3.5
    assert db.scalar("SELECT count(*) FROM reservations") == 0  # the label gave its slot back


def test_three_signed_in_annotators_with_overlap_two_fill_every_pair_exactly_twice(pairs):
    db = pairs
    for name, password in PASSWORDS.items():
        access.add_user(db, name, "annotator", password)
    labels.set_setting(db, "p", "overlap", 2, "lead")
    server = AppServer(db)
    try:
        def annotate(name: str) -> list[int]:
            client = Client(server.url, auth=(name, PASSWORDS[name]), verbose=False)
            done = []
            while (row := client.predict("p", "somebody-else", api_name="/next_pair")) is not None:
                event = client.predict("p", row, labels.JUDGMENTS[len(done) % 4], "somebody-else", api_name="/label")
                assert event["annotator"] == name and event["seconds"] is not None
                done.append(row)
            return done

        with ThreadPoolExecutor(3) as pool:
            results = dict(zip(PASSWORDS, pool.map(annotate, PASSWORDS)))
        assert judged_per_row(db) == {row: 2 for row in range(10)}  # every pair twice, none a third time
        assert db.scalar("SELECT count(*) FROM label_events") == 20  # no label was refused or repeated
        for name, rows in results.items():
            assert len(rows) == len(set(rows))
            assert labels.labeled_rows(db, "p", name) == {r: labels.JUDGMENTS[i % 4] for i, r in enumerate(rows)}
        assert sum(map(len, results.values())) == 20
        progress = labels.project_progress(db, "p")
        assert (progress["done"], progress["complete"], progress["remaining"]) == (True, 10, 0)
        assert labels.progress_line(progress).startswith("The project is done")
        client = Client(server.url, auth=("ann1", PASSWORDS["ann1"]), verbose=False)
        assert client.predict("p", "", api_name="/next_pair") is None
        with pytest.raises(AppError, match="already has the 2 annotators"):
            client.predict("p", next(r for r in range(10) if r not in results["ann1"]), "tie", "",
                           api_name="/label")
    finally:
        server.close()


def test_progress_counts_pairs_and_estimates_the_time_left(pairs):
    db = pairs
    labels.set_setting(db, "p", "overlap", 2, "lead")
    t0 = utc_now()
    labels.next_pair(db, "p", "cy")  # held: in progress
    for i, (row, who) in enumerate([(0, "ada"), (0, "bo"), (1, "ada")]):
        labels.submit(db, "p", row, "chosen", who)
    db.write(lambda cur: cur.execute("UPDATE label_events SET created_at = ? + to_seconds(id * 10)", [t0]))
    p = labels.project_progress(db, "p")
    held = db.scalar("SELECT row FROM reservations")
    assert (p["complete"], p["in_progress"], p["untouched"]) == (1, 1 + (held not in (0, 1)), 8 - (held not in (0, 1)))
    assert p["remaining"] == 2 * 10 - 3
    assert p["eta_seconds"] == pytest.approx(17 * 20 / 2)  # 3 judgments in 20 s: 10 s each
    assert {a["annotator"]: (a["judgments"], a["holding"]) for a in p["annotators"]} == {
        "ada": (2, 0), "bo": (1, 0), "cy": (0, 1)}


# -- gold, reviews and the export ----------------------------------------------------------------


def _hand_made(db):
    """Pairs 0-4 labelled by three annotators; 0 and 1 are gold; 2 and 3 are split."""
    table = {0: {"ada": "chosen", "bo": "chosen", "cy": "rejected"},
             1: {"ada": "tie", "bo": "rejected", "cy": "rejected"},
             2: {"ada": "chosen", "bo": "rejected"},
             3: {"ada": "chosen", "bo": "rejected", "cy": "rejected"},
             4: {"ada": "chosen", "bo": "chosen"}}
    for row, given in table.items():
        for who, lab in given.items():
            labels.add_label(db, "p", row, lab, who)
    labels.mark_gold(db, "p", [(0, "chosen"), (1, "rejected"), (5, "tie")], "lead")
    labels.mark_gold(db, "p", [(5, None)], "lead")  # unmarked again
    return table


def test_gold_accuracy_on_a_hand_made_table(pairs, tmp_path):
    db = pairs
    _hand_made(db)
    assert labels.gold_labels(db, "p") == {0: "chosen", 1: "rejected"}
    assert labels.gold_accuracy(db, "p") == {
        "ada": {"judged": 2, "correct": 1, "accuracy": 0.5},
        "bo": {"judged": 2, "correct": 2, "accuracy": 1.0},
        "cy": {"judged": 2, "correct": 1, "accuracy": 0.5}}
    figures = {f["annotator"]: f for f in labels.annotator_figures(db, "p")}
    assert (figures["bo"]["gold_accuracy"], figures["bo"]["judgments"]) == (1.0, 5)
    # ada agrees with bo on 0 and 4, with cy never: 2 matching couples of 8
    assert figures["ada"]["agreement"] == pytest.approx(2 / 8)
    # gold answers are not votes: the majority of pair 0 is the annotators' own
    assert labels.majority_labels(db, "p")[0] == "chosen" and labels.majority_labels(db, "p")[1] == "rejected"

    f = tmp_path / "gold.jsonl"
    f.write_text('{"row": 6, "label": "Both bad", "note": "both wrong"}\n{"row": 7, "label": "chosen"}\n')
    assert labels.import_gold(db, "p", f, "lead") == 2
    assert labels.gold_labels(db, "p")[6] == "both_bad"
    bad = tmp_path / "bad.csv"
    bad.write_text("row,label\n8,chosen\n99,tie\n")
    with pytest.raises(LabelError, match="row 99 is not a pair"):
        labels.import_gold(db, "p", bad, "lead")
    assert 8 not in labels.gold_labels(db, "p")  # nothing of a bad file is kept


def test_gold_pairs_stay_open_to_everyone_and_do_not_count_towards_done(pairs):
    db = pairs
    labels.set_setting(db, "p", "overlap", 1, "lead")
    labels.mark_gold(db, "p", [(3, "chosen")], "lead")
    labels.submit(db, "p", 3, "chosen", "ada")
    labels.submit(db, "p", 3, "rejected", "bo")  # a gold pair has no cap
    assert judged_per_row(db)[3] == 2
    for row in range(10):
        if row != 3:
            labels.submit(db, "p", row, "chosen", "ada")
    p = labels.project_progress(db, "p")
    assert (p["done"], p["complete"], p["gold"]) == (True, 9, 1)
    assert labels.next_pair(db, "p", "cy") is None


def test_a_reviewer_resolves_a_disagreement_and_the_export_prefers_review_then_gold_then_majority(pairs, tmp_path):
    db = pairs
    _hand_made(db)
    queue = labels.review_queue(db, "p")
    assert [d["row"] for d in queue] == [0, 1, 2, 3]
    with pytest.raises(LabelError, match="reason"):
        labels.resolve(db, "p", 2, "chosen", "rev", "  ")
    with pytest.raises(LabelError, match="a final label is a judgment"):
        labels.resolve(db, "p", 2, "skip", "rev", "why not")
    labels.resolve(db, "p", 2, "rejected", "rev", "first go")
    labels.resolve(db, "p", 2, "chosen", "rev", "the sum in chosen is right")
    labels.resolve(db, "p", 1, "tie", "rev", "both say the same")
    assert [d["row"] for d in labels.review_queue(db, "p")] == [0, 3, 1, 2]  # unresolved first
    assert labels.reviewed(db, "p")[2]["reason"] == "the sum in chosen is right"
    # a review is not a vote
    assert labels.majority_labels(db, "p")[2] is None
    assert labels.agreement(db, "p").items == 5

    # review (1: tie, 2: chosen), then gold (0: chosen), then the majority (3: rejected, 4: chosen)
    assert labels.decisions(db, "p") == {0: ("chosen", "gold"), 1: ("tie", "review"), 2: ("chosen", "review"),
                                         3: ("rejected", "majority"), 4: ("chosen", "majority")}
    out = tmp_path / "out.jsonl"
    summary = labels.export_pairs(db, "p", out, labeled_only=True, keep_ties=True)
    written = {r["source_row"]: r["human_label"] for r in map(json.loads, out.read_text().splitlines())}
    assert written == {0: "chosen", 1: "tie", 2: "chosen", 3: "rejected", 4: "chosen"}
    assert (summary.reviewed, summary.gold, summary.flipped) == (2, 1, 1)
    assert "2 decided by a reviewer, 1 by their gold answer" in summary.describe()
    assert labels.preference_labels(db, "p", "bo")[2] == "rejected"  # one annotator's labels as they are


def test_the_settings_command(pairs, tmp_path):
    db_path = str(pairs.path)
    pairs.close()
    guide = tmp_path / "guide.md"
    guide.write_text("# Guidelines\nPrefer the right sum.\n")
    done = run_cli("settings", "p", "--overlap", "2", "--guidelines", str(guide), "--blind", "--json",
                   "--db", db_path)
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    assert (got["overlap"], got["blind"], got["guidelines_version"]) == (2, True, 1)
    assert got["guidelines"].startswith("# Guidelines")
    assert got["progress"]["pairs"] == 10
    gold = tmp_path / "gold.csv"
    gold.write_text("row,label\n1,chosen\n")
    done = run_cli("settings", "p", "--no-blind", "--gold", str(gold), "--db", db_path)
    assert done.returncode == 0, done.stderr
    assert "overlap 2" in done.stdout and "blind off" in done.stdout and "1 gold pair" in done.stdout
    for argv, message in ((["--overlap", "x"], "overlap must be"), (["--guidelines", str(tmp_path / "none.md")],
                                                                      "cannot read")):
        done = run_cli("settings", "p", *argv, "--db", db_path)
        assert done.returncode == 1 and message in done.stderr and "Traceback" not in done.stderr
    done = run_cli("settings", "nope", "--db", db_path)
    assert done.returncode == 1 and "no dataset named 'nope'" in done.stderr
