"""Shared fixtures: real databases, the real app on a free port, and Chromium for browser tests."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SHARED = ROOT.parent / "shared" / "data"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]

from components.ingest import load_demo  # noqa: E402
from components.store import Database  # noqa: E402


def shared_file(*parts: str) -> Path:
    """A file of ../shared/data: missing fails the test under CI, and skips it elsewhere."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        message = f"{path} is missing (the shared test data sits beside the checkout in CI)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 60.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


@pytest.fixture
def db(tmp_path) -> Database:
    d = Database(tmp_path / "test.duckdb")
    yield d
    d.close()


@pytest.fixture
def demo_db(db) -> Database:
    load_demo(db)
    return db


class AppServer:
    """The real app, served in this process on a free port over a database the test can read."""

    def __init__(self, db: Database):
        from components import ui

        self.db = db
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.demo = ui.build_app(db)
        self.demo.queue(default_concurrency_limit=16)
        self.demo.launch(server_name="127.0.0.1", server_port=self.port, prevent_thread_lock=True,
                         quiet=True, **ui.launch_kwargs())
        wait_http(self.url)

    def close(self) -> None:
        self.demo.close()


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


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``python app.py ARGS`` and return the finished process (text output)."""
    return subprocess.run([sys.executable, str(ROOT / "app.py"), *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> str:
    """A tiny chat model's folder (Qwen2, random weights), built once per test session."""
    from chat_model import make_tiny_chat_model

    path = tmp_path_factory.getbasetemp() / "tiny-chat-model"
    if not (path / "config.json").exists():
        make_tiny_chat_model(path, ROOT)
    return str(path)

