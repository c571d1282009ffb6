"""What the indexer reads: the rows of a dataset as JSON documents (``documents``), a batch at a time,
read ahead on a thread of their own (``ahead``) so that Lucene never waits for the database."""

from __future__ import annotations

import queue
import threading
from typing import Iterator

from ..store import Database
from . import numbers


_EMPTY_FIELD = r',"(?:prompt|chosen|rejected|final|[nm]_[A-Za-z0-9_]+)":""'
"""A field left empty (a document's sides, a number a row lacks) is left out of the JSON: indexing an
empty field still costs the analyzer a pass (a fifth of the build of a documents dataset). Inside a
JSON string every quote is escaped, so the pattern only ever meets a key."""


def documents(db: Database, dataset: str, metadata_fields: dict[str, str], batch_rows: int = 20_000) -> Iterator[list[str]]:
    """The rows of ``dataset`` as JSON documents for the indexer, ``batch_rows`` at a time.

    Each document has the Lucene ``id`` ``DATASET/ROW`` (the row zero-padded, so that ties in
    score sort in source order), the text fields ``contents`` (everything), ``prompt``,
    ``chosen``, ``rejected`` and ``final`` (the last user turn and the last turn of each
    response), and the range-filter fields
    (``numbers.BUILTIN_SQL``, and one per entry of ``metadata_fields``: {field: metadata column}),
    each holding its number as one sortable token (``numbers.number_sql``).
    """
    exprs = dict(numbers.BUILTIN_SQL) | {f: numbers.metadata_sql(c) for f, c in metadata_fields.items()}
    keys = ", ".join(f"'{name}': {numbers.number_sql(expr)}" for name, expr in exprs.items())
    sql = f"""
        WITH r AS (
            SELECT row, text, score_chosen, score_rejected, metadata,
                   nullif(array_to_string(list_transform(prompt, lambda m: m.content), '\n\n'), '') AS p,
                   nullif(array_to_string(list_transform(chosen, lambda m: m.content), '\n\n'), '') AS c,
                   nullif(array_to_string(list_transform(rejected, lambda m: m.content), '\n\n'), '') AS rj,
                   concat_ws('\n\n', list_filter(prompt, lambda m: m.role = 'user')[-1].content,
                             chosen[-1].content, rejected[-1].content) AS fin
            FROM records WHERE dataset = $dataset
        ), d AS (
            SELECT *, concat_ws('\n\n', nullif(text, ''), p, c, rj) AS contents FROM r
        )
        SELECT regexp_replace(to_json({{
            'id': $dataset || '/' || lpad(row::VARCHAR, 12, '0'),
            'contents': contents, 'prompt': coalesce(p, ''), 'chosen': coalesce(c, ''),
            'rejected': coalesce(rj, ''), 'final': fin, {keys}
        }})::VARCHAR, '{_EMPTY_FIELD}', '', 'g') AS doc
        FROM d"""  # in the table's order, which is row order; sorting 10M rows first cost 8 s and 5 GB
    cur = db.cursor().cursor()  # its own cursor: the stream stays open while the caller queries
    try:
        for batch in cur.sql(sql, params={"dataset": dataset}).to_arrow_reader(batch_rows):
            yield batch.column(0).to_pylist()
    finally:
        cur.close()


def ahead(batches: Iterator[list[str]], depth: int = 2) -> Iterator[list[str]]:
    """``batches``, read ``depth`` ahead on a thread of its own: the database writes the next batch
    of documents while Lucene indexes this one, so the indexing threads never wait for it. Leaving
    the loop early stops the reader (and closes its cursor)."""
    ready: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    end = object()

    def read() -> None:
        try:
            for batch in batches:
                while not stop.is_set():
                    try:
                        ready.put(batch, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    break
        except BaseException as err:  # handed to the loop, raised there
            ready.put(err)
        finally:
            batches.close()
            ready.put(end)

    reader = threading.Thread(target=read, name="index-documents", daemon=True)
    reader.start()
    try:
        while (item := ready.get()) is not end:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while reader.is_alive():  # let it see the stop and finish its put
            try:
                ready.get(timeout=0.1)
            except queue.Empty:
                pass
        reader.join()
