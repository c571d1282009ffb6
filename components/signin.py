"""Sign-in in password mode, for strangers: failed attempts limited, removed users signed out at once.

Gradio's ``/login`` route checks the password (``access.password_check``) but counts nothing, and the
token it hands out stays valid until the server stops. ``SessionGuard`` is an ASGI middleware in front
of the whole page that adds what a shared server needs:

* after ``MAX_FAILURES`` failed sign-ins within ``WINDOW_S`` seconds for one user name, or from one
  client address, sign-in is refused for that name or address (HTTP 429, with the minutes left), even
  with the right password, until the window has passed; every lock is logged;
* a request whose session belongs to a user who has since been removed ends that session (the token
  is dropped and the page asks to sign in again); a demoted user's new role applies at once anyway,
  because every handler reads the role from the database (``access.identify``);
* a file upload (Gradio's ``/upload``, which runs before any handler) is taken only from a caller
  whose role may use it (``UPLOAD_ROLE``: every upload of the page loads data, personas or gold
  labels, which admins do), and only while all uploads kept stay under ``$STUDIO_UPLOAD_CAP_MB``
  (default 2048). Gradio removes uploads an hour old (``delete_cache`` in ``ui.build_app``).

``Attempts`` is the plain bookkeeping, with the clock passed in so tests need not wait:

>>> a = Attempts(max_failures=2, window_s=60)
>>> a.failed("ada", "10.0.0.1", now=0), a.failed("ada", "10.0.0.2", now=1)
(None, 'user name ada')
>>> a.locked("ada", "10.0.0.9", now=30), a.locked("bo", "10.0.0.9", now=30), a.locked("ada", "x", now=62)
(('user name ada', 30), None, None)
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections import defaultdict, deque
from urllib.parse import parse_qs

from . import access
from .store import Database

MAX_FAILURES = 10
WINDOW_S = 600.0
MAX_BODY = 64 * 1024  # a sign-in form is a few hundred bytes
UPLOAD_ROLE = "admin"
UPLOAD_CAP_ENV = "STUDIO_UPLOAD_CAP_MB"


class Attempts:
    """Failed sign-ins per user name and per client address over a sliding window."""

    def __init__(self, max_failures: int = MAX_FAILURES, window_s: float = WINDOW_S):
        self.max_failures, self.window_s = max_failures, window_s
        self._fails: dict[str, deque] = defaultdict(deque)
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque:
        q = self._fails[key]
        while q and q[0] <= now - self.window_s:
            q.popleft()
        if not q:
            del self._fails[key]
            return deque()
        return q

    def locked(self, name: str, address: str, now: float | None = None) -> tuple[str, int] | None:
        """``(what is locked, seconds left)`` when this name or address may not try now."""
        now = time.monotonic() if now is None else now
        with self._lock:
            for what, key in _keys(name, address):
                q = self._recent(key, now)
                if len(q) >= self.max_failures:
                    return what, max(1, int(q[-self.max_failures] + self.window_s - now))
        return None

    def failed(self, name: str, address: str, now: float | None = None) -> str | None:
        """Count one failed attempt; returns what it locked (the name or the address), if anything."""
        now = time.monotonic() if now is None else now
        newly = None
        with self._lock:
            for what, key in _keys(name, address):
                q = self._recent(key, now)
                q.append(now)
                self._fails[key] = q
                if len(q) == self.max_failures and newly is None:
                    newly = what
        return newly


def _keys(name: str, address: str) -> tuple[tuple[str, str], tuple[str, str]]:
    """(what it is called in a message, its bookkeeping key) for the name and for the address."""
    return (f"user name {name}", f"n:{name.lower()}"), (f"address {address}", f"a:{address}")


def client_address(scope: dict, headers: dict[bytes, bytes]) -> str:
    """The caller's address; behind a Space's proxy, the hop the proxy itself added (the last one:
    the ones before it are whatever the client sent, and would let it pose as many addresses)."""
    forwarded = headers.get(b"x-forwarded-for", b"").decode("latin-1").split(",")[-1].strip()
    if forwarded and os.environ.get("SPACE_ID"):
        return forwarded
    client = scope.get("client") or ("unknown", 0)
    return str(client[0])


def _cookie_tokens(headers: dict[bytes, bytes]) -> list[str]:
    raw = headers.get(b"cookie", b"").decode("latin-1")
    return [part.split("=", 1)[1].strip() for part in raw.split(";")
            if "=" in part and part.split("=", 1)[0].strip().startswith("access-token")]


class SessionGuard:
    """The ASGI middleware: ``app_kwargs={"middleware": [Middleware(SessionGuard, db=db)]}``."""

    def __init__(self, app, db: Database, mode: str = "password", attempts: Attempts | None = None, log=None):
        self.app, self.db, self.mode = app, db, mode
        self.attempts = attempts or Attempts()
        self.log = log or (lambda line: print(line, file=sys.stderr, flush=True))

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        if self.mode == "password":
            self._end_removed_sessions(scope, headers)
        path = scope.get("path", "").rstrip("/")
        post = scope["type"] == "http" and scope.get("method") == "POST"
        if post and self.mode == "password" and path.endswith("/login"):
            return await self._login(scope, receive, send, headers)
        if post and path.endswith("/upload"):
            refused = self._upload_refused(scope, headers)
            if refused:
                return await _answer(send, *refused)
        return await self.app(scope, receive, send)

    def caller(self, scope, headers) -> access.Identity:
        """Who sends this request, as the handlers will see them (``access.identify``)."""
        name = oauth_name = None
        if self.mode == "password":
            tokens = getattr(scope.get("app"), "tokens", None) or {}
            name = next((tokens[t] for t in _cookie_tokens(headers) if t in tokens), None)
        elif self.mode == "oauth":
            session = scope.get("session") or {}
            oauth_name = ((session.get("oauth_info") or {}).get("userinfo") or {}).get("preferred_username")
        return access.identify(self.db, username=name, oauth_username=oauth_name, mode=self.mode)

    def _upload_refused(self, scope, headers) -> tuple[int, str] | None:
        who = self.caller(scope, headers)
        if not who.can(UPLOAD_ROLE):
            return 403, f"uploading files needs the {UPLOAD_ROLE} role; you are {who.describe()}"
        folder = getattr(scope.get("app"), "uploaded_file_dir", None)
        cap = upload_cap_bytes()
        coming = int(headers.get(b"content-length", b"0") or 0)
        kept = folder_bytes(folder) if folder else 0
        if kept + coming > cap:
            self.log(f"upload: refused {coming:,} bytes from {who.describe()}: {kept:,} bytes of uploads kept")
            return 507, (f"the server keeps {kept / 2**20:,.0f} MB of uploads, near its cap of {cap / 2**20:,.0f} MB "
                         f"({UPLOAD_CAP_ENV}); uploads are removed an hour after they come: try again later")
        return None

    def _end_removed_sessions(self, scope, headers) -> None:
        tokens = getattr(scope.get("app"), "tokens", None)
        if not tokens:
            return
        for token in _cookie_tokens(headers):
            name = tokens.get(token)
            if name is not None and access.user(self.db, name) is None:
                tokens.pop(token, None)  # removed since signing in: this session is over
                self.log(f"sign-in: the session of {name!r} ended (the user was removed)")

    async def _login(self, scope, receive, send, headers):
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > MAX_BODY:
                return await _answer(send, 413, "the sign-in form is too large")
        form = parse_qs(body.decode("utf-8", "replace"))
        name = (form.get("username") or [""])[0].strip()
        address = client_address(scope, headers)
        lock = self.attempts.locked(name, address)
        if lock:
            what, left = lock
            kind = "user name" if what.startswith("user") else "address"
            return await _answer(send, 429, f"Too many failed sign-ins for this {kind}: try again in "
                                            f"{max(1, round(left / 60))} min.")
        status = {}

        async def replay():
            nonlocal body
            chunk, body = body, b""
            return {"type": "http.request", "body": chunk, "more_body": False}

        async def watch(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        await self.app(scope, replay, watch)
        if status.get("code", 500) >= 400 and name:
            newly = self.attempts.failed(name, address)
            if newly:
                self.log(f"sign-in: {newly} locked for {self.attempts.window_s / 60:g} min after "
                         f"{self.attempts.max_failures} failed sign-ins")


def upload_cap_bytes() -> int:
    try:
        return int(float(os.environ.get(UPLOAD_CAP_ENV, 2048)) * 2**20)
    except ValueError:
        return 2048 * 2**20


def folder_bytes(folder) -> int:
    """The bytes of the files under ``folder`` (0 when it does not exist)."""
    total = 0
    for root, _, files in os.walk(folder):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except OSError:
                pass
    return total


async def _answer(send, code: int, text: str) -> None:
    body = json.dumps({"detail": text}).encode()
    await send({"type": "http.response.start", "status": code,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
