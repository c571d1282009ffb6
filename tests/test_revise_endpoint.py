"""The OpenAI-compatible backend against a real `transformers serve` process serving the tiny model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from helpers import free_port, run_cli, wait_http
from test_revise import DIALOGUES, PAIRS, fast_settings, pairs_db

from components import revise as rv  # noqa: E402


@pytest.fixture(scope="module")
def served(tiny_model):
    """``transformers serve`` on a free loopback port with the tiny model preloaded; stopped after."""
    port = free_port()
    exe = Path(sys.executable).with_name("transformers")
    proc = subprocess.Popen(
        [str(exe), "serve", tiny_model, "--host", "127.0.0.1", "--port", str(port), "--device", "cpu"],
        env=os.environ | {"HF_HUB_OFFLINE": "1"}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/health", timeout=180, proc=proc)
    except Exception:
        proc.kill()
        raise AssertionError("transformers serve did not start:\n" + proc.communicate()[0][-3000:])
    yield f"http://127.0.0.1:{port}/v1", tiny_model
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture
def endpoint(served) -> rv.EndpointBackend:
    url, model = served
    return rv.EndpointBackend(url, model)


def test_endpoint_streams_the_same_text_as_the_local_model(demo_db, endpoint, tiny_model):
    src = rv.conversation(demo_db, DIALOGUES, 0)
    ps = rv.resolve_principles(demo_db, "concise")
    messages = rv.critique_messages(src.prompt, src.final, ps)
    greedy = fast_settings(temperature=0, max_new_tokens=24)
    remote = endpoint.stream(messages, greedy)
    pieces = list(remote)
    assert len(pieces) >= 5  # streamed over HTTP, not one block
    local = rv.local_backend(tiny_model, "cpu").stream(messages, greedy)
    list(local)
    assert remote.result.tokens == 24 and remote.result.finish == "length"
    assert remote.result.prompt_tokens == local.result.prompt_tokens
    assert remote.result.text == local.result.text  # same weights, same tokenizer, same greedy text


def test_endpoint_revision_is_accepted_with_its_provenance(demo_db, endpoint):
    r = rv.revise_one(demo_db, PAIRS, 1, "rejected", "no-fabrication", endpoint, fast_settings())
    assert r["backend"] == "endpoint" and r["endpoint"] == endpoint.endpoint and r["device"] == "remote"
    assert r["tokens"]["critique"] == 12 and r["tokens"]["revision"] == 12 and r["revision"]
    into, row = rv.accept(demo_db, r, reviewed_by="ana")
    meta = demo_db.record(into, row)["metadata"]
    assert meta["backend"] == "endpoint" and meta["endpoint"] == endpoint.endpoint and meta["model"] == endpoint.model


def test_stop_cancels_an_endpoint_stream(endpoint):
    stop = threading.Event()
    s = endpoint.stream([{"role": "user", "content": "Go on and on."}], fast_settings(max_new_tokens=2000), stop)
    n = 0
    for _ in s:
        n += 1
        if n == 5:
            stop.set()
    assert s.result.finish == "stopped" and s.result.tokens < 2000


def test_endpoint_batch_job(demo_db, endpoint):
    rows = rv.select_rows(demo_db, DIALOGUES, "0-2")
    ps = rv.resolve_principles(demo_db, "concise")
    job, _ = rv.start_job(demo_db, DIALOGUES, rows, ps, endpoint, fast_settings(max_new_tokens=6, batch_size=3))
    out = rv.run_job(demo_db, job["id"], endpoint)
    assert out["status"] == "done" and out["pending"] == 3
    assert sorted(r["row"] for r in demo_db.revisions(job_id=job["id"])) == rows


def test_endpoint_errors_are_one_line(demo_db, served):
    url, _ = served
    wrong = rv.EndpointBackend(url, "some-org/other-model")
    with pytest.raises(rv.RevisionError, match="model 'some-org/other-model' not found at"):
        list(wrong.stream([{"role": "user", "content": "hi"}], fast_settings()))
    ep = rv.EndpointBackend(url, served[1])
    src = rv.conversation(demo_db, DIALOGUES, 0)
    with pytest.raises(rv.RevisionError, match="context too long"):
        list(rv.revise_stream(src, rv.resolve_principles(demo_db, "concise"), ep,
                              fast_settings(context_tokens=100, max_new_tokens=40)))


def test_cli_revise_through_the_endpoint(tmp_path, served):
    url, model = served
    db = pairs_db(tmp_path / "cli.duckdb")
    r = run_cli("revise", "pairs", "--rows", "3", "--endpoint", url, "--model", model, "--max-new-tokens", "6",
                "--accept", "--db", db, "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["results"][0]["into_dataset"] == "pairs-revisions" and out["results"][0]["status"] == "accepted"
    bad = run_cli("revise", "pairs", "--rows", "3", "--endpoint", f"http://127.0.0.1:{free_port()}/v1",
                  "--model", model, "--db", db)
    assert bad.returncode == 1 and "unreachable" in bad.stderr and "Traceback" not in bad.stderr
