"""Small text helpers used across the app, each written once."""

from __future__ import annotations

import sys
from datetime import datetime, timezone


def clip(text: str | None, n: int = 120) -> str:
    """``text`` on one line, cut to ``n`` characters with an ellipsis.

    >>> clip("a  long\\ntext", 8)
    'a long …'
    """
    text = " ".join((text or "").split())
    return text if len(text) <= n else text[: n - 1] + "…"


def first_line(err: BaseException | str, limit: int = 300) -> str:
    """The first line of an error's message (its class name when the message is empty).

    >>> first_line(ValueError("bad value\\nmore detail"))
    'bad value'
    >>> first_line(KeyError())
    'KeyError'
    """
    text = str(err).strip()
    if not text and isinstance(err, BaseException):
        text = type(err).__name__
    return text.splitlines()[0][:limit] if text else ""


def utc_now() -> datetime:
    """Now, in UTC, as a naive timestamp (what DuckDB TIMESTAMP columns hold)."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def sql_literal(text: str) -> str:
    """``text`` as a quoted SQL string literal.

    >>> sql_literal("it's")
    "'it''s'"
    """
    return "'" + str(text).replace("'", "''") + "'"


def fail(err: BaseException | str) -> int:
    """Tell the user why a command stopped, in one line on standard error; the command's exit code."""
    print(f"error: {err}", file=sys.stderr)
    return 1
