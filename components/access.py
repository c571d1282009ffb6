"""Who is calling, and what their role allows.

Three ways to run the app, chosen from what is configured (``sign_in_mode``):

* ``oauth`` -- on a Hugging Face Space with ``hf_oauth: true``: people sign in with their Hugging Face
  account. Admins are named in ``$STUDIO_ADMINS`` (default: the Space's owner), reviewers in
  ``$STUDIO_REVIEWERS``, annotators in ``$STUDIO_ANNOTATORS`` (names, or ``*`` for anyone signed in);
  everyone else, signed in or not, is a viewer. A user stored in the database (``users add NAME
  --no-password --role R``) has the stored role instead, so roles can change without a restart.
* ``password`` -- self-hosted with users in the database (``python app.py users add NAME --role R``):
  Gradio's sign-in page checks the password (scrypt, from the standard library); the role is the user's.
* ``open`` -- no users and not on a Space: the local single-user tool. The one person at the keyboard is
  ``local`` and may do everything; serving it beyond this machine takes an explicit flag.

Roles are ordered: a viewer browses, searches and reads statistics; an annotator also labels and
revises with the configured models; a reviewer also resolves disagreements; an admin also loads and
deletes data, builds indexes, edits principles, adds models and endpoints, exports and pushes.
Every handler asks ``require(identity, role, what)`` on the server: the page hiding a button is a
convenience, not the check.

>>> Identity("ada", "annotator", "password").can("viewer"), Identity("ada", "annotator", "password").can("admin")
(True, False)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
from dataclasses import dataclass

from .store import Database
from .text import utc_now

ROLES = ("viewer", "annotator", "reviewer", "admin")
"""From least to most allowed: each role may do what the ones before it may."""

MODES = ("open", "password", "oauth")

USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,38}")
"""Plain ASCII names, as Hugging Face usernames are: a look-alike letter (a Cyrillic 'а' in 'аlice')
is refused instead of becoming a second person."""

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
MIN_PASSWORD = 8


class AccessDenied(PermissionError):
    """The caller's role does not allow what they asked; the message says what would."""


@dataclass(frozen=True)
class Identity:
    """A caller: their name (None when anonymous), their role and how they were recognized."""

    name: str | None
    role: str
    via: str  # local | password | oauth | anonymous | removed

    def can(self, role: str) -> bool:
        return self.role in ROLES and ROLES.index(self.role) >= ROLES.index(role)

    def describe(self) -> str:
        if self.via == "removed":
            return "signed out (this user no longer exists: sign in again)"
        return f"{self.name} ({self.role})" if self.name else f"not signed in ({self.role})"


LOCAL = Identity("local", "admin", "local")
ANONYMOUS = Identity(None, "viewer", "anonymous")
SIGNED_OUT = Identity(None, "none", "removed")
"""A password-mode session whose user was removed (or never existed): it may do nothing at all."""


def require(who: Identity, role: str, what: str) -> Identity:
    """``who`` if their role allows ``role``'s work, else AccessDenied naming what was refused.

    >>> require(Identity("bo", "viewer", "oauth"), "annotator", "labeling")
    Traceback (most recent call last):
    ...
    components.access.AccessDenied: labeling needs the annotator role; you are bo (viewer)
    """
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    if not who.can(role):
        raise AccessDenied(f"{what} needs the {role} role; you are {who.describe()}")
    return who


def check_username(name: object) -> str:
    """``name`` if it is a valid username, else ValueError with the rule.

    >>> check_username("ada.l")
    'ada.l'
    """
    if not isinstance(name, str) or not USERNAME.fullmatch(name):
        raise ValueError(f"user name {name!r} must be ASCII letters, digits, '.', '_' or '-' "
                         "(at most 39, starting with a letter or digit)")
    return name


def check_role(role: object) -> str:
    if role not in ROLES:
        raise ValueError(f"role {role!r} must be one of {', '.join(ROLES)}")
    return role  # type: ignore[return-value]


# -- passwords ----------------------------------------------------------------------------------------


def hash_password(password: str) -> str:
    """A salted scrypt hash of ``password`` with its parameters, for the users table."""
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"a password needs at least {MIN_PASSWORD} characters")
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P)
    b64 = base64.b64encode
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str | None) -> bool:
    """Whether ``password`` matches a hash made by ``hash_password`` (in constant time).

    >>> verify_password("correct horse", hash_password("correct horse")), verify_password("x", None)
    (True, False)
    """
    if not stored or not isinstance(password, str):
        return False
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        got = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, base64.b64decode(digest))


# -- users (self-hosted) ------------------------------------------------------------------------------


def users(db: Database) -> list[dict]:
    return db.dicts("SELECT name, role, password_hash IS NOT NULL AS has_password, created_at, updated_at "
                    "FROM users ORDER BY name")


