"""Sign-in on a shared server: wrong passwords are limited per user name and per address, and a removed
user's session ends at once. Over real HTTP against the served app."""

from __future__ import annotations

import httpx
import pytest
import requests
from gradio_client import Client
from gradio_client.exceptions import AppError

from components import access, signin
from helpers import AppServer

PAIRS = "demo-trl-standard"


@pytest.fixture
def password_app(demo_db):
    access.add_user(demo_db, "ann", "annotator", "annotator-pass")
    access.add_user(demo_db, "adm", "admin", "admin-passwd")
    server = AppServer(demo_db)
    yield server
    server.close()


def login(url: str, name: str, password: str, address: str | None = None) -> requests.Response:
    session = requests.Session()
    headers = {"X-Forwarded-For": address} if address else {}
    r = session.post(url + "login", data={"username": name, "password": password}, headers=headers, timeout=30)
    r.session = session
    return r


def test_ten_wrong_passwords_lock_the_name_even_with_the_right_one(password_app, capsys):
    url = password_app.url
    for _ in range(signin.MAX_FAILURES):
        assert login(url, "ann", "wrong-password").status_code == 400
    locked = login(url, "ann", "annotator-pass")
    assert locked.status_code == 429
    assert "Too many failed sign-ins for this" in locked.json()["detail"] and "min" in locked.json()["detail"]
    assert "sign-in:" in capsys.readouterr().err  # the lock is logged
    # this machine made those attempts, so its address is locked too: nobody signs in from it now
    assert login(url, "adm", "admin-passwd").status_code == 429


def test_the_address_is_limited_across_names_and_the_window_passes():
    """Unit level, the clock passed in: ten names tried from one address lock the address."""
    attempts = signin.Attempts()
    for i in range(signin.MAX_FAILURES):
        attempts.failed(f"user{i}", "203.0.113.7", now=float(i))
    assert attempts.locked("someone-new", "203.0.113.7", now=20.0)[0] == "address 203.0.113.7"
    assert attempts.locked("someone-new", "198.51.100.1", now=20.0) is None
    assert attempts.locked("someone-new", "203.0.113.7", now=signin.WINDOW_S + 10) is None


def test_an_unknown_name_is_checked_as_slowly_as_a_known_one(db):
    check = access.password_check(db)
    access.add_user(db, "ada", "viewer", "correct horse 12")
    assert check("ada", "correct horse 12") and not check("ada", "wrong") and not check("nobody", "x" * 10)
    assert access._DUMMY and access._DUMMY[0].startswith("scrypt$")  # an unknown name spent a real scrypt


def test_a_removed_user_is_signed_out_at_once(password_app):
    db, url = password_app.db, password_app.url
    ok = login(url, "ann", "annotator-pass")
    assert ok.status_code == 200
    session = ok.session
    assert session.get(url + "gradio_api/user", timeout=30).json() == "ann"
    ann = Client(url, auth=("ann", "annotator-pass"), verbose=False)
    assert PAIRS in {d["name"] for d in ann.predict(api_name="/datasets")}

    access.add_user(db, "ann", "viewer", None)  # demoted: the new role applies to the next request
    with pytest.raises(AppError, match="labeling needs the annotator role; you are ann \\(viewer\\)"):
        ann.predict(PAIRS, 0, "chosen", "ann", api_name="/label")

    assert access.remove_user(db, "ann")
    assert session.get(url + "gradio_api/user", timeout=30).json() is None  # the session is over
    assert session.get(url + "gradio_api/login_check", timeout=30).status_code == 401
    with pytest.raises(httpx.HTTPStatusError, match="401 Unauthorized"):  # the API client is signed out too
        ann.predict(api_name="/datasets")
    assert db.scalar("SELECT count(*) FROM label_events WHERE annotator = 'ann'") == 0


def test_stored_roles_apply_to_hugging_face_users(db):
    env = {"SPACE_ID": "lab/studio", "OAUTH_CLIENT_ID": "x", "SPACE_AUTHOR_NAME": "lab"}
    assert access.identify(db, oauth_username="Bo", env=env).role == "viewer"
    access.add_user(db, "bo", "reviewer", None)  # users add bo --no-password --role reviewer
    assert access.identify(db, oauth_username="Bo", env=env).role == "reviewer"
    access.add_user(db, "bo", "viewer", None)
    assert access.identify(db, oauth_username="Bo", env=env).role == "viewer"
    assert access.identify(db, oauth_username="lab", env=env).role == "admin"  # the Space's owner, as before
    assert access.identify(db, username="ghost", mode="password", env={}) is access.SIGNED_OUT
    assert not access.SIGNED_OUT.can("viewer")


def test_uploads_only_from_those_who_load_data_and_under_a_total_cap(password_app, monkeypatch):
    url = password_app.url
    access.add_user(password_app.db, "vic", "viewer", "viewer-pass1")
    files = {"files": ("pairs.jsonl", b'{"prompt": "p", "chosen": "a", "rejected": "b"}\n' * 100)}
    viewer = login(url, "vic", "viewer-pass1").session
    refused = viewer.post(url + "gradio_api/upload", files=files, timeout=30)
    assert refused.status_code == 403 and "needs the admin role; you are vic (viewer)" in refused.json()["detail"]
    annotator = login(url, "ann", "annotator-pass").session
    assert annotator.post(url + "gradio_api/upload", files=files, timeout=30).status_code == 403
    admin = login(url, "adm", "admin-passwd").session
    kept = admin.post(url + "gradio_api/upload", files=files, timeout=30)
    assert kept.status_code == 200, kept.text
    stored = kept.json()[0]
    with open(stored, "rb") as fh:
        assert fh.read() == files["files"][1]  # the admin's upload is kept whole
    # the cap counts every upload kept: past it, even an admin waits until old ones are removed
    monkeypatch.setenv("STUDIO_UPLOAD_CAP_MB", "0.001")
    full = admin.post(url + "gradio_api/upload", files=files, timeout=30)
    assert full.status_code == 507 and "near its cap" in full.json()["detail"]
