"""Staging: normalized rows land beside the live data without holding the app's write lock.

An ingest normalizes its rows into ``records`` and ``rejects`` under a staging key -- a value of the
``dataset`` column that no dataset name can take (``~staging:<pid>:<id>``), so no reader of a dataset
ever sees them -- in transactions of its own cursor, while labels and every other write go on. Then
``Database.replace_dataset`` renames the staged rows to the dataset in one short transaction under
the write lock: that swap is what makes the ingest atomic. A failed staging deletes what it staged;
rows staged by a process that was killed before the swap are removed by the next ingest (one process
owns a database file, so any other process's staging key is left over).
"""

from __future__ import annotations

import os
import uuid
from typing import Callable, Iterable

import duckdb
import pyarrow as pa

from .. import formats
from ..store import Database
from ..text import sql_literal

PREFIX = "~staging:"
"""Staging keys start with this; a dataset name cannot (names.DATASET_NAME)."""


def new_key() -> str:
    return f"{PREFIX}{os.getpid()}:{uuid.uuid4().hex[:12]}"


BATCH_ROWS = 1_000_000
"""Rows staged per transaction, bounding one transaction's size. Large on purpose: DuckDB checkpoints
after each large commit, other commits (labels) wait for that checkpoint, and a checkpoint costs
about as much for 50,000 rows as for 300,000 -- fewer, larger batches stall labels least."""


def stage(db: Database, normalize: Callable[[str], str], rows: "pa.Table | Iterable[pa.Table]",
          batch_rows: int = BATCH_ROWS, progress: Callable[[int], None] | None = None) -> str:
    """Normalize ``rows`` into records and rejects under a new staging key, on this thread's cursor
    and outside the write lock, one transaction a batch; return the key. If it fails, what it
    staged is deleted and the error raised.

    ``rows`` is a table (with ``__row``), cut into batches of ``batch_rows``, or batches already
    cut (each with ``__row``, as ``sources.TableRows.batches`` gives them): only one is in memory at
    a time. ``normalize(relation)`` is the SELECT over a relation of source rows
    (``formats.select_sql``). ``progress(rows staged so far)`` is called after each batch. The
    caller then writes the staged rows into the database file (``settle``) before the swap.
    """
    if isinstance(rows, pa.Table):
        table = rows
        rows = (table.slice(start, batch_rows) for start in range(0, max(table.num_rows, 1), batch_rows))
    key = new_key()
    done = 0
    try:
        for batch in rows:
            _stage_batch(db, normalize, batch, key)
            done += batch.num_rows
            if progress is not None:
                progress(done)
    except BaseException:
        discard(db, [key])
        raise
    return key


def _stage_batch(db: Database, normalize: Callable[[str], str], table: pa.Table, key: str) -> None:
    token = uuid.uuid4().hex[:12]
    src, left_out = f"_ingest_src_{token}", f"_ingest_left_out_{token}"
    first = table.column("__row")[0].as_py() if table.num_rows else 0
    cur = db.cursor()
    cur.register(src, table)
    try:
        cur.execute("BEGIN TRANSACTION")
        try:
            # one normalization pass lands the good rows, in source order ...
            cur.execute(
                f"""INSERT INTO records
                    SELECT ?, row, prompt, chosen, rejected, text, source_id, score_chosen, score_rejected, metadata
                    FROM ({normalize(src)}) WHERE problem IS NULL""",
                [key],
            )
            # ... and a second one, over just the rows of this batch that did not land, keeps their reasons
            cur.execute(
                f"CREATE TEMP VIEW {left_out} AS SELECT * FROM {src} WHERE __row NOT IN "
                f"(SELECT row FROM records WHERE dataset = {sql_literal(key)} AND row >= {int(first)})"
            )
            cur.execute(
                f"INSERT INTO rejects SELECT ?, row, problem, raw FROM ({normalize(left_out)}) ORDER BY row", [key])
            cur.execute(f"DROP VIEW {left_out}")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        cur.execute("COMMIT")
    finally:
        cur.unregister(src)


def settle(db: Database) -> None:
    """Write what was just staged into the database file now, outside the write lock, so that the
    swap's commit does not have to (DuckDB checkpoints a large write at the next commit). Skipped
    when another write transaction is open at that moment: the swap then checkpoints instead."""
    try:
        db.cursor().execute("CHECKPOINT")
    except duckdb.TransactionException:
        pass


def counts(db: Database, key: str) -> tuple[int, dict[str, int], int]:
    """Rows staged under ``key``: (loaded, {reason: rejected}, pairs with an empty side)."""
    loaded, empty = db.one(
        f"SELECT count(*), count(*) FILTER (WHERE {formats.EMPTY_SIDE_SQL}) FROM records WHERE dataset = ?", [key])
    reasons = dict(db.rows(
        "SELECT reason, count(*) FROM rejects WHERE dataset = ? GROUP BY 1 ORDER BY 2 DESC, 1", [key]))
    return loaded, reasons, empty


def discard(db: Database, keys: list[str]) -> None:
    """Delete what was staged under ``keys``."""
    if keys:
        db.write(lambda cur: [cur.execute(f"DELETE FROM {t} WHERE list_contains(?, dataset)", [keys])
                              for t in ("records", "rejects")])


def leftovers(db: Database) -> list[str]:
    """Staging keys of other processes: rows a killed ingest staged and never swapped in."""
    keys = db.rows(
        "SELECT DISTINCT dataset FROM records WHERE starts_with(dataset, ?) "
        "UNION SELECT DISTINCT dataset FROM rejects WHERE starts_with(dataset, ?)", [PREFIX, PREFIX])
    mine = f"{PREFIX}{os.getpid()}:"
    return sorted(k for (k,) in keys if not k.startswith(mine))


def empty_side_counts(db: Database) -> dict[str, int]:
    """Pairs with an empty side in each dataset that has some (``formats.EMPTY_SIDE_SQL``)."""
    return dict(db.rows(
        f"SELECT dataset, count(*) FROM records WHERE dataset IN (SELECT name FROM datasets WHERE kind = 'pairs') "
        f"AND {formats.EMPTY_SIDE_SQL} GROUP BY dataset"))
