"""Which models people may run: the model list, the server-side rule (annotators run listed models,
only admins name a Hub id or an endpoint URL), checked on a served app with signed-in users -- through
the page and by sending requests straight to the handlers -- and the CLI, which takes any model."""

from __future__ import annotations

import json
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from playwright.sync_api import expect

from helpers import AppServer, free_port, run_cli, sign_in

from components import access, revise as rv  # noqa: E402
from components.revise.backends import zerogpu  # noqa: E402
from components.store import Database  # noqa: E402
from components.views import revise_form as form  # noqa: E402

PASSWORD = {"ann": "annotator-pass", "vic": "viewer-pass1", "adm": "admin-passwd"}
ANN = access.Identity("ann", "annotator", "password")
ADM = access.Identity("adm", "admin", "password")
DIALOGUES = "demo-sdsd-dialogues"


# -- the list ---------------------------------------------------------------------------------------


def test_the_model_list_keeps_who_added_and_removed_what(db, tiny_model, monkeypatch):
    monkeypatch.setenv("STUDIO_MODELS", f"local:{tiny_model}, endpoint:http://gpu-box:8000/v1|qwen, http://no-model")
    monkeypatch.setenv("STUDIO_REVISE_MODEL", "Qwen/Qwen2.5-0.5B-Instruct")
    listed = rv.models(db)  # seeded from the settings; the malformed entry is skipped
    assert [(m.kind, m.model, m.endpoint, m.origin) for m in listed] == [
        ("local", tiny_model, None, "settings"), ("endpoint", "qwen", "http://gpu-box:8000/v1", "settings"),
        ("local", "Qwen/Qwen2.5-0.5B-Instruct", None, "settings")]
    assert rv.default_model(db).model == "Qwen/Qwen2.5-0.5B-Instruct"
    assert rv.get_model(db, listed[1].id) == listed[1] == rv.get_model(db, "endpoint:http://gpu-box:8000/v1|qwen")

    removed = rv.remove_model(db, listed[2].id, author="adm")
    assert removed.model == "Qwen/Qwen2.5-0.5B-Instruct" and rv.get_model(db, removed.id) is None
    assert rv.default_model(db).model == tiny_model  # the first listed, once the default is gone
    with pytest.raises(rv.RevisionError, match="no model"):
        rv.remove_model(db, removed.id)
    entry, new = rv.add_model(db, "endpoint", "llama", "https://api.example.org/v1/", author="adm")
    assert new and entry.endpoint == "https://api.example.org/v1" and entry.updated_by == "adm"
    assert rv.add_model(db, "endpoint", "llama", "https://api.example.org/v1", author="x") == (entry, False)
    for kind, model, endpoint, why in (("local", "../../etc", None, "not a transformers model folder"),
                                       ("local", "a b", None, "neither a model folder"),
                                       ("endpoint", "m", "file:///etc/passwd", "must start with http"),
                                       ("endpoint", "m|x", "http://h", "cannot hold")):
        with pytest.raises(rv.RevisionError, match=why):
            rv.add_model(db, kind, model, endpoint)

    history = [(h["action"], h["model"], h["author"]) for h in rv.model_history(db)]
    assert sorted(history) == sorted([("add", tiny_model, "settings"), ("add", "qwen", "settings"),
                                      ("add", "Qwen/Qwen2.5-0.5B-Instruct", "settings"),
                                      ("remove", "Qwen/Qwen2.5-0.5B-Instruct", "adm"), ("add", "llama", "adm")])
    path = db.path
    db.close()
    again = Database(path)  # the settings are read again on the next start: a removed entry stays removed
    try:
        assert [m.model for m in rv.models(again)] == [tiny_model, "qwen", "llama"]
    finally:
        again.close()


