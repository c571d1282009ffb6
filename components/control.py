"""The CLI beside a running app: the server answers commands on a Unix socket next to its database.

DuckDB lets one process own a database file. While ``app.py serve`` holds ``studio.duckdb``, a second
``app.py datasets`` (or search, export, ingest, index, users ...) cannot open it; instead the command is
sent to the server, which runs it on its own open database (so there is still one writer) and streams
the command's output back. The socket is a file beside the database (``studio.duckdb.sock``) readable
and writable by its owner only, or -- when that path is too long for a Unix socket -- in a folder
that only its owner may enter (``$XDG_RUNTIME_DIR/studio-UID`` or ``/tmp/studio-UID``, mode 0700,
refused when someone else made it). Both ends also ask the kernel who is at the other end
(``SO_PEERCRED``) before a byte of a command goes over: the server answers only its own user (or
root), the CLI talks only to a server of its own user or of the database file's owner.

Ctrl-C on the CLI half-closes the socket; the server then stops the command as Ctrl-C would
(``KeyboardInterrupt`` in the thread running it), so it keeps what it finished and says how to go on,
and the CLI prints that and exits with 130.

The protocol is JSON lines: the client sends ``{"argv": [...], "cwd": "...", "stdin": "..."}``; the
server answers with ``{"out": text}`` and ``{"err": text}`` lines as the command prints, then
``{"rc": N}``.
"""

from __future__ import annotations

import ctypes
import hashlib
import io
import json
import os
import socket
import socketserver
import stat
import struct
import sys
import tempfile
import threading
from pathlib import Path
from typing import Callable

FORWARDED = ("datasets", "ingest", "export", "search", "index", "revise", "users", "stats", "settings", "models",
             "personas", "contamination", "judge")
"""Commands a running server runs for the CLI (``serve`` itself never is)."""

MAX_REQUEST = 1 << 20  # bytes of one request line (argv and stdin)


PATH_OPTIONS = ("out", "topics", "output", "guidelines", "file")
"""Options that name files: a forwarded command resolves them against the CLI's working folder."""


class Served:
    """The database of the app this process serves, and how it signs people in (fixed when it started):
    forwarded CLI commands run on that open database."""

    db = None
    mode: str | None = None


def serving(db, mode: str) -> None:
    """This process now serves ``db`` (signing people in by ``mode``)."""
    Served.db, Served.mode = db, mode


def served_mode() -> str | None:
    """The sign-in mode of the app this process serves, None when it serves none."""
    return Served.mode if Served.db is not None else None


def open_db(path: str | os.PathLike):
    """The database at ``path``: the served one when this process serves it, else opened now."""
    from .store import Database

    if Served.db is not None and Path(path).resolve() == Served.db.path.resolve():
        return Served.db
    return Database(path)


def forwarded_args(args, cwd: str):
    """A command's parsed ``args`` as sent by the CLI in ``cwd``: its files resolved there, its
    database the served one."""
    for key in PATH_OPTIONS:
        value = getattr(args, key, None)
        if isinstance(value, str) and value and not os.path.isabs(value):
            setattr(args, key, os.path.join(cwd, value))
    source = getattr(args, "source", None)
    if args.command == "ingest" and source and not os.path.isabs(source) and os.path.exists(os.path.join(cwd, source)):
        args.source = os.path.join(cwd, source)
    if Served.db is not None:
        args.db = str(Served.db.path)
    return args


class ControlError(Exception):
    """The control socket cannot be used safely; one line for the user."""


def socket_path(db_path: str | os.PathLike) -> Path:
    """Where the server of ``db_path`` listens: beside the file, or in a folder of this user's alone
    (``private_dir``) when that path would be too long for a Unix socket (about 100 bytes).

    >>> socket_path("/data/studio.duckdb")
    PosixPath('/data/studio.duckdb.sock')
    """
    db = Path(os.path.abspath(db_path))
    beside = db.with_name(db.name + ".sock")
    if len(os.fsencode(beside)) < 100:
        return beside
    digest = hashlib.sha256(os.fsencode(db)).hexdigest()[:20]
    return private_dir() / f"{digest}.sock"


