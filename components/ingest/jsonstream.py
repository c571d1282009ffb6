"""JSON Lines and JSON arrays read as a stream: bounded memory whatever the file expands to.

A file (gzip or not, by content) is decompressed a few megabytes at a time (``decompressed``: zlib
with a cap on each call's output, so a gzip bomb never expands in one piece), cut into rows as it
comes (``line_items`` for JSON Lines, ``array_items`` for the elements of a top-level JSON array),
and a row longer than the size cap is kept only as its first bytes, marked too long, the rest
skipped as it streams by. Rows are parsed a batch at a time (``jsonrows.rows_table``, at most
``BATCH_BYTES`` of JSON or ``BATCH_ROWS`` rows) and each parsed batch is written to an Arrow file in
the ingest's scratch folder, so only one batch is in memory at once. ``JsonRows`` then gives the
schema every batch agrees on, the row count and the batches again for staging. A column whose type
differs between batches keeps the type most of its values have; the other batches' values are
rejected as ``wrong type``, as within one batch.

>>> list(line_items([b'{"a": 1}\\n\\n{"a"', b': 2}\\n'], max_bytes=100))
[[b'{"a": 1}'], [b'{"a": 2}']]
"""

from __future__ import annotations

import codecs
import json
import re
import zlib
from collections import Counter
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator

import pyarrow as pa
import pyarrow.compute as pc

from ..text import first_line
from . import jsonrows

GZIP_MAGIC = b"\x1f\x8b"
READ_BYTES = 1 << 20
"""Compressed (or plain) bytes read from the file at once."""
CHUNK_OUT = 4 << 20
"""Decompressed bytes one zlib call may give, at most: a bomb expands a chunk at a time."""
BATCH_BYTES = 64 << 20
"""Bytes of JSON rows parsed into one Arrow batch, about (a chunk more at most)."""
BATCH_ROWS = 250_000
"""Rows parsed into one Arrow batch, about."""
STAGE_BYTES = 256 << 20
"""Arrow bytes of one batch handed to staging, at most (several parsed batches joined)."""
RAW_BYTES = jsonrows.RAW_CHARS * 4
"""Bytes kept of a row too long to read: enough for its raw text beside the reason."""

_NOT_SPACE = re.compile(rb"\S")
_TOKEN = re.compile(rb'["\[\]{},]')
_STRING_STOP = re.compile(rb'["\\]')
_QUOTE, _BACKSLASH, _COMMA = ord('"'), ord("\\"), ord(",")


class FileError(jsonrows.JsonSourceError):
    """A file that cannot be read as JSON rows; the message starts with its path."""

    def __init__(self, path: Path, what: str):
        super().__init__(f"{path}: {what}")


class TooLong(bytes):
    """The first bytes of a row over the size cap (the rest was skipped unread)."""


# -- bytes ------------------------------------------------------------------------------------------


def decompressed(f: BinaryIO, path: Path, size: int) -> Iterator[bytes]:
    """The bytes of the open file ``f``, gunzipped when they are gzip (one member after another), in
    pieces of at most ``CHUNK_OUT``. A truncated or corrupt stream raises FileError naming the
    compressed byte where it broke and how many lines came out before."""
    data = f.read(READ_BYTES)
    if not data.startswith(GZIP_MAGIC):
        while data:
            yield data
            data = f.read(READ_BYTES)
        return
    pos = lines = 0  # compressed bytes consumed; newlines given out

    def broken(at: int, what: str) -> FileError:
        return FileError(path, f"the gzip data is {what} near byte {min(at, size):,} of {size:,}, "
                               f"after {lines:,} complete lines")

    while data[:2] == GZIP_MAGIC:
        stream = zlib.decompressobj(wbits=31)
        while True:
            try:
                out = stream.decompress(data, CHUNK_OUT)
            except zlib.error as err:
                raise broken(pos, f"corrupt ({first_line(err)})") from None
            if out:
                lines += out.count(b"\n")
                yield out
            if stream.eof:
                break
            if stream.unconsumed_tail:
                pos += len(data) - len(stream.unconsumed_tail)
                data = stream.unconsumed_tail
                continue
            pos += len(data)
            data = f.read(READ_BYTES)
            if not data:
                raise broken(size, "truncated (the file ends inside the gzip stream)")
        pos += len(data) - len(stream.unused_data)
        data = stream.unused_data
        if len(data) < 2:
            data += f.read(READ_BYTES)


