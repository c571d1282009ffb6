"""The named /search endpoint over a running server: it sees the same catalogue as the page."""

from __future__ import annotations

import pytest
from gradio_client import Client

from components import search
from components.ingest import ingest
from helpers import AppServer


@pytest.fixture
def late(demo_db, tmp_path):
    """A served app, and ``load(name, pair_json)`` that ingests a dataset while it serves."""
    server = AppServer(demo_db)

    def load(name: str, line: str) -> None:
        path = tmp_path / f"{name}.jsonl"
        path.write_text(line + "\n")
        ingest(demo_db, str(path), name=name)

    yield server, load
    server.close()


def test_the_api_searches_a_dataset_loaded_after_the_server_started(late):
    server, load = late
    load("late", '{"prompt": "Where do puffins nest?", "chosen": "On cliffs.", "rejected": "In trees."}')
    search.build_index(server.db, "late")
    client = Client(server.url, verbose=False)
    error, summary, html, *_ = client.predict("puffins", ["late"], "contents", "words", "any", "", "", "margin", "", "",
                                              "any", api_name="/search")
    assert not error, error
    assert "**1** hit in late" in summary and "puffins" in html.lower()


def test_show_row_reads_a_late_dataset_and_says_when_a_name_is_unknown(late):
    server, load = late
    load("later", '{"prompt": "Name a gull.", "chosen": "The herring gull.", "rejected": "A crow."}')
    client = Client(server.url, verbose=False)
    shown = client.predict("later", 0, api_name="/show_row")
    assert "herring gull" in str(shown)
    missing = client.predict("no-such-name", 0, api_name="/show_row")
    assert "no-such-name" in str(missing[0]) and "herring" not in str(missing)
