"""The database: one DuckDB file, owned by one process, its schema and the one write path.

``Database`` opens (or creates) the file, brings its schema up to date with the migrations,
and offers two ways in:

* reads -- ``db.rows(sql, params)`` / ``db.one(...)`` / ``db.scalar(...)`` run on a cursor of the
  calling thread, so many threads can read at once;
* writes -- ``db.write(fn)`` runs ``fn(cursor)`` inside one transaction, one writer at a time
  (a process-wide lock), and rolls the whole transaction back if ``fn`` raises.

Ctrl-C during a query: DuckDB looks for Python's pending signal only now and then, and not on every
path (a query read as Arrow ran on for minutes). So SIGINT also interrupts every open database's
running queries at once (``watch_sigint``: Python's wakeup file descriptor, read by one thread), and
DuckDB's ``InterruptException`` / ``RuntimeError("Query interrupted")`` is given back as
``KeyboardInterrupt`` by every read and write here (``interruptible``), so each command stops the
same way wherever the signal lands.

The schema of every table is one ordered list of migrations (``schema.py``). The SQL of each
concept lives beside that concept (``catalogue.py`` for the datasets and their records,
``labels/events.py``, ``revise/results.py``, ``search/index.py`` ...) and runs through these generic
methods: nothing here knows what a dataset is.
"""

from __future__ import annotations

import fcntl
import os
import signal
import socket
import struct
import threading
import weakref
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Sequence

import duckdb

DEFAULT_DB = Path(__file__).resolve().parent.parent / "data" / "studio.duckdb"

from .schema import MIGRATIONS
from .text import sql_literal




class DatabaseError(Exception):
    """A database problem explained in one line for the user."""


class DatabaseInUse(DatabaseError):
    """Another process holds the database file."""


def interrupted(err: BaseException) -> bool:
    """Whether ``err`` is DuckDB telling that Ctrl-C (SIGINT) stopped the query it was running.

    DuckDB 2 catches the signal itself while a query runs and raises ``RuntimeError("Query
    interrupted")`` (or its ``InterruptException``) instead of Python's ``KeyboardInterrupt``.

    >>> interrupted(RuntimeError("Query interrupted")), interrupted(RuntimeError("other"))
    (True, False)
    """
    return isinstance(err, duckdb.InterruptException) or (
        isinstance(err, RuntimeError) and str(err).startswith("Query interrupted"))


@contextmanager
def interruptible():
    """Turn DuckDB's "Query interrupted" back into ``KeyboardInterrupt``, the one thing every command
    catches to stop cleanly (exit code 130 and how to resume)."""
    try:
        yield
    except (RuntimeError, duckdb.Error) as err:
        if interrupted(err):
            raise KeyboardInterrupt("Query interrupted") from None
        raise


def despite_interrupt(fn: Callable[[], Any], tries: int = 3) -> Any:
    """Run ``fn()`` again when the Ctrl-C being handled stops its query too: the SIGINT watcher
    interrupts every running query a moment after the signal, so the write that records how a job
    ended can meet the same interrupt. A real new Ctrl-C (Python's own KeyboardInterrupt) is not
    retried, nor is the last try."""
    for left in range(tries - 1, -1, -1):
        try:
            return fn()
        except KeyboardInterrupt as err:
            if left == 0 or str(err) != "Query interrupted":
                raise


_OPEN: "weakref.WeakSet[Database]" = weakref.WeakSet()  # every Database open in this process
_WATCHING: list = []  # the socket pair of the SIGINT watcher, once it runs


def watch_sigint() -> bool:
    """Make SIGINT interrupt the queries of every open ``Database`` at once, as well as raise
    ``KeyboardInterrupt`` as usual. Only from the main thread, only while SIGINT has Python's own
    handler and no wakeup descriptor is set (an event loop's is left alone); True when watching."""
    if _WATCHING:
        return True
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        return False
    reader, writer = socket.socketpair()
    writer.setblocking(False)
    try:
        previous = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
    except ValueError:
        reader.close(), writer.close()
        return False
    if previous != -1:  # someone else's: theirs stays
        signal.set_wakeup_fd(previous)
        reader.close(), writer.close()
        return False
    _WATCHING.extend((reader, writer))

    def watch():
        while True:
            try:
                got = reader.recv(64)
            except OSError:
                return
            if not got:
                return
            if signal.SIGINT in got:
                for db in list(_OPEN):
                    db.interrupt()

    threading.Thread(target=watch, name="studio-sigint", daemon=True).start()
    return True