def opening(chunks: Iterable[bytes]) -> tuple[str, Iterator[bytes]]:
    """What the bytes hold, judged by their first character (``"empty"``, ``"array"`` or
    ``"lines"``), and the bytes again without a leading UTF-8 byte-order mark."""
    chunks = iter(chunks)
    held: list[bytes] = []
    first = None
    for chunk in chunks:
        if not held and chunk.startswith(codecs.BOM_UTF8):  # some Windows tools write one
            chunk = chunk[len(codecs.BOM_UTF8):]
        held.append(chunk)
        m = _NOT_SPACE.search(chunk)
        if m is not None:
            first = chunk[m.start()]
            break
        if sum(map(len, held)) > CHUNK_OUT:
            held = [b""]  # only spaces so far: nothing worth keeping
    kind = "empty" if first is None else "array" if first == ord("[") else "lines"

    def again() -> Iterator[bytes]:
        yield from held
        yield from chunks

    return kind, again()


class _Row:
    """The bytes of one row as it streams in: kept whole up to ``max_bytes``, then only its start."""

    def __init__(self, max_bytes: int):
        self.max, self.parts, self.size, self.head, self.blank = max_bytes, [], 0, None, True

    def add(self, piece: bytes) -> None:
        if not piece:
            return
        self.size += len(piece)
        if self.head is None:
            self.parts.append(piece)
            if self.size > self.max:
                whole = b"".join(self.parts)
                self.head, self.blank, self.parts = whole[:RAW_BYTES], whole.isspace(), []
        elif self.blank:
            self.blank = _NOT_SPACE.search(piece) is None

    def take(self) -> bytes:
        """The row so far (a TooLong start when over the cap; b"" when it was only spaces)."""
        if self.head is None:
            out = self.parts[0] if len(self.parts) == 1 else b"".join(self.parts)
        else:
            out = b"" if self.blank else TooLong(self.head)
        self.parts, self.size, self.head, self.blank = [], 0, None, True
        return out


def line_items(chunks: Iterable[bytes], max_bytes: int) -> Iterator[list[bytes]]:
    """The non-blank lines of JSON Lines bytes, a list per chunk; a line over ``max_bytes`` as TooLong."""
    row = _Row(max_bytes)
    for chunk in chunks:
        parts = chunk.split(b"\n")
        row.add(parts[0])
        if len(parts) == 1:
            continue
        first = row.take()
        out = [first] if first and not first.isspace() else []
        out += [p if len(p) <= max_bytes else TooLong(p[:RAW_BYTES])
                for p in parts[1:-1] if p and not p.isspace()]
        row.add(parts[-1])
        yield out
    last = row.take()
    if last and not last.isspace():
        yield [last]


def array_items(chunks: Iterable[bytes], max_bytes: int) -> Iterator[list[bytes]]:
    """The elements of a top-level JSON array, as bytes without parsing them, a list per chunk (an
    element over ``max_bytes`` as TooLong); JsonSourceError when the array is not closed or text
    follows it."""
    depth, in_string, escaped, closed = 0, False, False, None
    row, count, offset = _Row(max_bytes), 0, 0
    for chunk in chunks:
        if closed is not None:
            if _NOT_SPACE.search(chunk):
                raise jsonrows.JsonSourceError(f"text after the JSON array's closing bracket (byte {closed:,})")
            continue
        out: list[bytes] = []
        pos, seg, n = 0, 0, len(chunk)
        while pos < n:
            if escaped:
                pos, escaped = pos + 1, False
                continue
            if in_string:
                m = _STRING_STOP.search(chunk, pos)
                if m is None:
                    break
                if chunk[m.start()] == _BACKSLASH:
                    pos, escaped = m.start() + 2, m.start() + 1 >= n
                else:
                    pos, in_string = m.end(), False
                continue
            m = _TOKEN.search(chunk, pos)
            if m is None:
                break
            c, pos = chunk[m.start()], m.end()
            if c == _QUOTE:
                in_string = True
            elif c in b"[{":
                depth += 1
                if depth == 1:
                    seg = pos
            elif c in b"]}":
                depth -= 1
                if depth == 0:
                    row.add(chunk[seg:m.start()])
                    last = row.take()
                    if count or out or last.strip():
                        out.append(last)
                    closed = offset + pos
                    if _NOT_SPACE.search(chunk, pos):
                        raise jsonrows.JsonSourceError(f"text after the JSON array's closing bracket (byte {closed:,})")
                    break
            elif c == _COMMA and depth == 1:
                row.add(chunk[seg:m.start()])
                out.append(row.take())
                seg = pos
        if closed is None and depth >= 1:
            row.add(chunk[seg:])
        offset += n
        count += len(out)
        yield out
    if closed is None:
        raise jsonrows.JsonSourceError(
            f"the JSON array is not closed (the file ends inside it, after {count:,} elements)")