def user(db: Database, name: str) -> dict | None:
    rows = db.dicts("SELECT name, role, password_hash FROM users WHERE name = ?", [name])
    return rows[0] if rows else None


def add_user(db: Database, name: str, role: str, password: str | None) -> dict:
    """Create user ``name`` or change their role (and password, when one is given)."""
    check_username(name)
    check_role(role)
    hashed = hash_password(password) if password is not None else None
    now = utc_now()

    def run(cur):
        old = cur.execute("SELECT password_hash FROM users WHERE name = ?", [name]).fetchone()
        if old is None:
            cur.execute("INSERT INTO users VALUES (?, ?, ?, ?, ?)", [name, role, hashed, now, now])
        else:
            cur.execute("UPDATE users SET role = ?, password_hash = ?, updated_at = ? WHERE name = ?",
                        [role, hashed if hashed is not None else old[0], now, name])
        return old is None

    created = db.write(run)
    return {"name": name, "role": role, "created": created}


def remove_user(db: Database, name: str) -> bool:
    return bool(db.write(lambda cur: cur.execute("DELETE FROM users WHERE name = ? RETURNING name",
                                                 [name]).fetchall()))


def has_users(db: Database) -> bool:
    return bool(db.scalar("SELECT count(*) FROM users WHERE password_hash IS NOT NULL"))


def password_check(db: Database):
    """The callable Gradio's ``launch(auth=...)`` calls at sign-in."""

    def check(name: str, password: str) -> bool:
        found = user(db, name) if isinstance(name, str) and USERNAME.fullmatch(name or "") else None
        if found is None or not found["password_hash"]:
            verify_password(password, _dummy_hash())  # as slow as a real check: no hint that the name is unknown
            return False
        return verify_password(password, found["password_hash"])

    return check


_DUMMY: list[str] = []


def _dummy_hash() -> str:
    if not _DUMMY:
        _DUMMY.append(hash_password(secrets.token_hex(16)))
    return _DUMMY[0]


# -- modes and identities -----------------------------------------------------------------------------


def oauth_enabled(env: dict | None = None) -> bool:
    """On a Space whose README asks for Hugging Face sign-in (``hf_oauth: true`` sets these)."""
    env = os.environ if env is None else env
    return bool(env.get("SPACE_ID") and env.get("OAUTH_CLIENT_ID"))


def sign_in_mode(db: Database, env: dict | None = None) -> str:
    if oauth_enabled(env):
        return "oauth"
    return "password" if has_users(db) else "open"


def _names(value: str | None) -> set[str]:
    return {n.strip().lower() for n in (value or "").replace(";", ",").split(",") if n.strip()}


def oauth_role(username: str, env: dict | None = None) -> str:
    """The role of a Hugging Face user on this Space, from the Space's settings.

    >>> env = {"SPACE_AUTHOR_NAME": "lab", "STUDIO_ANNOTATORS": "ada, bo"}
    >>> [oauth_role(n, env) for n in ("lab", "Ada", "cy")]
    ['admin', 'annotator', 'viewer']
    >>> oauth_role("cy", {**env, "STUDIO_ANNOTATORS": "*"})
    'annotator'
    """
    env = os.environ if env is None else env
    name = username.lower()
    admins = _names(env.get("STUDIO_ADMINS")) or _names(env.get("SPACE_AUTHOR_NAME"))
    if name in admins:
        return "admin"
    if name in _names(env.get("STUDIO_REVIEWERS")):
        return "reviewer"
    annotators = _names(env.get("STUDIO_ANNOTATORS"))
    if "*" in annotators or name in annotators:
        return "annotator"
    return "viewer"


def identify(db: Database, username: str | None = None, oauth_username: str | None = None,
             mode: str | None = None, env: dict | None = None) -> Identity:
    """The caller of a request: ``username`` is what Gradio's sign-in established (password mode),
    ``oauth_username`` the Hugging Face profile's username (OAuth mode)."""
    mode = mode or sign_in_mode(db, env)
    if mode == "open":
        return LOCAL
    if mode == "oauth":
        if not oauth_username or not USERNAME.fullmatch(oauth_username):
            return ANONYMOUS
        stored = stored_role(db, oauth_username)  # `users add NAME --no-password --role R` on a Space
        return Identity(oauth_username, stored or oauth_role(oauth_username, env), "oauth")
    found = user(db, username) if username and USERNAME.fullmatch(username) else None
    if found is None:
        return SIGNED_OUT  # password mode signs everyone in: a name not in the table was removed
    return Identity(found["name"], found["role"], "password")


def stored_role(db: Database, name: str) -> str | None:
    """The role the users table gives ``name`` (Hugging Face names match case-insensitively)."""
    return db.scalar("SELECT role FROM users WHERE lower(name) = lower(?) ORDER BY name = ? DESC LIMIT 1",
                     [name, name])
