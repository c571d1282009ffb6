"""The database: schema migrations, serialized writes, the file surviving a reopen."""

from __future__ import annotations

import threading

import duckdb
import pytest

from components.ingest import ingest, load_demo
from components.schema import MIGRATIONS
from components.store import Database, DatabaseError, DatabaseInUse
from components import catalogue


def test_newer_app_opens_an_older_file(tmp_path):
    path = tmp_path / "old.duckdb"
    # a file written by the first released schema, holding data
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE schema_migrations (name VARCHAR PRIMARY KEY, applied_at TIMESTAMP)")
    name, statements = MIGRATIONS[0]
    for sql in statements:
        con.execute(sql)
    con.execute("INSERT INTO schema_migrations VALUES (?, now())", [name])
    con.execute("INSERT INTO datasets VALUES ('old', 'pairs', 'trl-standard', NULL, NULL, NULL, 0, 0, '{}', '{}', NULL, 1, now(), now())")
    con.close()
    db = Database(path)
    assert db.migrations() == sorted(n for n, _ in MIGRATIONS)
    assert [d.name for d in catalogue.datasets(db)] == ["old"]
    # later tables and views are there and usable
    assert db.scalar("SELECT count(*) FROM current_labels") == 0
    assert db.scalar("SELECT count(*) FROM search_indexes") == 0
    db.close()
    # opening again applies nothing new
    db = Database(path)
    assert db.migrate() == []
    db.close()


def test_data_survives_reopen(tmp_path):
    path = tmp_path / "s.duckdb"
    db = Database(path)
    load_demo(db)
    before = db.rows("SELECT dataset, row, chosen FROM records ORDER BY dataset, row")
    db.close()
    db = Database(path)
    assert db.rows("SELECT dataset, row, chosen FROM records ORDER BY dataset, row") == before
    db.close()


def test_writes_are_serialized_across_threads(db, tmp_path):
    src = tmp_path / "p.jsonl"
    src.write_text("".join(f'{{"prompt": "q{i}", "chosen": "a", "rejected": "b"}}\n' for i in range(50)))
    errors = []

    def work(i):
        try:
            ingest(db, str(src), name=f"t{i % 3}")
        except Exception as err:  # pragma: no cover - the assertion below reports it
            errors.append(err)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(9)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted((d.name, d.row_count, d.version) for d in catalogue.datasets(db)) == [
        ("t0", 50, 3), ("t1", 50, 3), ("t2", 50, 3)]
    assert db.scalar("SELECT count(*) FROM records") == 150


def test_second_process_is_told_the_file_is_in_use(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "held.duckdb"
    db = Database(path)
    code = (
        "import sys; sys.path.insert(0, '.');"
        "from components.store import Database, DatabaseInUse\n"
        f"try:\n    Database({str(path)!r})\nexcept DatabaseInUse as e:\n    print(e)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(tmp_path.parent.parent),
                         env={"PYTHONPATH": str(__import__("conftest").ROOT)}).stdout
    assert "is in use by process" in out
    db.close()
    assert issubclass(DatabaseInUse, DatabaseError)


def test_read_only_refuses_writes(tmp_path):
    path = tmp_path / "ro.duckdb"
    Database(path).close()
    db = Database(path, read_only=True)
    with pytest.raises(DatabaseError, match="read-only"):
        db.write(lambda cur: cur.execute("SELECT 1"))
    db.close()


def test_a_page_of_records_skips_rejected_rows_exactly(db, tmp_path):
    import json

    from components.ingest import ingest

    src = tmp_path / "p.jsonl"
    src.write_text("".join(json.dumps({"prompt": f"q{i}", "chosen": f"a{i}",
                                       "rejected": None if i % 7 == 3 else f"b{i}"}) + "\n" for i in range(100)))
    ingest(db, str(src), name="p")
    every = [r[0] for r in db.rows("SELECT row FROM records WHERE dataset = 'p' ORDER BY row")]
    assert len(every) == 86
    for offset in range(0, 90, 3):
        assert [r["row"] for r in catalogue.page(db, "p", offset, 7)] == every[offset:offset + 7]


INTERRUPTED_QUERY = """
import sys
from components.store import Database
db = Database(sys.argv[1])
print("ready", flush=True)
try:
    db.{method}("SELECT count(*) FROM range(100000000000) a WHERE a.range % 7 = 3")
except KeyboardInterrupt:
    print("KeyboardInterrupt", flush=True)
    sys.exit(130)
"""


@pytest.mark.parametrize("method", ["rows", "scalar", "arrow"])
def test_ctrl_c_inside_a_query_is_a_keyboard_interrupt(tmp_path, method):
    """DuckDB turns SIGINT during a query into RuntimeError("Query interrupted"); the database layer
    gives it back as KeyboardInterrupt, which every command stops on cleanly."""
    import signal
    import subprocess
    import sys
    import time

    from helpers import ROOT

    proc = subprocess.Popen([sys.executable, "-c", INTERRUPTED_QUERY.format(method=method), str(tmp_path / "q.duckdb")],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(1.0)  # the query is running: it takes minutes
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert (proc.returncode, out.strip()) == (130, "KeyboardInterrupt"), err


def test_interrupted_is_told_apart_from_other_errors():
    from components.store import interrupted, interruptible

    with pytest.raises(KeyboardInterrupt):
        with interruptible():
            raise RuntimeError("Query interrupted")
    with pytest.raises(RuntimeError, match="other"):
        with interruptible():
            raise RuntimeError("other")
    assert not interrupted(ValueError("Query interrupted"))


def test_the_write_that_records_an_interrupt_is_kept_when_the_same_interrupt_stops_it(tmp_path):
    """After Ctrl-C the watcher interrupts every running query a moment later, so it can stop the very
    UPDATE that marks the job interrupted; that write is done again, a new Ctrl-C is not swallowed."""
    from components.store import despite_interrupt

    db = Database(tmp_path / "w.duckdb")
    db.write(lambda cur: cur.execute("CREATE TABLE t (status VARCHAR)"))
    calls = []

    def finish():
        calls.append(1)
        if len(calls) == 1:  # the first try meets the interrupt, as the watcher's can
            def slow(cur):
                cur.execute("INSERT INTO t VALUES ('half')")
                threading.Timer(0.3, db.interrupt).start()
                cur.execute("SELECT count(*) FROM range(10000000000) a")
            return db.write(slow)
        return db.write(lambda cur: cur.execute("INSERT INTO t VALUES ('interrupted')"))

    despite_interrupt(finish)
    assert len(calls) == 2
    assert db.rows("SELECT status FROM t") == [("interrupted",)]  # the first try rolled back whole

    def pressed():
        raise KeyboardInterrupt  # Python's own: the user pressed Ctrl-C again
    with pytest.raises(KeyboardInterrupt):
        despite_interrupt(pressed)
    db.close()
