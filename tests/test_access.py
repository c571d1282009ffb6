"""Identities and roles: users with hashed passwords, Hugging Face sign-in, the users CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from components import access
from helpers import ROOT, run_cli


def test_passwords_are_salted_scrypt_hashes(db):
    access.add_user(db, "ada", "annotator", "correct horse")
    stored = db.scalar("SELECT password_hash FROM users WHERE name = 'ada'")
    assert stored.startswith("scrypt$") and "correct horse" not in stored
    access.add_user(db, "bo", "viewer", "correct horse")
    assert db.scalar("SELECT password_hash FROM users WHERE name = 'bo'") != stored  # a salt each
    check = access.password_check(db)
    assert check("ada", "correct horse")
    assert not check("ada", "correct horsE")
    assert not check("nobody", "correct horse")
    with pytest.raises(ValueError, match="at least 8"):
        access.add_user(db, "cy", "viewer", "short")


def test_look_alike_names_are_refused(db):
    with pytest.raises(ValueError, match="ASCII"):
        access.add_user(db, "\u0430lice", "annotator", "password1")  # Cyrillic a
    assert access.users(db) == []


def test_sign_in_mode_follows_users_and_space(db):
    assert access.sign_in_mode(db, env={}) == "open"
    assert access.identify(db, mode="open") == access.LOCAL
    access.add_user(db, "ada", "annotator", "password1")
    assert access.sign_in_mode(db, env={}) == "password"
    assert access.identify(db, username="ada", mode="password") == access.Identity("ada", "annotator", "password")
    assert access.identify(db, username="mallory", mode="password") is access.SIGNED_OUT  # no such user: nothing at all
    space = {"SPACE_ID": "lab/studio", "OAUTH_CLIENT_ID": "x", "SPACE_AUTHOR_NAME": "lab",
             "STUDIO_ANNOTATORS": "ada", "STUDIO_REVIEWERS": "rev"}
    assert access.sign_in_mode(db, env=space) == "oauth"
    got = {n: access.identify(db, oauth_username=n, env=space, mode="oauth").role for n in ("lab", "ada", "rev", "zed")}
    assert got == {"lab": "admin", "ada": "annotator", "rev": "reviewer", "zed": "viewer"}
    assert access.identify(db, oauth_username=None, env=space, mode="oauth") == access.ANONYMOUS
    explicit = {**space, "STUDIO_ADMINS": "boss"}
    assert access.identify(db, oauth_username="lab", env=explicit, mode="oauth").role == "viewer"
    assert access.identify(db, oauth_username="boss", env=explicit, mode="oauth").role == "admin"


def test_roles_are_ordered():
    viewer = access.Identity("v", "viewer", "password")
    admin = access.Identity("a", "admin", "password")
    with pytest.raises(access.AccessDenied, match="ingest needs the admin role; you are v"):
        access.require(viewer, "admin", "ingest")
    assert access.require(admin, "annotator", "labeling") is admin


def test_users_cli(tmp_path):
    db = str(tmp_path / "s.duckdb")
    added = subprocess.run([sys.executable, str(ROOT / "app.py"), "users", "add", "ada", "--role", "admin",
                            "--password-stdin", "--db", db], input="s3cret-pass\n", capture_output=True, text=True)
    assert added.returncode == 0, added.stderr
    listed = run_cli("users", "list", "--json", "--db", db)
    assert json.loads(listed.stdout) == [{"name": "ada", "role": "admin", "password": True}]
    bad = subprocess.run([sys.executable, str(ROOT / "app.py"), "users", "add", "../x", "--password-stdin",
                          "--db", db], input="s3cret-pass\n", capture_output=True, text=True)
    assert bad.returncode == 1 and "user name" in bad.stderr and "Traceback" not in bad.stderr
    removed = run_cli("users", "remove", "ada", "--db", db)
    assert removed.returncode == 0
    assert json.loads(run_cli("users", "list", "--json", "--db", db).stdout) == []


def test_serving_beyond_this_machine_without_sign_in_needs_a_flag(tmp_path):
    refused = run_cli("serve", "--db", str(tmp_path / "s.duckdb"), "--host", "0.0.0.0", "--port", "1", "--no-demo")
    assert refused.returncode == 1
    assert "--open-to-network" in refused.stderr and "users add" in refused.stderr
