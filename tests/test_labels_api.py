"""The scripting API on the running server (/label, /next_pair), concurrency, and a server restart."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from components import labels
from components.ingest import ingest
from components.store import Database

from helpers import AppServer, write_pairs


@pytest.fixture
def server(db, tmp_path):
    ingest(db, str(write_pairs(tmp_path / "pairs.jsonl", 40)), name="pairs")
    s = AppServer(db)
    yield s
    s.close()


def test_label_and_next_pair_over_gradio_client(server):
    client = Client(server.url, verbose=False)
    order = labels.shuffled_rows(server.db, "pairs")
    row = client.predict("pairs", "ada", api_name="/next_pair")
    assert row == order[0]
    event = client.predict("pairs", row, "rejected", "ada", api_name="/label")
    assert (event["row"], event["label"], event["annotator"]) == (row, "rejected", "ada")
    assert client.predict("pairs", "ada", api_name="/next_pair") == order[1]
    assert labels.current_label(server.db, "pairs", row, "ada")["label"] == "rejected"
    options = labels.label_log(server.db, "pairs").to_pylist()[-1]["options"]
    assert '"via": "api"' in options

    for bad, message in [
        (("pairs", 999, "chosen", "ada"), "row 999 is not a pair"),
        (("pairs", 0, "meh", "ada"), "unknown label"),
        (("nope", 0, "chosen", "ada"), "no dataset named"),
        (("pairs", 0, "chosen", ""), "annotator name"),
    ]:
        with pytest.raises(AppError, match=message):
            client.predict(*bad, api_name="/label")
    assert labels.label_event_count(server.db) == 1


def test_sixteen_clients_lose_nothing_and_double_nothing(server):
    per_client = 4

    def annotate(k: int) -> list[int]:
        client = Client(server.url, verbose=False)
        done = []
        for _ in range(per_client):
            row = client.predict("pairs", f"client{k:02d}", api_name="/next_pair")
            client.predict("pairs", row, labels.JUDGMENTS[k % 4], f"client{k:02d}", api_name="/label")
            done.append(row)
        return done

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(annotate, range(16)))
    db = server.db
    assert labels.label_event_count(db, "pairs") == 16 * per_client
    assert db.scalar("SELECT count(*) FROM (SELECT DISTINCT row, annotator FROM label_events)") == 16 * per_client
    order = labels.shuffled_rows(db, "pairs")
    for k, rows in enumerate(results):
        assert rows == order[:per_client]  # each walked the shared order without repeats
        assert labels.labeled_rows(db, "pairs", f"client{k:02d}") == {r: labels.JUDGMENTS[k % 4] for r in rows}


def test_labels_survive_a_server_restart(tmp_path):
    path = tmp_path / "restart.duckdb"
    db = Database(path)
    ingest(db, str(write_pairs(tmp_path / "pairs.jsonl", 12)), name="pairs")
    server = AppServer(db)
    client = Client(server.url, verbose=False)
    labeled = []
    for label in ("chosen", "rejected", "tie"):
        row = client.predict("pairs", "ada", api_name="/next_pair")
        client.predict("pairs", row, label, "ada", api_name="/label")
        labeled.append((row, label))
    server.close()
    db.close()

    db = Database(path)
    server = AppServer(db)
    try:
        client = Client(server.url, verbose=False)
        assert labels.labeled_rows(db, "pairs", "ada") == dict(labeled)
        assert client.predict("pairs", "ada", api_name="/next_pair") == labels.shuffled_rows(db, "pairs")[3]
        row = client.predict("pairs", "ada", api_name="/next_pair")
        client.predict("pairs", row, "both_bad", "ada", api_name="/label")
        assert labels.label_event_count(db, "pairs") == 4
        assert [e["id"] for e in labels.label_log(db, "pairs").to_pylist()] == [1, 2, 3, 4]  # ids continue after restart
    finally:
        server.close()
        db.close()
