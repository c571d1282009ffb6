"""Shared fixtures: real databases, the real app on a free port, and Chromium for browser tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import helpers
from helpers import CHROMIUM, CHROMIUM_ARGS, ROOT, AppServer, free_port, make_tiny_chat_model, wait_http

from components.ingest import load_demo  # noqa: E402
from components.store import Database  # noqa: E402


@pytest.fixture(autouse=True)
def _current_test(request):
    helpers.CURRENT_TEST = request.node
    yield
    helpers.CURRENT_TEST = None


@pytest.fixture
def db(tmp_path) -> Database:
    d = Database(tmp_path / "test.duckdb")
    yield d
    d.close()


@pytest.fixture
def demo_db(db) -> Database:
    load_demo(db)
    return db


@pytest.fixture
def app_server(demo_db) -> AppServer:
    server = AppServer(demo_db)
    yield server
    server.close()


@pytest.fixture
def app_process(tmp_path):
    """Start ``python app.py serve`` as a user would; yields (url, proc, db path)."""
    procs = []

    def start(*extra: str, db_path: Path | None = None):
        db_path = db_path or tmp_path / "studio.duckdb"
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "app.py"), "serve", "--db", str(db_path), "--port", str(port), *extra],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        procs.append(proc)
        url = f"http://127.0.0.1:{port}/"
        wait_http(url, proc=proc)
        return url, proc, db_path

    yield start
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    if not Path(CHROMIUM).exists():
        message = "Chromium is not installed (apt-get install -y chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": {"width": 1400, "height": 1000}}


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> str:
    """A tiny chat model's folder (Qwen2, random weights), built once per test session."""
    path = tmp_path_factory.getbasetemp() / "tiny-chat-model"
    if not (path / "config.json").exists():
        make_tiny_chat_model(path, ROOT)
    return str(path)

