"""Names that become paths or rows: the one rule for dataset names, checked wherever a name enters.

A dataset name ends up as a folder under ``indexes/``, a file name in an export and a key in every
table, so it is checked the same way at every door: ingest, ``--into``, batch targets, index, export.

>>> check_dataset_name("hh-rlhf_test.v2")
'hh-rlhf_test.v2'
>>> check_dataset_name("../victim")  # doctest: +IGNORE_EXCEPTION_DETAIL
Traceback (most recent call last):
InvalidName: dataset name '../victim' must start with a letter or digit and hold only letters, digits, '.', '_' or '-' (at most 100 characters)
"""

from __future__ import annotations

import re
import unicodedata

DATASET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
"""Letters, digits, '.', '_' and '-', starting with a letter or digit, at most 100 characters: no
'/', no '..' at the start, nothing a path could climb out with."""


class InvalidName(ValueError):
    """A name that may not be used, explained in one line."""


def is_dataset_name(name: object) -> bool:
    return isinstance(name, str) and DATASET_NAME.fullmatch(name) is not None and ".." not in name


def check_dataset_name(name: object) -> str:
    """``name`` if it is a valid dataset name, else InvalidName with the rule."""
    if not is_dataset_name(name):
        raise InvalidName(
            f"dataset name {name!r} must start with a letter or digit and hold only letters, digits, "
            "'.', '_' or '-' (at most 100 characters)"
        )
    return name  # type: ignore[return-value]


def slug(text: str, fallback: str = "dataset") -> str:
    """A readable dataset name from any text: accents dropped, other characters become '-'.

    Text with no Latin letters or digits at all (``データ``) gives ``fallback``; callers that need
    distinct names for such sources add something distinct of their own.

    >>> slug("Ünïcode pairs (v2)")
    'Unicode-pairs-v2'
    >>> slug("データ")
    'dataset'
    """
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", ascii_text).strip("-._")
    name = re.sub(r"\.{2,}", ".", name)[:100].rstrip("-._")
    return name or fallback
