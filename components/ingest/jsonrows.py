"""JSON Lines and JSON arrays -> one Arrow table, one bad row at a time.

A library reader refuses a whole file for one row of the wrong type, and Arrow's JSON reader crashes
the process on one row nested 10,000 deep. So every row is first looked at as bytes -- its size, its
nesting depth (counted outside strings, before any parser sees it), UTF-8, whether it is an object
at all -- and a row that fails becomes an empty row carrying its reason and its raw text. The rest
go through Arrow's JSON reader in one call. When that reader still refuses (a value of another type
than the rest of its column, broken JSON), the rows are parsed one by one and each column keeps the
shape most of its rows have; the others are rejected as ``wrong type``.

>>> table = rows_table([b'{"a": "x"}', b'{"a": 5}', b'{"a": "y"}', b'[1]'])
>>> table.column("a").to_pylist(), table.column("__problem").to_pylist()
(['x', None, 'y', None], [None, 'wrong type: a is a number, not text', None, 'not a JSON object'])
"""

from __future__ import annotations

import io
import json
import re
from collections import Counter

import pyarrow as pa
import pyarrow.json as pa_json

from ..text import first_line

MAX_DEPTH = 100
"""Rows nested deeper than this (objects and arrays inside each other) are rejected unread."""

RAW_CHARS = 20_000
"""How much of a rejected row's text is kept beside its reason."""

NOT_JSON = ("not UTF-8", "not a JSON object", "invalid JSON")
"""Reasons (prefixes) saying a row is not JSON at all: a file with nothing else is not JSON lines."""

CHUNK = 1 << 24
"""Bytes handled in one call when splitting and checking large files."""

_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{},]', re.S)
_OPEN, _CLOSE, _COMMA = b"[{", b"]}", ord(",")


class JsonSourceError(ValueError):
    """The bytes are not JSON lines or a JSON array at all (the message says where)."""


def nesting_depth(item: bytes, stop: int = MAX_DEPTH) -> int:
    """How deep objects and arrays nest in ``item`` (brackets inside strings do not count); stops
    counting once past ``stop``.

    >>> nesting_depth(b'{"a": [1, {"b": "[[["}]}')
    3
    """
    depth = deepest = 0
    for m in _TOKEN.finditer(item):
        c = item[m.start()]
        if c in _OPEN:
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > stop:
                    break
        elif c in _CLOSE:
            depth -= 1
    return deepest


def _cuts(data: bytes, size: int = CHUNK) -> list[tuple[int, int]]:
    """``data`` cut into spans of about ``size`` bytes, each starting on a UTF-8 character: work on
    one span at a time keeps each call short, so other threads (labels) are not held up long."""
    spans, start = [], 0
    while start < len(data):
        end = min(start + size, len(data))
        while end < len(data) and 0x80 <= data[end] < 0xC0:  # a continuation byte: step back
            end -= 1
        spans.append((start, end))
        start = end
    return spans


def split_lines(data: bytes) -> list[bytes]:
    """The non-blank lines of JSON Lines text.

    >>> split_lines(b'{"a": 1}\\n\\n  \\n{"a": 2}\\r\\n')
    [b'{"a": 1}', b'{"a": 2}\\r']
    """
    lines: list[bytes] = []
    start = 0
    while start < len(data):
        end = data.find(b"\n", start + CHUNK)
        end = len(data) if end < 0 else end
        lines += [line for line in data[start:end].split(b"\n") if line and not line.isspace()]
        start = end + 1
    return lines


def split_array(data: bytes) -> list[bytes]:
    """The elements of a top-level JSON array, as bytes, without parsing them.

    >>> split_array(b' [{"a": "x,]"}, 5 ,[1, 2]] ')
    [b'{"a": "x,]"}', b' 5 ', b'[1, 2]']
    """
    items: list[bytes] = []
    depth, start, end = 0, None, None
    for m in _TOKEN.finditer(data):
        c = data[m.start()]
        if c in _OPEN:
            depth += 1
            if depth == 1:
                start = m.end()
        elif c in _CLOSE:
            depth -= 1
            if depth == 0:
                last = data[start:m.start()]
                if items or last.strip():
                    items.append(last)
                end = m.end()
                break
        elif c == _COMMA and depth == 1:
            items.append(data[start:m.start()])
            start = m.end()
    if end is None:
        raise JsonSourceError(f"the JSON array is not closed (the file ends inside it, after {len(items):,} elements)")
    if data[end:].strip():
        raise JsonSourceError(f"text after the JSON array's closing bracket (byte {end:,})")
    return items


