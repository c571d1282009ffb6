"""Project settings of a dataset, with their history, and blind labeling.

A setting is a (dataset, key) with a JSON value; every change appends a row to ``dataset_settings``
(who set it, when), so the history is kept and the latest row is in effect. ``SETTINGS`` names the
keys and their defaults:

* ``blind`` -- labeling on an A/B screen (below);
* ``overlap`` -- how many annotators each pair needs (``labels.project``); None: everyone labels
  every pair, in one shuffled order;
* ``guidelines`` -- Markdown shown beside the pair. Its version is the number of times it was set,
  and every label records the version it was given under;
* ``label_schema`` -- what a label says (``label_schema``: binary or a 5/7-point scale, aspects,
  reasons, a rationale); versioned the same way, and every label records its version.

Blind labeling (``blind``): the two responses are shown as A and B, in an order drawn per pair (the
same for everyone, every time), and a label given as "A is better" is stored as the source side it
was: ``chosen`` or ``rejected``. Nobody is told which side the source preferred.

>>> unblind("chosen", swapped=True), unblind("rejected", swapped=True), unblind("tie", swapped=True)
('rejected', 'chosen', 'tie')
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ..store import Database
from ..text import utc_now
from .events import BY_NAME, LabelError, check_pairs
from .label_schema import BINARY, clean_schema

SETTINGS: dict[str, Any] = {"blind": False, "overlap": None, "guidelines": "", "label_schema": None}
"""The settings a dataset has, with their defaults."""
MAX_OVERLAP = 100
MAX_GUIDELINES = 50_000


def clean_setting(key: str, value: Any) -> Any:
    """``value`` as setting ``key`` keeps it, or LabelError saying what it may be.

    >>> clean_setting("overlap", "2"), clean_setting("overlap", 0), clean_setting("blind", 1)
    (2, None, True)
    >>> clean_setting("overlap", "two")
    Traceback (most recent call last):
    ...
    components.labels.events.LabelError: overlap must be a whole number of annotators from 1 to 100 (0 or none: everyone labels every pair), not 'two'
    """
    if key not in SETTINGS:
        raise LabelError(f"unknown setting {key!r}: use one of {', '.join(SETTINGS)}")
    if key == "blind":
        return bool(value)
    if key == "overlap":
        if value in (None, "", 0, "0", "none"):
            return None
        try:
            k = int(value)
            if k != float(value) or not 1 <= k <= MAX_OVERLAP:
                raise ValueError
        except (TypeError, ValueError):
            raise LabelError(f"overlap must be a whole number of annotators from 1 to {MAX_OVERLAP} "
                             f"(0 or none: everyone labels every pair), not {value!r}") from None
        return k
    if key == "label_schema":
        schema = clean_schema(value)
        return None if schema["points"] is None and not (schema["aspects"] or schema["reasons"]
                                                         or schema["rationale"] != "off") else \
            {k: schema[k] for k in ("overall", "points", "aspects", "reasons", "rationale")}
    text = str(value or "").strip()
    if len(text) > MAX_GUIDELINES:
        raise LabelError(f"the guidelines are {len(text):,} characters; keep them under {MAX_GUIDELINES:,}")
    return text


def setting(db: Database, dataset: str, key: str) -> Any:
    """The value of ``key`` for ``dataset`` now in effect (its default when never set)."""
    if key not in SETTINGS:
        raise LabelError(f"unknown setting {key!r}: use one of {', '.join(SETTINGS)}")
    value = db.scalar("SELECT value FROM dataset_settings WHERE dataset = ? AND key = ? ORDER BY id DESC LIMIT 1",
                      [dataset, key])
    return SETTINGS[key] if value is None else json.loads(value)


def set_setting(db: Database, dataset: Any, key: str, value: Any, by: str | None) -> dict:
    """Set ``key`` of ``dataset`` to ``value`` (a change appended to the history); returns it."""
    info = check_pairs(db, dataset)
    value = clean_setting(key, value)
    now = utc_now()
    db.write(lambda cur: cur.execute(
        "INSERT INTO dataset_settings (dataset, key, value, set_by, set_at) VALUES (?, ?, ?, ?, ?)",
        [info.name, key, json.dumps(value), by, now]))
    return {"dataset": info.name, "key": key, "value": value, "set_by": by, "set_at": now}


def setting_history(db: Database, dataset: str, key: str | None = None) -> list[dict]:
    """Every change of ``dataset``'s settings (of ``key`` only, when given), oldest first."""
    where, params = ("AND key = ?", [dataset, key]) if key else ("", [dataset])
    rows = db.dicts(f"SELECT key, value, set_by, set_at FROM dataset_settings WHERE dataset = ? {where} ORDER BY id",
                    params)
    return [r | {"value": json.loads(r["value"]) if r["value"] is not None else None} for r in rows]


def settings(db: Database, dataset: str) -> dict:
    """Every setting of ``dataset`` now in effect, with the guidelines' version."""
    return {key: setting(db, dataset, key) for key in SETTINGS} | {
        "guidelines_version": guidelines_version(db, dataset),
        "label_schema_version": setting_version(db, dataset, "label_schema")}


def setting_version(db: Database, dataset: str, key: str) -> int:
    """How many times ``key`` of ``dataset`` was set (0: never): the version labels record."""
    return db.scalar("SELECT count(*) FROM dataset_settings WHERE dataset = ? AND key = ?", [dataset, key])


def guidelines_version(db: Database, dataset: str) -> int:
    """How many times ``dataset``'s guidelines were set (0: never): the version labels record."""
    return setting_version(db, dataset, "guidelines")


def is_blind(db: Database, dataset: str | None) -> bool:
    return bool(dataset) and bool(setting(db, dataset, "blind"))


def swapped(dataset: str, row: int) -> bool:
    """Whether blind labeling shows pair ``row`` with the source's rejected response as A (drawn from a
    hash of the name and row: the same order for everyone, in every process).

    >>> [swapped("demo", r) for r in range(6)]
    [False, True, True, False, False, True]
    """
    return hashlib.md5(f"{dataset}/{row}/blind".encode()).digest()[0] % 2 == 1


def unblind(label: str, swapped: bool) -> str:
    """The stored label for ``label`` given on the A/B screen: "chosen" means A, "rejected" B."""
    if not swapped or label not in ("chosen", "rejected"):
        return label
    return "rejected" if label == "chosen" else "chosen"


def blind_title(label: str, swapped: bool) -> str:
    """How a stored label reads on the A/B screen of a pair.

    >>> blind_title("rejected", swapped=True)
    'A is better'
    """
    shown = unblind(label, swapped)  # the mapping is its own inverse
    return {"chosen": "A is better", "rejected": "B is better"}.get(shown) or BY_NAME[shown].title


def label_schema(db: Database, dataset: str | None) -> dict:
    """The schema of ``dataset`` now in effect, with its ``version`` (0: never set, the binary default)."""
    if not dataset:
        return dict(BINARY) | {"version": 0}
    return clean_schema(setting(db, dataset, "label_schema")) | {"version": setting_version(db, dataset,
                                                                                           "label_schema")}
