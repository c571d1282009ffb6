"""The OpenAI-compatible backend against a real `transformers serve` process serving the tiny model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from helpers import ROOT, free_port, run_cli, wait_http

from components import revise as rv  # noqa: E402
from components.ingest import ingest  # noqa: E402
from components.store import Database  # noqa: E402
from components import catalogue

DIALOGUES = "demo-sdsd-dialogues"
PAIRS = "demo-assistant-pairs"


def fast_settings(**kw) -> rv.Settings:
    return rv.Settings(**({"max_new_tokens": 12, "temperature": 0.8, "top_p": 0.95, "seed": 1} | kw))


def pairs_db(path: Path) -> str:
    d = Database(path)
    ingest(d, str(ROOT / "data/demo/assistant-pairs.jsonl"), name="pairs")
    d.close()
    return str(path)


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
    meta = catalogue.record(demo_db, into, row)["metadata"]
    assert meta["backend"] == "endpoint" and meta["endpoint"] == endpoint.endpoint and meta["model"] == endpoint.model


def test_endpoint_revision_and_judge_for_a_persona(demo_db, endpoint):
    from components import labels, personas as pz

    teacher = pz.resolve(demo_db, "retired-teacher")
    r = rv.revise_one(demo_db, DIALOGUES, 1, "chosen", "concise", endpoint, fast_settings(max_new_tokens=6),
                      persona=teacher.provenance())
    into, row = rv.accept(demo_db, r)
    rec = catalogue.record(demo_db, into, row)
    assert rec["prompt"][0]["content"] == teacher.system_message and rec["metadata"]["backend"] == "endpoint"
    s = pz.judge_pairs(demo_db, PAIRS, teacher, endpoint, fast_settings(max_new_tokens=6, temperature=0), limit=3)
    assert s.backend == "endpoint" and s.annotator == pz.annotator_name("retired-teacher", endpoint.model)
    assert s.labeled + s.unparseable == 3  # random weights: whatever cannot be read stays unlabeled
    assert len(labels.labeled_rows(demo_db, PAIRS, s.annotator)) == s.labeled


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
    assert sorted(r["row"] for r in rv.revisions(demo_db, job_id=job["id"])) == rows


def test_the_servers_refusal_comes_back_in_one_line(served):
    url, model = served
    wrong = rv.EndpointBackend(url, "some-org/other-model")
    with pytest.raises(rv.RevisionError) as caught:
        list(wrong.stream([{"role": "user", "content": "hi"}], fast_settings()))
    # the server's own words: `transformers serve` is pinned to the model it was started with
    assert str(caught.value) == (f"endpoint {url} refused the request (HTTP 400): Server is pinned to "
                                 f"'{model}'; requested 'some-org/other-model'.")


def test_a_prompt_over_the_context_limit_is_refused_before_sending(demo_db, endpoint):
    src = rv.conversation(demo_db, DIALOGUES, 0)
    with pytest.raises(rv.RevisionError, match="context too long"):
        list(rv.revise_stream(src, rv.resolve_principles(demo_db, "concise"), endpoint,
                              fast_settings(context_tokens=100, max_new_tokens=40)))


# -- what the client sends and how answers map to one line, against a small recording server ----------


@pytest.fixture
def recorder():
    """A loopback HTTP server that records each request's Authorization header and answers with the
    status and body queued in ``answers`` (a short OpenAI-style stream when none is queued)."""
    seen: list[dict] = []
    answers: list[tuple[int, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("content-length") or 0))
            seen.append({"path": self.path, "authorization": self.headers.get("authorization")})
            status, body = answers.pop(0) if answers else (200, None)
            if body is None:
                chunk = {"id": "1", "object": "chat.completion.chunk", "created": 0, "model": "m",
                         "choices": [{"index": 0, "delta": {"content": "ok"}, "finish_reason": "stop"}]}
                body = f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n"
                kind = "text/event-stream"
            else:
                kind = "application/json" if body.startswith("{") else "text/plain"
            data = body.encode()
            self.send_response(status)
            self.send_header("content-type", kind)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/v1", seen, answers
    server.shutdown()
    server.server_close()


def test_only_a_key_the_user_gave_is_sent(recorder, monkeypatch):
    url, seen, _ = recorder
    hi = [{"role": "user", "content": "hi"}]
    monkeypatch.setenv("OPENAI_API_KEY", "placeholder-from-another-library")
    monkeypatch.delenv("STUDIO_ENDPOINT_API_KEY", raising=False)
    assert "".join(rv.EndpointBackend(url, "m").stream(hi, fast_settings())) == "ok"
    monkeypatch.setenv("STUDIO_ENDPOINT_API_KEY", "studio-key")
    list(rv.EndpointBackend(url, "m").stream(hi, fast_settings()))
    list(rv.EndpointBackend(url, "m", api_key="given-key").stream(hi, fast_settings()))
    assert [s["path"] for s in seen] == ["/v1/chat/completions"] * 3
    assert [s["authorization"] for s in seen] == ["Bearer none", "Bearer studio-key", "Bearer given-key"]


def test_answers_of_the_server_become_one_line_each(recorder):
    url, seen, answers = recorder
    hi = [{"role": "user", "content": "hi"}]
    ep = rv.EndpointBackend(url, "m", max_retries=1)
    cases = [
        ([(401, json.dumps({"error": {"message": "Invalid API key"}}))],
         f"endpoint {url} refused the key (HTTP 401): set $STUDIO_ENDPOINT_API_KEY (Invalid API key)"),
        ([(400, json.dumps({"error": {"message": "This model's maximum context length is 2048 tokens"}}))],
         f"endpoint {url} refused the request (HTTP 400): This model's maximum context length is 2048 tokens"),
        ([(404, "Not Found")],
         f"endpoint {url} answered 404 for 'm': is it an OpenAI-compatible API? (Not Found)"),
        ([(500, "CUDA out of memory"), (500, "CUDA out of memory. Tried to allocate 2 GiB")],
         f"endpoint {url} failed (HTTP 500) even after 1 retries: CUDA out of memory. Tried to allocate 2 GiB"),
    ]
    for queued, line in cases:
        answers[:] = queued
        before = len(seen)
        with pytest.raises(rv.RevisionError) as caught:
            list(ep.stream(hi, fast_settings()))
        assert str(caught.value) == line
        assert len(seen) - before == len(queued)  # a 500 is tried again (max_retries), a 4xx is not


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