def test_the_server_decides_which_model_runs(demo_db, tiny_model):
    entry, _ = rv.add_model(demo_db, "local", tiny_model, author="adm")
    assert rv.choose(demo_db, ANN, entry.id).model == tiny_model  # a listed pick
    assert rv.choose(demo_db, ANN, None, "local", tiny_model).model == tiny_model  # typed, but listed
    for kind, model, endpoint in (("local", "someorg/unlisted-model", ""), ("endpoint", "m", "http://127.0.0.1:9/v1")):
        with pytest.raises(rv.RevisionError, match="needs the admin role; you are ann"):
            rv.choose(demo_db, ANN, entry.id, kind, model, endpoint)
    assert not any("unlisted" in d for d in rv.loaded_models())
    with pytest.raises(rv.RevisionError, match="not in the list"):
        rv.choose(demo_db, ANN, "gone-123456")
    with pytest.raises(rv.RevisionError, match="pick a model from the list$"):
        rv.choose(demo_db, ANN, None)
    typed = rv.choose(demo_db, ADM, None, "endpoint", "m", "http://127.0.0.1:9/v1")  # built, not called
    assert (typed.kind, typed.endpoint) == ("endpoint", "http://127.0.0.1:9/v1")
    with pytest.raises(rv.RevisionError, match="needs the admin role"):  # a stored job's model is checked too
        rv.check_listed(demo_db, ANN, {"kind": "endpoint", "model": "m", "endpoint": "http://127.0.0.1:9/v1"})
    rv.check_listed(demo_db, ANN, {"kind": "local", "model": tiny_model, "endpoint": None})
    assert form.ModelChoice(pick=entry.id).needs_loading(demo_db) is (
        not any(d.startswith(tiny_model + " ·") for d in rv.loaded_models()))


# -- a served app with signed-in users ----------------------------------------------------------------


class Session:
    """A signed-in person's page, in raw HTTP: it can send any handler of the page any values, hidden or
    not. Opening it runs the page's load events, as a browser does."""

    def __init__(self, server: AppServer, user: str):
        self.http = httpx.Client(base_url=server.url, timeout=180)
        said = self.http.post("login", data={"username": user, "password": PASSWORD[user]})
        assert said.status_code == 200, said.text
        self.config = self.http.get("config").json()
        self.session = uuid.uuid4().hex[:12]
        for index, dep in enumerate(self.config["dependencies"]):
            if any(t[1] == "load" for t in dep["targets"]):
                assert self._run(index, self._inputs(dep, {}))[0]

    def call(self, api_name: str, values: dict) -> tuple[bool, list | str]:
        """Run handler ``api_name`` with ``values`` by elem_id (others as the page shows them):
        (whether it succeeded, its last output or the error)."""
        deps = [(i, d) for i, d in enumerate(self.config["dependencies"]) if d.get("api_name") == api_name]
        assert len(deps) == 1, api_name
        index, dep = deps[0]
        return self._run(index, self._inputs(dep, values))

    def _inputs(self, dep: dict, values: dict) -> list:
        props = {c["id"]: c.get("props", {}) for c in self.config["components"]}
        return [values[p.get("elem_id")] if p.get("elem_id") in values else p.get("value")
                for p in map(props.get, dep["inputs"])]

    def _run(self, index: int, data: list) -> tuple[bool, list | str]:
        joined = self.http.post("gradio_api/queue/join", json={"data": data, "fn_index": index, "trigger_id": None,
                                                               "session_hash": self.session, "event_data": None})
        assert joined.status_code == 200, joined.text
        event = joined.json()["event_id"]
        with self.http.stream("GET", "gradio_api/queue/data", params={"session_hash": self.session}) as events:
            for line in events.iter_lines():
                msg = json.loads(line[5:]) if line.startswith("data:") else {}
                if msg.get("msg") == "process_completed" and msg.get("event_id") == event:
                    if not msg.get("success"):
                        return False, msg["output"].get("error") or ""
                    return True, msg["output"].get("data")
        raise AssertionError(f"handler {index} never completed")


class Listener:
    """An HTTP server that only counts the requests it gets (a URL someone might make the app call)."""

    def __init__(self):
        hits = self.hits = []

        class Count(BaseHTTPRequestHandler):
            def do_GET(self):
                hits.append(self.path)
                self.send_error(404)

            do_POST = do_GET

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Count)
        self.url = f"http://127.0.0.1:{self.server.server_port}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def served(demo_db, tiny_model, monkeypatch):
    monkeypatch.setenv("STUDIO_MODELS", f"local:{tiny_model}")
    for name, role in (("ann", "annotator"), ("vic", "viewer"), ("adm", "admin")):
        access.add_user(demo_db, name, role, PASSWORD[name])
    server = AppServer(demo_db)
    listener = Listener()
    yield server, listener
    listener.close()
    server.close()