def is_utf8(data: bytes) -> bool:
    """Whether ``data`` is valid UTF-8 (checked by Arrow, span by span, without copying it).

    >>> is_utf8("café".encode()), is_utf8("café".encode("latin-1"))
    (True, False)
    """
    spans = _cuts(data)
    offsets = pa.array([0] + [end for _, end in spans], pa.int64()).buffers()[1]
    strings = pa.Array.from_buffers(pa.large_string(), len(spans), [None, offsets, pa.py_buffer(data)])
    try:
        for i in range(len(spans)):
            strings.slice(i, 1).validate(full=True)
    except pa.ArrowInvalid:
        return False
    return True


def _raw(item: bytes) -> str:
    return item[: RAW_CHARS * 4].decode("utf-8", errors="replace")[:RAW_CHARS]


def _not_an_object(item: bytes) -> str:
    try:
        json.loads(item)
    except (ValueError, RecursionError) as err:
        return f"invalid JSON ({getattr(err, 'msg', first_line(err))})"
    return "not a JSON object"


def screen(items: list[bytes], max_bytes: int, utf8: bool = True) -> dict[int, tuple[str, str]]:
    """Rows rejected before any parser sees them: ``{index: (reason, raw text)}``.

    ``utf8`` says the bytes are already known to be valid UTF-8 (each row is checked otherwise).
    """
    problems: dict[int, tuple[str, str]] = {}
    for i, item in enumerate(items):
        if len(item) > max_bytes:
            reason = "too long"
        elif item.count(b"{") + item.count(b"[") > MAX_DEPTH and nesting_depth(item) > MAX_DEPTH:
            reason = "nested too deep"
        elif not utf8 and not is_utf8(item):
            reason = "not UTF-8"
        elif item[:1] != b"{" and item.lstrip()[:1] != b"{":
            reason = _not_an_object(item)
        else:
            continue
        problems[i] = (reason, _raw(item))
    return problems


# -- shapes: what Arrow needs every value of one column to share ----------------------------------


class _Conflict(Exception):
    pass


def _shape(v):
    """A value's shape: None (fits anything), 'bool', 'number', 'text', ('list', inner) or
    ('object', ((key, shape), ...))."""
    if v is None:
        return None
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "text"
    if isinstance(v, list):
        inner = None
        for x in v:
            inner = _merge(inner, _shape(x))
        return ("list", inner)
    return ("object", tuple(sorted((k, _shape(x)) for k, x in v.items())))


def _merge(a, b):
    if a is None or a == b:
        return b
    if b is None:
        return a
    if isinstance(a, tuple) and isinstance(b, tuple) and a[0] == b[0]:
        if a[0] == "list":
            return ("list", _merge(a[1], b[1]))
        fields = dict(a[1])
        for k, s in b[1]:
            fields[k] = _merge(fields.get(k), s)
        return ("object", tuple(sorted(fields.items())))
    raise _Conflict


def _describe(shape) -> str:
    """A shape in words, for the reason a row is rejected.

    >>> _describe(("list", "text")), _describe("number")
    ('a list of text', 'a number')
    """
    if isinstance(shape, tuple):
        if shape[0] == "object":
            return "an object"
        inner = {None: "", "text": " of text", "number": " of numbers", "bool": " of booleans"}
        return "a list" + inner.get(shape[1], " of lists" if shape[1][0] == "list" else " of objects")
    return {"text": "text", "number": "a number", "bool": "a boolean"}.get(shape, str(shape))