# -- batches ----------------------------------------------------------------------------------------


def nothing_loads(rows: int, reasons: dict[str, int]) -> str:
    """Why an ingest loads nothing, in one line.

    >>> nothing_loads(3, {"nested too deep": 2, "too long": 1})
    'none of the 3 rows can be loaded (2 nested too deep, 1 too long)'
    """
    counts = ", ".join(f"{n:,} {reason}" for reason, n in sorted(reasons.items(), key=lambda kv: -kv[1]))
    return f"none of the {rows:,} rows can be loaded ({counts})"


def parse_batch(items: list[bytes], max_bytes: int, multiline: bool) -> pa.Table:
    """One batch of rows as Arrow (``jsonrows.rows_table``), too-long rows rejected with their start."""
    problems = {i: ("too long", jsonrows._raw(it)) for i, it in enumerate(items) if type(it) is TooLong}
    body = [b"{}" if i in problems else it for i, it in enumerate(items)] if problems else items
    utf8 = jsonrows.is_utf8(b"\n".join(body))
    return jsonrows.rows_table(body, problems, max_bytes=max_bytes, multiline=multiline, utf8=utf8)


def _shape(t: pa.DataType):
    """An Arrow type as ``jsonrows``' shapes, to say in words what a rejected value was."""
    if pa.types.is_null(t):
        return None
    if pa.types.is_boolean(t):
        return "bool"
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        return "number"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_timestamp(t):
        return "text"
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return ("list", _shape(t.value_type))
    if pa.types.is_struct(t):
        return ("object", tuple(sorted((f.name, _shape(f.type)) for f in t)))
    return str(t)


def _unify(types: list[pa.DataType]) -> pa.DataType:
    return pa.unify_schemas([pa.schema([("x", t)]) for t in types], promote_options="permissive").field("x").type