RUN = {"revise-dataset": DIALOGUES, "revise-row": 0, "revise-max-new": 8, "revise-temperature": 0}


def test_annotators_run_listed_models_only_whatever_they_send(served, tiny_model):
    server, listener = served
    db = server.db
    listed = rv.models(db)
    assert [m.model for m in listed] == [tiny_model]
    ann = Session(server, "ann")

    ok, out = ann.call("on_run", RUN | {"revise-model-pick": listed[0].id})
    assert ok and out[0].startswith("✅ Done") and f"Model `{tiny_model}`" in out[4], out

    for sent in ({"revise-kind": "local", "revise-model": "someorg/any-hub-model"},
                 {"revise-kind": "endpoint", "revise-model": "m", "revise-endpoint": listener.url}):
        ok, out = ann.call("on_run", RUN | sent)
        assert ok and out[0].startswith("⚠️") and "needs the admin role; you are ann (annotator)" in out[0]
        ok, out = ann.call("on_load_model", sent)
        assert ok and "needs the admin role" in out[0]
        ok, out = ann.call("on_start", RUN | sent | {"revise-batch-rows": "0-1"})
        assert ok and "needs the admin role" in out[0]
    assert listener.hits == [] and not any("any-hub-model" in d for d in rv.loaded_models())
    assert db.scalar("SELECT count(*) FROM revision_jobs") == 0

    for api_name, sent in (("on_add_model", {"revise-kind": "endpoint", "revise-model": "m",
                                             "revise-endpoint": listener.url}),
                           ("on_remove_model", {"revise-model-pick": listed[0].id})):
        ok, error = ann.call(api_name, sent)
        assert not ok and "needs the admin role; you are ann" in error
    assert rv.models(db) == listed

    # a job an admin started with a model off the list is not resumed by an annotator
    job, _ = rv.start_job(db, DIALOGUES, [0], rv.resolve_principles(db, "concise"),
                          rv.EndpointBackend(listener.url, "m"), rv.Settings(max_new_tokens=4))
    ok, out = ann.call("on_resume", {"revise-batch-job": job["id"]})
    assert ok and "needs the admin role" in out[0] and listener.hits == []


def test_viewers_cannot_revise_and_admins_add_models(served, tiny_model):
    server, listener = served
    db = server.db
    pick = rv.models(db)[0].id
    ok, error = Session(server, "vic").call("on_run", RUN | {"revise-model-pick": pick})
    assert not ok and "revising needs the annotator role; you are vic (viewer)" in error
    ok, error = Session(server, "vic").call("on_load_model", {"revise-model-pick": pick})
    assert not ok and "needs the annotator role" in error

    adm = Session(server, "adm")
    ok, out = adm.call("on_add_model", {"revise-kind": "endpoint", "revise-model": "served-name",
                                        "revise-endpoint": listener.url})
    assert ok and out[0].startswith("✅ Added")
    entry = rv.get_model(db, f"endpoint:{listener.url}|served-name")
    assert entry.updated_by == "adm" and entry.origin == "page"
    assert rv.model_history(db)[0] | {"at": None} == {"id": entry.id, "action": "add", "kind": "endpoint",
                                                     "model": "served-name", "endpoint": listener.url,
                                                     "author": "adm", "at": None}
    ok, out = Session(server, "ann").call("on_load_model", {"revise-model-pick": entry.id})
    assert ok and "Endpoint" in out[0] and "served-name" in out[0]  # now anyone who revises may pick it
    ok, out = adm.call("on_remove_model", {"revise-model-pick": entry.id})
    assert ok and out[0].startswith("Removed") and rv.get_model(db, entry.id) is None


def _sign_in(page, url, user):
    sign_in(page, url + "?tab=revise", user, PASSWORD[user], "#revise-model-pick")