def private_dir() -> Path:
    """``$XDG_RUNTIME_DIR/studio-UID`` (when that is this user's) or ``TMPDIR/studio-UID``, made mode
    0700; raises ControlError when the folder exists and is not this user's alone (someone else made
    it to listen there)."""
    uid = os.getuid()
    base = os.environ.get("XDG_RUNTIME_DIR")
    if not (base and _mine(Path(base))):
        base = tempfile.gettempdir()
    folder = Path(base) / f"studio-{uid}"
    try:
        os.mkdir(folder, 0o700)
    except FileExistsError:
        pass
    except OSError as err:
        raise ControlError(f"cannot make the control folder {folder}: {err.strerror}") from None
    if not _mine(folder):
        raise ControlError(f"the control folder {folder} is not this user's alone (owner and mode 0700): "
                           "someone else may have made it; remove it, or give --db a shorter path")
    return folder


def _mine(folder: Path) -> bool:
    try:
        st = os.lstat(folder)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o077


def peer_uid(sock: socket.socket) -> int:
    """The user id of the process at the other end of a Unix socket, as the kernel tells it."""
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", creds)[1]


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
                if peer_uid(self.connection) not in (os.getuid(), 0):
                    return  # another user: not a byte back, and nothing run
                outer._handle(self.connection, self.rfile)

        if self.path.exists() or self.path.is_symlink():
            if os.lstat(self.path).st_uid != os.getuid():
                raise ControlError(f"{self.path} belongs to another user: the CLI cannot be served beside this "
                                   "database; remove that file")
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
        watch = _Watch(sock, threading.get_ident())
        try:
            rc = self._run(argv, cwd)
        except SystemExit as e:  # argparse's --help and usage errors
            rc = e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
        except KeyboardInterrupt:  # the CLI's Ctrl-C, delivered while the command was not catching it
            rc = 130
        except BaseException as e:  # the command failed: say so in one line, keep serving
            try:
                print(f"error: {type(e).__name__}: {e}".splitlines()[0], file=sys.stderr)
            except OSError:
                pass
            rc = 1
        finally:
            try:
                watch.stop()
            except KeyboardInterrupt:
                rc = 130
            out.route(None)
            err.route(None)
            inp.route(None)
        try:
            send(sock, {"rc": rc}, lock)
        except OSError:
            pass  # the client went away


class _Watch:
    """Waits for the CLI to half-close the socket (its Ctrl-C) while a command runs, and then raises
    KeyboardInterrupt in the thread running the command, as Ctrl-C would in the CLI's own process."""

    def __init__(self, sock: socket.socket, thread_id: int):
        self._sock, self._thread_id = sock, thread_id
        self._lock = threading.Lock()
        self._running = True
        threading.Thread(target=self._wait, name="studio-control-watch", daemon=True).start()

    def _wait(self) -> None:
        try:
            while self._sock.recv(4096):
                pass  # nothing more is sent after the request: b"" is the CLI's Ctrl-C or its end
        except OSError:
            pass
        with self._lock:
            if self._running:
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(self._thread_id),
                                                           ctypes.py_object(KeyboardInterrupt))

    def stop(self) -> None:
        with self._lock:
            self._running = False
        # a Ctrl-C that came as the command ended must not land in the server's own code
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(self._thread_id), None)


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
        server = peer_uid(sock)
        allowed = {os.getuid()}
        try:
            allowed.add(os.stat(db_path).st_uid)
        except OSError:
            pass
        if server not in allowed:
            raise ControlError(f"{path} is served by another user (uid {server}), not by the app that holds "
                               f"{db_path}: nothing was sent")
        send(sock, {"argv": argv, "cwd": os.getcwd(), "stdin": stdin})
        rc = 1
        stopping = False
        with sock.makefile("r", encoding="utf-8") as lines:
            while True:
                try:
                    line = lines.readline()
                except KeyboardInterrupt:
                    if stopping:  # a second Ctrl-C: leave without waiting for the server
                        return 130
                    stopping = True
                    sock.shutdown(socket.SHUT_WR)  # the server stops the command (see _Watch)
                    sock.settimeout(30)
                    continue
                except (OSError, socket.timeout):
                    return 130 if stopping else 1
                if not line:
                    return 130 if stopping else rc
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
