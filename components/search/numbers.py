"""Range filters: how a number is indexed, in SQL (building an index) and in Python (searching).

A number is indexed as one token of WIDTH digits: floor(value * SCALE) clamped to +-LIMIT and
shifted by OFFSET, so the order of the tokens is the order of the numbers and a Lucene term range is
a numeric range (to 1e-6, for |value| up to 4e12). ``encode_number`` and ``number_sql`` are built
from the same constants and give the same tokens:

>>> import duckdb
>>> values = [0, 8.5, -3.25, 10, 1e6, -1e30, 1e30, 0.1 + 0.2]
>>> columns = ", ".join(number_sql(f"{float(v)!r}::DOUBLE") for v in values)
>>> list(duckdb.sql(f"SELECT {columns}").fetchall()[0]) == [encode_number(v) for v in values]
True
>>> encode_number(8.5) < encode_number(10) < encode_number(1e6)
True
>>> duckdb.sql(f"SELECT {number_sql('NULL::DOUBLE')}, {number_sql('0::DOUBLE / 0')}").fetchall()
[('', '')]
"""

from __future__ import annotations

import hashlib
import math
import re

SCALE = 10**6
LIMIT = 4 * 10**18
OFFSET = 5 * 10**18
WIDTH = 19
LOWEST = "0" * WIDTH  # below every token
HIGHEST = "9" * WIDTH  # above every token

BUILTIN = {
    "length": "n_length",
    "length_prompt": "n_length_prompt",
    "length_chosen": "n_length_chosen",
    "length_rejected": "n_length_rejected",
    "score_chosen": "n_score_chosen",
    "score_rejected": "n_score_rejected",
    "margin": "n_margin",
}
"""Range filters every index has: {filter name: Lucene field}. Numeric metadata columns add
``meta:COLUMN`` filters (see ``metadata_field``)."""

LABELS = {
    "length": "length (characters)",
    "length_prompt": "prompt length (characters)",
    "length_chosen": "chosen length (characters)",
    "length_rejected": "rejected length (characters)",
    "score_chosen": "score of chosen",
    "score_rejected": "score of rejected",
    "margin": "score margin (chosen - rejected)",
}

BUILTIN_SQL = {
    "n_length": "length(contents)::DOUBLE",
    "n_length_prompt": "length(p)::DOUBLE",
    "n_length_chosen": "length(c)::DOUBLE",
    "n_length_rejected": "length(rj)::DOUBLE",
    "n_score_chosen": "score_chosen::DOUBLE",
    "n_score_rejected": "score_rejected::DOUBLE",
    "n_margin": "(score_chosen - score_rejected)::DOUBLE",
}
"""{Lucene field: the DOUBLE it holds} over a record (``contents``: all of its text; ``p``, ``c``,
``rj``: the messages of the prompt, chosen and rejected sides, NULL for a side a record lacks)."""


def encode_number(value: float) -> str:
    """The range-filter token of ``value``."""
    x = math.floor(float(value) * SCALE)
    x = max(-LIMIT, min(LIMIT, x))
    return str(x + OFFSET).zfill(WIDTH)


def number_sql(expr: str) -> str:
    """SQL turning the DOUBLE ``expr`` into its range-filter token ('' for NULL, NaN or infinite)."""
    return (
        f"CASE WHEN ({expr}) IS NULL OR isnan({expr}) OR isinf({expr}) THEN '' ELSE "
        f"lpad((greatest(least(floor(({expr}) * {SCALE}), {LIMIT}), -{LIMIT})::HUGEINT + {OFFSET})::VARCHAR, "
        f"{WIDTH}, '0') END"
    )


def metadata_field(column: str) -> str:
    """The Lucene field of numeric metadata column ``column`` (the same in every index).

    >>> metadata_field("rank")
    'm_rank'
    """
    slug = re.sub(r"[^A-Za-z0-9_]", "_", column)[:40]
    if slug != column:
        slug += "_" + hashlib.sha1(column.encode()).hexdigest()[:8]
    return "m_" + slug


def metadata_sql(column: str) -> str:
    """SQL for the DOUBLE in metadata column ``column`` of a record (NULL when not a number)."""
    path = '$."' + column.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return "TRY_CAST(json_extract(metadata, '" + path.replace("'", "''") + "') AS DOUBLE)"
