"""The CLI beside a running app: the server answers commands on a Unix socket next to its database.

DuckDB lets one process own a database file. While ``app.py serve`` holds ``studio.duckdb``, a second
``app.py datasets`` (or search, export, ingest, index, users ...) cannot open it; instead the command is
sent to the server, which runs it on its own open database (so there is still one writer) and streams
the command's output back. The socket is a file beside the database (``studio.duckdb.sock``) readable
and writable by its owner only: whoever may open the database file may run commands, nobody else.

The protocol is JSON lines: the client sends ``{"argv": [...], "cwd": "...", "stdin": "..."}``; the
server answers with ``{"out": text}`` and ``{"err": text}`` lines as the command prints, then
``{"rc": N}``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import socket
import socketserver
import sys
import tempfile
import threading
from pathlib import Path
from typing import Callable

FORWARDED = ("datasets", "ingest", "export", "search", "index", "revise", "users", "stats", "settings", "models",
             "personas", "contamination", "judge")
"""Commands a running server runs for the CLI (``serve`` itself never is)."""

MAX_REQUEST = 1 << 20  # bytes of one request line (argv and stdin)


def socket_path(db_path: str | os.PathLike) -> Path:
    """Where the server of ``db_path`` listens: beside the file, or in the temp folder when that path
    would be too long for a Unix socket (about 100 bytes).

    >>> socket_path("/data/studio.duckdb")
    PosixPath('/data/studio.duckdb.sock')
    """
    db = Path(os.path.abspath(db_path))
    beside = db.with_name(db.name + ".sock")
    if len(os.fsencode(beside)) < 100:
        return beside
    digest = hashlib.sha256(os.fsencode(db)).hexdigest()[:20]
    return Path(tempfile.gettempdir()) / f"studio-{os.getuid()}-{digest}.sock"


# -- per-thread standard streams ----------------------------------------------------------------------


class _ThreadStream(io.TextIOBase):
    """Stands in for sys.stdout / sys.stderr / sys.stdin: a thread that runs a forwarded command reads
    and writes its own streams, every other thread the process's."""

    def __init__(self, default):
        self._default = default
        self._local = threading.local()

    def route(self, target) -> None:
        self._local.target = target

    def _target(self):
        return getattr(self._local, "target", None) or self._default

    def write(self, s):
        return self._target().write(s)

    def flush(self):
        return self._target().flush()

    def read(self, *a):
        return self._target().read(*a)

    def readline(self, *a):
        return self._target().readline(*a)

    def isatty(self):
        return self._target().isatty()

    def fileno(self):
        return self._target().fileno()

    @property
    def encoding(self):
        return getattr(self._target(), "encoding", "utf-8")


class _Lines(io.TextIOBase):
    """A text stream that sends what is written as ``{key: text}`` JSON lines on a socket."""

    def __init__(self, sock: socket.socket, key: str, lock: threading.Lock):
        self._sock, self._key, self._lock = sock, key, lock

    def write(self, s):
        if s:
            send(self._sock, {self._key: s}, self._lock)
        return len(s)

    def isatty(self):
        return False


def send(sock: socket.socket, obj: dict, lock: threading.Lock | None = None) -> None:
    data = (json.dumps(obj) + "\n").encode()
    if lock is None:
        sock.sendall(data)
        return
    with lock:
        sock.sendall(data)


_streams_lock = threading.Lock()


def _install_streams() -> tuple[_ThreadStream, _ThreadStream, _ThreadStream]:
    with _streams_lock:
        for name in ("stdout", "stderr", "stdin"):
            if not isinstance(getattr(sys, name), _ThreadStream):
                setattr(sys, name, _ThreadStream(getattr(sys, name)))
    return sys.stdout, sys.stderr, sys.stdin  # type: ignore[return-value]


# -- the server side ---------------------------------------------------------------------------------


class ControlServer:
    """Listens on ``socket_path(db_path)`` and runs ``run(argv, cwd)`` for each request, in a thread."""

    def __init__(self, db_path: str | os.PathLike, run: Callable[[list[str], str], int]):
        self.path = socket_path(db_path)
        self._run = run
        outer = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                outer._handle(self.connection, self.rfile)

        if self.path.exists() or self.path.is_symlink():
            self.path.unlink()  # left by a server that died: this process owns the database now
        old = os.umask(0o177)
        try:
            self._server = socketserver.ThreadingUnixStreamServer(str(self.path), Handler)
        finally:
            os.umask(old)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="studio-control", daemon=True)

    def start(self) -> "ControlServer":
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass

    def _handle(self, sock: socket.socket, rfile) -> None:
        lock = threading.Lock()
        line = rfile.readline(MAX_REQUEST + 1)
        try:
            req = json.loads(line)
            argv = [str(a) for a in req["argv"]]
            cwd = str(req.get("cwd") or "/")
            stdin = str(req.get("stdin") or "")
        except (ValueError, KeyError, TypeError):
            send(sock, {"err": "error: malformed request\n"}, lock)
            send(sock, {"rc": 2}, lock)
            return
        if not argv or argv[0] not in FORWARDED:
            send(sock, {"err": f"error: the running app does not run {argv[:1]!r} for the CLI\n"}, lock)
            send(sock, {"rc": 2}, lock)
            return
        out, err, inp = _install_streams()
        out.route(_Lines(sock, "out", lock))
        err.route(_Lines(sock, "err", lock))
        inp.route(io.StringIO(stdin))
        try:
            rc = self._run(argv, cwd)
        except SystemExit as e:  # argparse's --help and usage errors
            rc = e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
        except BaseException as e:  # the command failed: say so in one line, keep serving
            print(f"error: {type(e).__name__}: {e}".splitlines()[0], file=sys.stderr)
            rc = 1
        finally:
            out.route(None)
            err.route(None)
            inp.route(None)
        try:
            send(sock, {"rc": rc}, lock)
        except OSError:
            pass  # the client went away


# -- the client side ---------------------------------------------------------------------------------


def forward(db_path: str | os.PathLike, argv: list[str], stdin: str = "") -> int | None:
    """Run ``argv`` in the server that holds ``db_path``; print its output here and return its exit
    code, or None when no server answers on that database's socket."""
    path = socket_path(db_path)
    if not path.exists():
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(str(path))
    except OSError:
        sock.close()
        return None
    with sock:
        send(sock, {"argv": argv, "cwd": os.getcwd(), "stdin": stdin})
        rc = 1
        with sock.makefile("r", encoding="utf-8") as lines:
            for line in lines:
                msg = json.loads(line)
                if "out" in msg:
                    sys.stdout.write(msg["out"])
                elif "err" in msg:
                    sys.stderr.write(msg["err"])
                elif "rc" in msg:
                    rc = int(msg["rc"])
                    break
        sys.stdout.flush()
        return rc