@pytest.mark.browser
def test_the_page_offers_the_list_and_only_admins_type_a_model(served, browser, tiny_model):
    server, listener = served
    ann = browser.new_page()
    _sign_in(ann, server.url, "ann")
    expect(ann.locator("#revise-model-pick input")).to_have_value(f"{tiny_model} · local", timeout=30_000)
    expect(ann.locator("#revise-model")).to_be_hidden()
    expect(ann.locator("#revise-model-add")).to_be_hidden()
    ann.locator("#revise-model-pick").scroll_into_view_if_needed()
    ann.screenshot(path=str(server.db.path.parent / "annotator.png"))
    ann.locator("#revise-model-pick input").click()
    assert [t.split("\n")[-1] for t in ann.get_by_role("option").all_inner_texts()] == [f"{tiny_model} · local"]
    ann.keyboard.press("Escape")
    ann.goto(f"{server.url}?tab=revise&dataset={DIALOGUES}&row=0")
    expect(ann.locator("#revise-about")).to_contain_text("row 0", timeout=30_000)
    box = ann.locator("#revise-max-new input[type=number]").first
    box.fill("8")
    box.press("Enter")
    ann.click("#revise-go")
    expect(ann.locator("#revise-status")).to_contain_text("Done", timeout=90_000)
    expect(ann.locator("#revise-device")).to_contain_text(tiny_model)

    adm = browser.new_page()
    _sign_in(adm, server.url, "adm")
    expect(adm.locator("#revise-model-admin")).to_be_visible(timeout=30_000)
    adm.get_by_text("endpoint", exact=True).click()
    adm.locator("#revise-model textarea, #revise-model input").first.fill("served-name")
    adm.locator("#revise-endpoint textarea, #revise-endpoint input").first.fill(listener.url)
    adm.click("#revise-model-add")
    expect(adm.locator("#revise-models-note")).to_contain_text("Added", timeout=30_000)
    expect(adm.locator("#revise-model-pick input")).to_have_value("served-name · endpoint 127.0.0.1:"
                                                                   f"{listener.server.server_port}")
    assert rv.get_model(server.db, f"endpoint:{listener.url}|served-name").updated_by == "adm"
    adm.screenshot(path=str(server.db.path.parent / "admin.png"))
    assert listener.hits == []  # listing a model calls nothing


# -- the CLI is the machine's owner ---------------------------------------------------------------------


def test_the_cli_lists_models_and_still_runs_any_model(demo_db, tiny_model):
    path = str(demo_db.path)
    demo_db.close()
    added = json.loads(run_cli("models", "add", "endpoint:http://127.0.0.1:9/v1|m", "--json", "--db", path).stdout)
    assert added["added"] and added["updated_by"] == "cli"
    bad = run_cli("models", "add", "http://127.0.0.1:9/v1", "--db", path)
    assert bad.returncode == 1 and "endpoint:URL|MODEL" in bad.stderr and "Traceback" not in bad.stderr
    assert [m["spec"] for m in json.loads(run_cli("models", "list", "--json", "--db", path).stdout)] == [
        "endpoint:http://127.0.0.1:9/v1|m"]
    assert run_cli("models", "remove", added["id"], "--db", path).returncode == 0
    assert json.loads(run_cli("models", "list", "--json", "--db", path).stdout) == []
    done = run_cli("revise", DIALOGUES, "--model", tiny_model, "--rows", "0", "--max-new-tokens", "4", "--json",
                   "--db", path)  # not in the list: the CLI is trusted
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["results"][0]["status"] == "pending"


# -- ZeroGPU ----------------------------------------------------------------------------------------------


def test_spaces_is_not_imported_off_a_zero_gpu_space():
    assert not zerogpu.on_zero_gpu() and "spaces" not in sys.modules
    assert not hasattr(zerogpu.generate_ids, "zerogpu")


def test_the_zero_gpu_path_gives_the_same_text(tiny_model, monkeypatch):
    """What crosses to a ZeroGPU task is plain values; run here, it gives what the in-process path gives."""
    backend = rv.local_backend(tiny_model, "cpu")
    settings = rv.Settings(max_new_tokens=12, temperature=0.0)
    batch = [[{"role": "user", "content": "Say something kind."}], [{"role": "user", "content": "Hi"}]]

    def both():
        s = backend.stream(batch[0], settings)
        text = "".join(s)
        return text, s.result.tokens, [g.text for g in backend.generate_batch(batch, settings)]

    here = both()
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    assert zerogpu.on_zero_gpu()
    assert both() == here and here[1] > 0
