"""Another Unix user on the same machine: cannot read the database, cannot stand in for the control
socket, and gets nothing from the server's socket. The probe runs as a user the test makes."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from helpers import ROOT, free_port, wait_http

PROBE_USER = "studio-probe"
PROBE_PYTHON = shutil.which("python3", path="/usr/bin:/bin") or sys.executable  # stdlib only: no venv needed


@pytest.fixture(scope="module")
def probe_user():
    """A second Unix user (made with useradd when missing); needs root."""
    if os.getuid() != 0 or not shutil.which("useradd"):
        message = "needs root and useradd to make a second Unix user"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    try:
        pwd.getpwnam(PROBE_USER)
    except KeyError:
        subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", PROBE_USER], check=True)
    return pwd.getpwnam(PROBE_USER)


@pytest.fixture
def shared_dir():
    """A folder everyone may enter (not pytest's tmp_path, which only root may): the database's home."""
    folder = Path(tempfile.mkdtemp(dir="/tmp", prefix="studio-shared-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def as_probe(user, code: str, **env) -> subprocess.CompletedProcess:
    """Run Python ``code`` as the probe user; its last line of output is JSON."""
    return subprocess.run([PROBE_PYTHON, "-c", textwrap.dedent(code)], user=user.pw_uid, group=user.pw_gid,
                          extra_groups=[], capture_output=True, text=True, timeout=60, cwd="/",
                          env={"PATH": "/usr/bin:/bin", **env})


class Server:
    def __init__(self, db_path: Path, **env):
        self.db_path = db_path
        self.env = {**os.environ, **env}
        port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "app.py"), "serve", "--db", str(db_path), "--port", str(port), "--no-demo"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=self.env)
        wait_http(f"http://127.0.0.1:{port}/", proc=self.proc)

    def cli(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, str(ROOT / "app.py"), *args, "--db", str(self.db_path)], cwd=ROOT,
                              capture_output=True, text=True, timeout=120, env=self.env, input=stdin)

    def close(self) -> str:
        self.proc.terminate()
        try:
            out, _ = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        return out


def test_another_user_cannot_read_the_database_or_use_its_socket(probe_user, shared_dir):
    db_path = shared_dir / "studio.duckdb"
    server = Server(db_path)
    try:
        added = server.cli("users", "add", "ada", "--role", "admin", "--password-stdin", stdin="correct horse 12\n")
        assert added.returncode == 0, added.stderr
        sock = Path(str(db_path) + ".sock")
        wal = Path(str(db_path) + ".wal")
        for path in (db_path, sock, *([wal] if wal.exists() else [])):
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path  # the owner's alone

        probe = as_probe(probe_user, f"""
            import json, socket
            got = {{}}
            for name in ({str(db_path)!r}, {str(db_path) + ".wal"!r}):
                try:
                    open(name, "rb").read(16)
                    got[name] = "read"
                except FileNotFoundError:
                    got[name] = "missing"
                except PermissionError:
                    got[name] = "refused"
            s = socket.socket(socket.AF_UNIX)
            try:
                s.connect({str(sock)!r})
                got["socket"] = "connected"
            except PermissionError:
                got["socket"] = "refused"
            print(json.dumps(got))
        """)
        got = json.loads(probe.stdout.strip().splitlines()[-1])
        assert got[str(db_path)] == "refused"
        assert got[str(db_path) + ".wal"] in ("refused", "missing")
        assert got["socket"] == "refused"

        # even where the socket file is opened to everyone by mistake, the server asks the kernel who
        # is calling and answers nothing to another user, and runs nothing
        sock.chmod(0o666)
        probe = as_probe(probe_user, f"""
            import json, socket
            s = socket.socket(socket.AF_UNIX)
            s.connect({str(sock)!r})
            s.sendall(json.dumps({{"argv": ["users", "add", "mallory", "--role", "admin", "--no-password"],
                                  "cwd": "/"}}).encode() + b"\\n")
            s.settimeout(20)
            data = b""
            try:
                while chunk := s.recv(4096):
                    data += chunk
            except ConnectionResetError:  # closed with the request unread: nothing came back
                pass
            print(json.dumps({{"answer": data.decode()}}))
        """)
        assert probe.returncode == 0, probe.stderr
        assert json.loads(probe.stdout.strip().splitlines()[-1]) == {"answer": ""}
        listed = server.cli("users", "list", "--json")
        assert listed.returncode == 0, listed.stderr
        assert "mallory" not in listed.stdout and "ada" in listed.stdout
    finally:
        server.close()


def test_a_socket_planted_by_another_user_gets_nothing(probe_user):
    """The probe listens where the CLI would look for the server (beside the database in a shared,
    sticky folder, and in the temp folder when the database path is too long) before the server
    starts; the CLI refuses to talk to it and the password never leaves."""
    shared = Path(tempfile.mkdtemp(dir="/tmp", prefix="studio-sticky-"))
    shared.chmod(0o1777)  # like /tmp: everyone may make files, only their owner may remove them
    tmp = Path(tempfile.mkdtemp(dir="/tmp", prefix="studio-tmp-"))
    tmp.chmod(0o1777)
    long_dir = shared / ("d" * 120)
    long_dir.mkdir()
    long_dir.chmod(0o755)
    cases = [(shared / "studio.duckdb", Path(str(shared / "studio.duckdb") + ".sock"))]
    from components.control import socket_path

    digest_name = socket_path(long_dir / "studio.duckdb").name  # only the file name: the folder is per user
    cases.append((long_dir / "studio.duckdb", tmp / f"studio-{os.getuid()}" / digest_name))
    try:
        for db_path, planted in cases:
            listener = subprocess.Popen(
                [PROBE_PYTHON, "-c", textwrap.dedent(f"""
                    import json, os, socket, sys
                    path = {str(planted)!r}
                    if not os.path.isdir(os.path.dirname(path)):  # the folder the server would use, made first
                        os.mkdir(os.path.dirname(path))
                        os.chmod(os.path.dirname(path), 0o777)
                    s = socket.socket(socket.AF_UNIX)
                    s.bind(path)
                    os.chmod(path, 0o777)
                    s.listen(5)
                    s.settimeout(60)
                    print("listening", flush=True)
                    got = b""
                    try:
                        conn, _ = s.accept()
                        conn.settimeout(10)
                        while chunk := conn.recv(4096):
                            got += chunk
                    except OSError:
                        pass
                    print(json.dumps({{"got": got.decode()}}), flush=True)
                """)], user=probe_user.pw_uid, group=probe_user.pw_gid, extra_groups=[], stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, text=True, cwd="/", env={"PATH": "/usr/bin:/bin"})
            assert listener.stdout.readline().strip() == "listening", listener.stderr.read()
            server = Server(db_path, TMPDIR=str(tmp), XDG_RUNTIME_DIR="")
            try:
                added = server.cli("users", "add", "ada", "--role", "admin", "--password-stdin",
                                   stdin="correct horse 12\n")
                assert added.returncode == 1, added.stdout
                assert "Traceback" not in added.stderr
                assert "another user" in added.stderr or "not this user's alone" in added.stderr, added.stderr
            finally:
                log = server.close()
            assert "warning:" in log and "CLI" in log  # the server said why the CLI cannot reach it
            listener.kill()
            out, _ = listener.communicate(timeout=20)
            assert "correct horse" not in out and "ada" not in out, out
    finally:
        shutil.rmtree(shared, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)


def test_the_server_refuses_a_socket_folder_someone_else_made(tmp_path, monkeypatch):
    """The temp-folder fallback: a folder already there that is not ours alone is refused in one line."""
    from components import control

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", None)
    folder = tmp_path / f"studio-{os.getuid()}"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)  # open to everyone: someone could have made it
    with pytest.raises(control.ControlError, match="not this user's alone"):
        control.private_dir()
    folder.chmod(0o700)
    assert control.private_dir() == folder
    assert control.socket_path(tmp_path / ("x" * 120) / "studio.duckdb").parent == folder