class JsonRows:
    """JSON Lines or JSON array files as rows for staging (the interface of ``sources.TableRows``):
    read and parsed once, a batch at a time, into Arrow files under ``scratch``."""

    def __init__(self, files: list[Path], max_bytes: int, scratch: Path):
        self.parts: list[tuple[Path, int]] = []
        schemas: list[pa.Schema] = []
        values: list[dict[str, int]] = []  # per part: non-null values of each column
        self.reasons: Counter = Counter()  # rows rejected while parsing, by reason
        self.num_rows = 0
        array = False
        for f in files:
            with open(f, "rb") as fh:
                kind, chunks = opening(decompressed(fh, f, f.stat().st_size))
                if kind == "empty":
                    if len(files) == 1:
                        raise FileError(f, "empty file")
                    continue
                array = array or kind == "array"
                items = array_items(chunks, max_bytes) if kind == "array" else line_items(chunks, max_bytes)
                batch: list[bytes] = []
                size = 0
                try:
                    for got in items:
                        batch += got
                        size += sum(map(len, got))
                        if size >= BATCH_BYTES or len(batch) >= BATCH_ROWS:
                            self._spill(scratch, parse_batch(batch, max_bytes, kind == "array"), schemas, values)
                            batch, size = [], 0
                    if batch:
                        self._spill(scratch, parse_batch(batch, max_bytes, kind == "array"), schemas, values)
                except FileError:
                    raise
                except jsonrows.JsonSourceError as err:
                    raise FileError(f, str(err)) from None
        where = files[0] if len(files) == 1 else files[0].parent
        if not self.num_rows:
            raise FileError(where, "empty file")
        if sum(self.reasons.values()) == self.num_rows:
            if jsonrows.not_json(self.reasons):
                what = "no element of the array is" if array else "no line is"
                raise FileError(files[0], f"not JSON lines ({what} a JSON object)")
            raise FileError(files[0], nothing_loads(self.num_rows, self.reasons))
        self.schema, self._wrong, self._cast = self._agree(schemas, values)

    def _spill(self, scratch: Path, table: pa.Table, schemas: list, values: list) -> None:
        path = scratch / f"json-{len(self.parts):06d}.arrow"
        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
        self.parts.append((path, table.num_rows))
        self.num_rows += table.num_rows
        schemas.append(table.schema)
        values.append({c: len(table) - table.column(c).null_count for c in table.column_names})
        if "__problem" in table.column_names:
            for v in pc.value_counts(table.column("__problem").drop_null()):
                self.reasons[v["values"].as_py()] += v["counts"].as_py()

    @staticmethod
    def _agree(schemas: list[pa.Schema], values: list[dict[str, int]]):
        """The schema all parts share, and for each part the columns whose values it must reject
        (``{part: {column: (its type, the agreed type)}}``): where parts disagree on a column's type,
        the type most values have wins, as ``jsonrows`` decides within one batch."""
        try:
            return pa.unify_schemas(schemas, promote_options="permissive"), {}, {}
        except (pa.ArrowTypeError, pa.ArrowInvalid):
            pass
        wrong: dict[int, dict[str, tuple]] = {}
        cast: dict[int, list[str]] = {}
        agreed: dict[str, pa.DataType] = {}
        for name in dict.fromkeys(n for s in schemas for n in s.names):
            found = [(i, s.field(name).type) for i, s in enumerate(schemas) if name in s.names]
            try:
                agreed[name] = _unify([t for _, t in found])
                continue
            except (pa.ArrowTypeError, pa.ArrowInvalid):
                pass
            if all(_shape(t) in (None, "text") for _, t in found):  # dates in one batch, other text in another
                agreed[name] = pa.string()
                for i, t in found:
                    if pa.types.is_timestamp(t):
                        cast.setdefault(i, []).append(name)
                continue
            weight: Counter = Counter()
            for i, t in found:
                weight[t] += values[i].get(name, 0)
            accepted, bad = None, set()
            for t, _ in weight.most_common():
                try:
                    accepted = t if accepted is None else _unify([accepted, t])
                except (pa.ArrowTypeError, pa.ArrowInvalid):
                    bad.add(t)
            agreed[name] = accepted
            for i, t in found:
                if t in bad:
                    wrong.setdefault(i, {})[name] = (t, accepted)
        if wrong:
            agreed.setdefault("__problem", pa.string())
            agreed.setdefault("__raw", pa.string())
        return pa.schema(list(agreed.items())), wrong, cast

    def _read(self, i: int) -> pa.Table:
        with pa.OSFile(str(self.parts[i][0]), "rb") as source:
            part = pa.ipc.open_file(source).read_all()
        for name in self._cast.get(i, []):
            part = part.set_column(part.schema.get_field_index(name), name, part.column(name).cast(pa.string()))
        if i in self._wrong:
            part = self._reject_wrong(part, self._wrong[i])
        if not part.schema.equals(self.schema):
            part = pa.concat_tables([self.schema.empty_table(), part], promote_options="permissive")
        return part

    @staticmethod
    def _reject_wrong(part: pa.Table, columns: dict[str, tuple]) -> pa.Table:
        rows = part.drop_columns([c for c in ("__problem", "__raw") if c in part.column_names]).to_pylist()
        reasons = part.column("__problem").to_pylist() if "__problem" in part.column_names else [None] * len(part)
        raws = part.column("__raw").to_pylist() if "__raw" in part.column_names else [None] * len(part)
        for name, (t, accepted) in columns.items():
            for i, value in enumerate(part.column(name).to_pylist()):
                if value is not None and reasons[i] is None:
                    reasons[i] = f"wrong type: {name} is {jsonrows._describe(_shape(t))}, " \
                                 f"not {jsonrows._describe(_shape(accepted))}"
                    raws[i] = json.dumps(rows[i], default=str, ensure_ascii=False)[:jsonrows.RAW_CHARS]
            part = part.set_column(part.schema.get_field_index(name), name, pa.nulls(len(part), accepted))
        part = part.drop_columns([c for c in ("__problem", "__raw") if c in part.column_names])
        return part.append_column("__problem", pa.array(reasons, pa.string())).append_column(
            "__raw", pa.array(raws, pa.string()))

    def head(self, n: int) -> pa.Table:
        return self._read(0).slice(0, n)

    def batches(self, rows: int) -> Iterator[pa.Table]:
        """The parsed batches joined up to ``rows`` rows (and ``STAGE_BYTES``), each with ``__row``."""
        start, held, count = 0, [], 0
        for i in range(len(self.parts)):
            part = self._read(i)
            if held and (count + part.num_rows > rows or sum(t.nbytes for t in held) + part.nbytes > STAGE_BYTES):
                yield self._numbered(held, start)
                start, held, count = start + count, [], 0
            held.append(part)
            count += part.num_rows
        if held:
            yield self._numbered(held, start)

    @staticmethod
    def _numbered(parts: list[pa.Table], start: int) -> pa.Table:
        table = pa.concat_tables(parts) if len(parts) > 1 else parts[0]
        return table.append_column("__row", pa.array(range(start, start + table.num_rows), pa.int64()))