def _vote(rows: list[dict | None], problems: dict[int, tuple[str, str]], items: list[bytes]) -> None:
    """Keep, in each column, the values whose shape agrees with most rows; null the others and
    reject their rows as ``wrong type``."""
    shapes: dict[str, dict[int, object]] = {}
    for i, row in enumerate(rows):
        for key, value in (row or {}).items():
            try:
                shapes.setdefault(key, {})[i] = _shape(value)
            except _Conflict:
                shapes[key][i] = ("mixed",)
    for key, by_row in shapes.items():
        accepted, bad = None, set()
        for shape, _ in Counter(s for s in by_row.values() if s is not None).most_common():
            try:
                if shape == ("mixed",):
                    raise _Conflict
                accepted = _merge(accepted, shape)
            except _Conflict:
                bad.add(shape)
        for i, shape in by_row.items():
            if shape in bad:
                rows[i][key] = None
                if i not in problems:
                    if shape == ("mixed",) or accepted is None:
                        reason = f"wrong type: {key} mixes values of different types"
                    else:
                        reason = f"wrong type: {key} is {_describe(shape)}, not {_describe(accepted)}"
                    problems[i] = (reason, _raw(items[i]))


class _Joined(io.RawIOBase):
    """The rows one per line, as a stream joined a few thousand rows at a time (never one big copy)."""

    def __init__(self, rows: list[bytes], group: int = 4096):
        self.rows, self.group, self.next, self.part, self.pos = rows, group, 0, b"", 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        view, n = memoryview(buffer).cast("B"), 0
        while n < len(view):
            if self.pos == len(self.part):
                if self.next >= len(self.rows):
                    break
                self.part = b"\n".join(self.rows[self.next:self.next + self.group]) + b"\n"
                self.next, self.pos = self.next + self.group, 0
            k = min(len(view) - n, len(self.part) - self.pos)
            view[n:n + k] = memoryview(self.part)[self.pos:self.pos + k]
            n, self.pos = n + k, self.pos + k
        return n


def _arrow(items: list[bytes], problems: dict, multiline: bool) -> pa.Table:
    body = [b"{}" if i in problems else item for i, item in enumerate(items)] if problems else items
    longest = max(map(len, body), default=0)
    options = pa_json.ReadOptions(block_size=min(max(1 << 22, 2 * longest + 64), (1 << 31) - 1))
    return pa_json.read_json(_Joined(body), read_options=options,
                             parse_options=pa_json.ParseOptions(newlines_in_values=multiline))


def _one_by_one(items: list[bytes], problems: dict[int, tuple[str, str]]) -> list[bytes]:
    """Parse each row on its own; reject broken ones; return the rows re-serialized, shapes agreed."""
    rows: list[dict | None] = []
    for i, item in enumerate(items):
        row = None
        if i not in problems:
            try:
                row = json.loads(item)
            except ValueError as err:
                problems[i] = (f"invalid JSON ({getattr(err, 'msg', first_line(err))})", _raw(item))
            else:
                if not isinstance(row, dict):
                    problems[i], row = ("not a JSON object", _raw(item)), None
        rows.append(row)
    _vote(rows, problems, items)
    return [b"{}" if row is None else json.dumps(row).encode() for row in rows]


def rows_table(items: list[bytes], problems: dict[int, tuple[str, str]] | None = None,
               max_bytes: int = 1 << 26, multiline: bool = False, utf8: bool = False) -> pa.Table:
    """The rows ``items`` (each the bytes of one JSON value) as a table, one row per item.

    Rows that cannot be read are all-null and carry ``__problem`` (the reason) and ``__raw`` (their
    text); those columns are present only when some row has a problem. ``multiline`` allows newlines
    inside a row (elements of a pretty-printed array).
    """
    problems = dict(problems or {})
    problems.update(screen(items, max_bytes, utf8=utf8))
    try:
        table = _arrow(items, problems, multiline)
    except pa.ArrowInvalid:
        rewritten = _one_by_one(items, problems)
        try:
            table = _arrow(rewritten, problems, multiline=False)
        except pa.ArrowInvalid as err:
            raise JsonSourceError(f"cannot read the rows: {first_line(err)}") from None
    if problems:
        reasons = [None] * len(items)
        raws = [None] * len(items)
        for i, (reason, raw) in problems.items():
            reasons[i], raws[i] = reason, raw
        table = table.append_column("__problem", pa.array(reasons, pa.string()))
        table = table.append_column("__raw", pa.array(raws, pa.string()))
    return table


def not_json(reasons: dict[str, int]) -> bool:
    """Whether every rejected reason says the row is not JSON at all."""
    return all(r.startswith(NOT_JSON) for r in reasons)
