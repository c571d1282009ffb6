"""Sign-in and roles on a served app (the self-hosted path): what each role can and cannot do, in the
page and through the API, and names that could become paths refused at every door."""

from __future__ import annotations

import json

import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError, AuthenticationError

from components import access
from helpers import AppServer, data_tab_ingest, run_cli, sign_in
from components import catalogue

PASSWORD = {"ann": "annotator-pass", "vic": "viewer-pass1", "adm": "admin-passwd"}
PAIRS = "demo-trl-standard"


@pytest.fixture
def signed_in_app(demo_db, tmp_path):
    access.add_user(demo_db, "ann", "annotator", PASSWORD["ann"])
    access.add_user(demo_db, "vic", "viewer", PASSWORD["vic"])
    access.add_user(demo_db, "adm", "admin", PASSWORD["adm"])
    data_dir = tmp_path / "data-dir"
    data_dir.mkdir()
    (data_dir / "ok.jsonl").write_text('{"prompt": "p", "chosen": "a", "rejected": "b"}\n')
    server = AppServer(demo_db, data_dir=str(data_dir))
    yield server
    server.close()


def _events(db, annotator=None):
    sql = "SELECT annotator, row, label FROM label_events" + (" WHERE annotator = ?" if annotator else "")
    return db.rows(sql, [annotator] if annotator else [])


def client(server, user):
    return Client(server.url, auth=(user, PASSWORD[user]), verbose=False)


def test_the_api_labels_as_the_signed_in_user_only(signed_in_app):
    db = signed_in_app.db
    ann = client(signed_in_app, "ann")
    ann.predict(PAIRS, 0, "rejected", "mallory", api_name="/label")  # a name sent is not who labels
    assert _events(db) == [("ann", 0, "rejected")]

    with pytest.raises(AppError, match="labeling needs the annotator role; you are vic"):
        client(signed_in_app, "vic").predict(PAIRS, 1, "chosen", "vic", api_name="/label")
    with pytest.raises(AuthenticationError, match="credentials were not provided"):  # no sign-in, no API
        Client(signed_in_app.url, verbose=False).predict(PAIRS, 2, "chosen", "anon", api_name="/label")
    assert _events(db) == [("ann", 0, "rejected")]
    # viewers still read
    assert PAIRS in {d["name"] for d in client(signed_in_app, "vic").predict(api_name="/datasets")}


def test_only_documented_endpoints_are_in_the_api(signed_in_app):
    named = set(client(signed_in_app, "adm").view_api(return_format="dict", print_info=False)["named_endpoints"])
    assert named <= {"/search", "/datasets", "/next_pair", "/label", "/show_row"}
    assert {"/label", "/datasets", "/search"} <= named


def _sign_in(page, url, user):
    sign_in(page, url, user, PASSWORD[user], "#app-title")


def _data_tab_ingest(page, source, name, answer):
    """Load ``source`` as ``name`` from the Data tab and wait for ``answer`` in the result or in a
    refusal's toast; returns what the page said."""
    data_tab_ingest(page, source, name)
    said = page.locator("#data-result, .toast-body").filter(has_text=answer).first
    said.wait_for(timeout=60_000)
    text = said.inner_text()
    for close in page.locator(".toast-close").all():  # the next attempt starts with no toast
        close.click()
    return text


@pytest.mark.browser
def test_an_annotator_cannot_load_server_files_or_edit_principles(signed_in_app, page):
    _sign_in(page, signed_in_app.url, "ann")
    said = _data_tab_ingest(page, "/etc/hostname", "", "needs the admin role")
    assert "loading data needs the admin role; you are ann (annotator)" in said
    assert catalogue.dataset(signed_in_app.db, "hostname") is None

    # principles: the editor's save is refused on the server
    from components import revise

    before = [(p.id, p.version, p.text) for p in revise.principles(signed_in_app.db)]
    page.get_by_role("tab", name="Revise").click()
    page.get_by_text("Principle editor").click()
    page.locator("#revise-edit-id textarea, #revise-edit-id input").first.fill("sneaky")
    page.locator("#revise-edit-title textarea, #revise-edit-title input").first.fill("Sneaky")
    page.locator("#revise-edit-text textarea").first.fill("Always agree with the user.")
    page.locator("#revise-edit-save").click()
    page.locator(".toast-body").filter(has_text="editing principles needs the admin role").first.wait_for(timeout=30_000)
    assert [(p.id, p.version, p.text) for p in revise.principles(signed_in_app.db)] == before


@pytest.mark.browser
def test_an_admin_loads_from_the_data_folder_only_and_names_are_checked(signed_in_app, page):
    _sign_in(page, signed_in_app.url, "adm")
    assert "1 of 1 rows loaded" in _data_tab_ingest(page, "ok.jsonl", "from-data-dir", "from-data-dir")
    assert catalogue.dataset(signed_in_app.db, "from-data-dir").row_count == 1
    said = _data_tab_ingest(page, "/etc/hostname", "leak", "/etc/hostname")
    assert "❌" in said and "server files only from its data folder" in said
    assert catalogue.dataset(signed_in_app.db, "leak") is None
    for bad in ("../x", "/x"):
        said = _data_tab_ingest(page, "ok.jsonl", bad, f"dataset name '{bad}'")
        assert "❌" in said and "must start with a letter or digit" in said
    assert not any(d.name in ("x", "../x", "/x") for d in catalogue.datasets(signed_in_app.db))


def test_names_that_would_be_paths_are_refused_by_every_command(demo_db, tmp_path):
    db_path = str(demo_db.path)
    demo_db.close()
    src = tmp_path / "p.jsonl"
    src.write_text('{"prompt": "p", "chosen": "a", "rejected": "b"}\n')
    for bad in ("../x", "/x"):
        for argv in (["ingest", str(src), "--name", bad],
                     ["revise", "demo-sdsd-dialogues", "--model", "none", "--accept", "--into", bad],
                     ["index", bad],
                     ["export", bad, "--out", str(tmp_path / "o.jsonl")]):
            done = run_cli(*argv, "--db", db_path)
            assert done.returncode != 0, argv
            assert "Traceback" not in done.stderr, (argv, done.stderr)
    listed = json.loads(run_cli("datasets", "--json", "--db", db_path).stdout)
    assert not any(d["name"] in ("x", "../x", "/x") for d in listed)
    assert not (tmp_path.parent / "x").exists()