def lock_holder(path: Path) -> int | None:
    """The process holding DuckDB's lock on ``path`` (its POSIX record lock, asked of the kernel with
    F_GETLK), or None when nobody holds it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        query = struct.pack("hhqqi4x", fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)
        kind, _, _, _, pid = struct.unpack("hhqqi4x", fcntl.fcntl(fd, fcntl.F_GETLK, query))
        return pid if kind != fcntl.F_UNLCK and pid > 0 else None
    except OSError:
        return None
    finally:
        os.close(fd)


def _in_use_message(path: Path, pid: int) -> str:
    return (
        f"the database {path} is in use by process {pid} (probably the running app); "
        "stop it first, or pass --db with another file"
    )


class Database:
    """One DuckDB database file: its connection, its reads, its one write path and its migrations."""

    def __init__(self, path: str | os.PathLike = DEFAULT_DB, read_only: bool = False):
        self.path = Path(path)
        self.read_only = read_only
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._con = duckdb.connect(str(self.path), read_only=read_only)
        except duckdb.IOException as err:
            holder = lock_holder(self.path)
            if holder is not None:
                raise DatabaseInUse(_in_use_message(self.path, holder)) from None
            raise DatabaseError(f"cannot open {self.path}: {err}") from None
        # DuckDB keeps cached blocks up to 80% of the machine's memory by default: a 10M-row ingest
        # peaked at 4.6 GB that way, at 1.9 GB with a 1 GB limit, in the same time
        self._con.execute(f"SET memory_limit = {sql_literal(os.environ.get('STUDIO_DUCKDB_MEMORY', '2GB'))}")
        self._write_lock = threading.RLock()
        self.generation = 0  # bumped by every committed write (caches of what was read compare it)
        self._local = threading.local()
        self._once: set = set()
        self._once_lock = threading.RLock()
        self._cursors: "weakref.WeakSet" = weakref.WeakSet()  # every cursor, for interrupt()
        _OPEN.add(self)
        watch_sigint()
        if not read_only:
            self.migrate()

    # -- connection plumbing ------------------------------------------------------------------

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A cursor for the calling thread (DuckDB cursors are not shared between threads)."""
        cur = getattr(self._local, "cursor", None)
        if cur is None:
            cur = self._con.cursor()
            self._local.cursor = cur
            self._cursors.add(cur)
        return cur

    def interrupt(self) -> None:
        """Stop every query running on this database now (each raises KeyboardInterrupt here); a
        cursor that runs nothing is not affected."""
        for cur in [self._con, *list(self._cursors)]:
            try:
                cur.interrupt()
            except Exception:  # closed meanwhile
                pass

    def once(self, key: Any, fn: Callable[[], Any]) -> None:
        """Run ``fn()`` the first time ``key`` is asked for on this open database (seeding a library
        into it, say); later calls return at once. A failed ``fn`` runs again next time."""
        with self._once_lock:
            if key in self._once:
                return
            fn()
            self._once.add(key)

    def close(self) -> None:
        self._con.close()

    def execute_checkpoint(self) -> None:
        """Write everything committed into the database file itself (not only its WAL)."""
        with self._write_lock:
            self.cursor().execute("CHECKPOINT")

    def rows(self, sql: str, params: Sequence | dict | None = None) -> list[tuple]:
        with interruptible():
            return self.cursor().execute(sql, params or []).fetchall()

    def dicts(self, sql: str, params: Sequence | dict | None = None) -> list[dict]:
        with interruptible():
            cur = self.cursor().execute(sql, params or [])
            names = [d[0] for d in cur.description]
            return [dict(zip(names, r)) for r in cur.fetchall()]

    def one(self, sql: str, params: Sequence | dict | None = None) -> tuple | None:
        with interruptible():
            return self.cursor().execute(sql, params or []).fetchone()

    def scalar(self, sql: str, params: Sequence | dict | None = None) -> Any:
        r = self.one(sql, params)
        return None if r is None else r[0]

    def arrow(self, sql: str, params: Sequence | dict | None = None):
        """A query's result as Arrow, read on a cursor of its own (a result the thread's cursor is still
        streaming is left alone, and DuckDB reads it without the copy a DB-API result costs)."""
        cur = self.cursor().cursor()
        self._cursors.add(cur)
        try:
            with interruptible():
                return cur.sql(sql, params=params or None).to_arrow_table()
        finally:
            cur.close()

    def write(self, fn: Callable[[duckdb.DuckDBPyConnection], Any]) -> Any:
        """Run ``fn(cursor)`` in one transaction, serialized with every other write."""
        if self.read_only:
            raise DatabaseError(f"the database {self.path} is open read-only")
        with self._write_lock, interruptible():
            cur = self.cursor()
            cur.execute("BEGIN TRANSACTION")
            try:
                result = fn(cur)
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            cur.execute("COMMIT")
            self.generation += 1
            return result

    # -- schema ---------------------------------------------------------------------------------

    def migrate(self, upto: str | None = None) -> list[str]:
        """Apply the migrations this file has not seen; return their names."""
        def run(cur):
            cur.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (name VARCHAR PRIMARY KEY, applied_at TIMESTAMP)"
            )
            done = {r[0] for r in cur.execute("SELECT name FROM schema_migrations").fetchall()}
            applied = []
            for name, statements in MIGRATIONS:
                if name not in done:
                    for sql in statements:
                        cur.execute(sql)
                    cur.execute("INSERT INTO schema_migrations VALUES (?, now())", [name])
                    applied.append(name)
                if name == upto:
                    break
            return applied

        return self.write(run)

    def migrations(self) -> list[str]:
        return [r[0] for r in self.rows("SELECT name FROM schema_migrations ORDER BY name")]
