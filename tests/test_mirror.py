"""The Hub mirror's local side: append-only shards that load with datasets, and a full restore."""

from __future__ import annotations

import datasets
import pytest

from components import labels, mirror
from components.store import Database


def _current(db):
    return db.rows("SELECT dataset, row, annotator, label, confidence, note FROM current_labels ORDER BY ALL")


def test_labels_survive_a_restart_from_an_empty_database(demo_db, tmp_path):
    name = "demo-trl-standard"
    for row in range(6):
        labels.add_label(demo_db, name, row, "chosen" if row % 2 else "rejected", "ada", confidence=2, note=f"n{row}")
        labels.add_label(demo_db, name, row, "tie", "bo")
    labels.undo(demo_db, name, "bo")  # bo's label on row 5 is undone
    folder = tmp_path / "mirror"
    first = mirror.dump(demo_db, folder)
    assert first["labels"] == 13
    labels.add_label(demo_db, name, 7, "chosen", "bo")
    assert mirror.dump(demo_db, folder)["labels"] == 1
    assert mirror.dump(demo_db, folder)["labels"] == 0  # nothing new, no empty shard
    shards = sorted(p.name for p in (folder / "labels").iterdir())
    assert shards == ["events-0000000001-0000000013.jsonl", "events-0000000014-0000000014.jsonl"]

    from components.labels import gold, review

    gold.mark_gold(demo_db, name, [(3, "chosen", "known answer")], by="lead")
    review.resolve(demo_db, name, 2, "tie", "rita", "both answers are fine")
    assert mirror.dump(demo_db, folder) | {"labels": 0} == {part: 0 for part in mirror.PARTS} | {"gold": 1, "reviews": 1}
    loaded = datasets.load_dataset("json", data_files=str(folder / "labels" / "*.jsonl"), split="train")
    assert loaded.num_rows == 14 and sorted(loaded["annotator"]) == ["ada"] * 6 + ["bo"] * 8

    fresh = Database(tmp_path / "fresh.duckdb")  # the Space restarted: an empty disk
    try:
        counts = mirror.restore(fresh, folder)
        assert counts["labels"] == 14
        assert _current(fresh) == _current(demo_db)
        assert not any(r[1] == 5 and r[2] == "bo" for r in _current(fresh))  # the undo still undoes
        assert counts["gold"] == 1 and counts["reviews"] == 1
        assert gold.gold_labels(fresh, name) == gold.gold_labels(demo_db, name)
        assert review.reviewed_labels(fresh, name) == review.reviewed_labels(demo_db, name)
        again = mirror.restore(fresh, folder)
        assert again["labels"] == again["gold"] == again["reviews"] == 0  # a second start doubles nothing
    finally:
        fresh.close()


def test_the_mirror_says_in_one_line_when_the_hub_cannot_be_reached(db, tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(mirror.MirrorError, match=r"cannot read the mirror lab/studio-labels: ") as err:
        mirror.start(db, "lab/studio-labels", tmp_path / "mirror", token=None)
    assert "\n" not in str(err.value)


def test_principle_and_persona_edits_survive_a_restart(db, tmp_path):
    from components import personas, revise

    edited = next(p for p in revise.principles(db) if not p.template)
    revise.save_principle(db, {"id": edited.id, "group": edited.group, "title": edited.title,
                               "text": edited.text + " Be brief.", "default": edited.default}, author="ada")
    first = personas.personas(db)[0]
    personas.save_persona(db, {"name": first.name, "attributes": {**dict(first.attributes), "diet": "vegetarian"},
                               "template": first.template}, author="ada")
    folder = tmp_path / "mirror"
    written = mirror.dump(db, folder)
    assert written["principles"] > 0 and written["personas"] > 0

    fresh = Database(tmp_path / "fresh.duckdb")
    try:
        counts = mirror.restore(fresh, folder)
        assert counts["principles"] == written["principles"] and counts["personas"] == written["personas"]
        back = {p.id: p for p in revise.principles(fresh)}
        assert back[edited.id].text.endswith("Be brief.") and back[edited.id].version == edited.version + 1
        assert dict(personas.persona(fresh, first.name).attributes)["diet"] == "vegetarian"
        assert len(revise.principles(fresh)) == len(revise.principles(db))
    finally:
        fresh.close()


def test_a_truncated_shard_skips_its_bad_line_and_restores_the_rest(demo_db, tmp_path):
    name = "demo-trl-standard"
    for row in range(4):
        labels.add_label(demo_db, name, row, "chosen", "ada")
    folder = tmp_path / "mirror"
    mirror.dump(demo_db, folder)
    labels.add_label(demo_db, name, 4, "rejected", "bo")
    labels.add_label(demo_db, name, 5, "rejected", "bo")
    mirror.dump(demo_db, folder)
    first, second = sorted((folder / "labels").iterdir())
    lines = first.read_text().splitlines()
    lines[1] = lines[1][: len(lines[1]) // 2]  # the second event cut off mid-line (an upload cut short)
    first.write_text("\n".join(lines) + "\n[1, 2]\n")  # and a line that is JSON but not an event
    said = []
    fresh = Database(tmp_path / "fresh.duckdb")
    try:
        counts = mirror.restore(fresh, folder, warn=said.append)
        assert counts["labels"] == 5 and counts["skipped"] == 2
        assert sorted(r[:2] for r in fresh.rows("SELECT row, annotator FROM label_events")) == [
            (0, "ada"), (2, "ada"), (3, "ada"), (4, "bo"), (5, "bo")]
        assert len(said) == 2, said
        assert said[0].startswith(f"mirror: skipped labels/{first.name} line 2: not JSON (")
        assert said[1] == f"mirror: skipped labels/{first.name} line 5: not a JSON object"
    finally:
        fresh.close()
