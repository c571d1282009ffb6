"""A dataset's label schema: what one label says, set by admins and versioned like the guidelines.

The schema is the project setting ``label_schema`` (``settings``: every change is a row of the
history, and its version is the number of times it was set). It holds:

* ``overall`` -- ``binary`` (chosen / rejected / tie / both bad, as always) or a 5- or 7-point scale
  (``ordinal.SCALES``: A much better ... B much better);
* ``aspects`` -- names (helpfulness, correctness, ...), each a pairwise choice: A, B or the same;
* ``reasons`` -- a list annotators pick several from;
* ``rationale`` -- ``off``, ``optional`` or ``required``.

A graded label is stored with its label too: ``ordinal.as_preference`` maps the grade to chosen,
rejected or tie, so queues, majorities, agreement and export work with every schema. Grades and
aspect choices are stored from the source's side (a negative grade: the source's chosen response is
better); blind labeling's A/B order is undone before they are stored, as for the label itself.

>>> s = clean_schema({"overall": 7, "aspects": "helpfulness, safety", "rationale": "required"})
>>> s["points"], s["aspects"], s["rationale"]
(7, ['helpfulness', 'safety'], 'required')
>>> clean_schema(None) == BINARY
True
"""

from __future__ import annotations

import json
import re
from typing import Any

from .events import LabelError
from .ordinal import SCALES, OrdinalError, as_preference, check_grade

BINARY: dict = {"overall": "binary", "points": None, "aspects": [], "reasons": [], "rationale": "off"}
"""The schema of a dataset nobody set one for: a label as it always was."""
RATIONALE = ("off", "optional", "required")
ASPECT_CHOICES = ("chosen", "rejected", "tie")
"""What an aspect's choice is stored as (from the source's side, like a label)."""
MAX_ASPECTS = 8
MAX_REASONS = 30
MAX_RATIONALE = 4000
_NAME = re.compile(r"[^\W_][\w \-/]{0,39}")


def _names(value: Any, what: str, most: int) -> list[str]:
    if value in (None, ""):
        return []
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, (list, tuple)):
        raise LabelError(f"{what} must be a list of names")
    out: list[str] = []
    for v in value:
        v = " ".join(str(v).split())
        if not v:
            continue
        if not _NAME.fullmatch(v):
            raise LabelError(f"{what[:-1]} {v[:50]!r} must be 1-40 letters, digits, spaces or - /")
        if v.lower() not in (o.lower() for o in out):
            out.append(v)
    if len(out) > most:
        raise LabelError(f"at most {most} {what}")
    return out


def clean_schema(value: Any) -> dict:
    """``value`` (a dict, its JSON, or None for the binary default) as a label schema, or LabelError.

    >>> clean_schema({"overall": "5-point"})["points"]
    5
    >>> clean_schema({"overall": 4})
    Traceback (most recent call last):
    ...
    components.labels.events.LabelError: the overall preference is binary, 5 or 7 (points of the scale), not 4
    """
    if value in (None, "", {}):
        return dict(BINARY)
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise LabelError("the label schema must be JSON: {\"overall\": 7, \"aspects\": [...], ...}") from None
    if not isinstance(value, dict):
        raise LabelError("the label schema must be an object with overall, aspects, reasons and rationale")
    unknown = set(value) - {"overall", "points", "aspects", "reasons", "rationale"}
    if unknown:
        raise LabelError(f"unknown label schema field {sorted(unknown)[0]!r}: use overall, aspects, reasons, rationale")
    overall = value.get("overall", "binary")
    text = str(overall).strip().lower().replace("-point", "").replace(" point", "")
    if text in ("binary", "", "none"):
        points = None
    elif text in {str(p) for p in SCALES}:
        points = int(text)
    else:
        raise LabelError(f"the overall preference is binary, 5 or 7 (points of the scale), not {overall!r}")
    rationale = str(value.get("rationale") or "off").strip().lower()
    if rationale in ("true", "yes"):
        rationale = "optional"
    if rationale not in RATIONALE:
        raise LabelError(f"the rationale is off, optional or required, not {value.get('rationale')!r}")
    return {"overall": "binary" if points is None else f"{points}-point", "points": points,
            "aspects": _names(value.get("aspects"), "aspects", MAX_ASPECTS),
            "reasons": _names(value.get("reasons"), "reasons", MAX_REASONS), "rationale": rationale}


def is_graded(schema: dict | None) -> bool:
    return bool(schema and schema.get("points"))


def flip_grade(grade: int | None, swapped: bool) -> int | None:
    """A grade given on the A/B screen as the source's side stores it (A is the source's chosen
    side unless the pair was swapped)."""
    return None if grade is None else (-grade if swapped else grade)


def flip_choice(choice: str, swapped: bool) -> str:
    if not swapped or choice == "tie":
        return choice
    return "rejected" if choice == "chosen" else "chosen"


def _aspect_choice(value: Any) -> str:
    v = str(value or "").strip().lower()
    v = {"a": "chosen", "b": "rejected", "same": "tie", "=": "tie", "0": "tie"}.get(v, v)
    if v not in ASPECT_CHOICES:
        raise LabelError(f"an aspect's choice is A, B or same (chosen, rejected or tie), not {value!r}")
    return v


def check_graded(schema: dict, label: str, grade: Any = None, aspects: Any = None, reasons: Any = None,
                 rationale: Any = None) -> tuple[str, dict]:
    """(the label to store, the columns to store beside it) for a label given under ``schema``, or
    LabelError saying what is missing or wrong. On a graded schema a judgment is a grade (its label
    follows from it: ``ordinal.as_preference``); skip and both bad take no grade.

    >>> schema = clean_schema({"overall": 7, "aspects": ["safety"], "reasons": ["wrong"]})
    >>> check_graded(schema, "chosen", grade=2, aspects={"safety": "A"}, reasons=["wrong"])
    ('rejected', {'grade': 2, 'aspects': {'safety': 'chosen'}, 'reasons': ['wrong'], 'rationale': None, 'schema_version': 0})
    """
    points = schema.get("points")
    out: dict = {"grade": None, "aspects": None, "reasons": None, "rationale": None,
                 "schema_version": schema.get("version", 0)}
    if grade not in (None, ""):
        if not points:
            raise LabelError("this dataset's label schema is binary: a label takes no grade")
        try:
            out["grade"] = check_grade(grade, points)
        except OrdinalError as err:
            raise LabelError(str(err)) from None
        label = as_preference(out["grade"])
    elif points and label in ("chosen", "rejected", "tie"):
        raise LabelError(f"this dataset is labeled on a {points}-point scale: give a grade from "
                         f"{-(points // 2)} to {points // 2} (keys 1 to {points})")
    if aspects:
        if not isinstance(aspects, dict):
            raise LabelError("aspects are given as {aspect: A, B or same}")
        known = {a.lower(): a for a in schema.get("aspects") or []}
        chosen = {}
        for name, value in aspects.items():
            if value in (None, ""):
                continue
            key = known.get(str(name).strip().lower())
            if key is None:
                raise LabelError(f"unknown aspect {name!r}: this dataset's aspects are "
                                 f"{', '.join(known.values()) or 'none'}")
            chosen[key] = _aspect_choice(value)
        out["aspects"] = chosen or None
    if reasons:
        given = reasons.split(",") if isinstance(reasons, str) else list(reasons)
        known = {r.lower(): r for r in schema.get("reasons") or []}
        picked = []
        for r in given:
            r = " ".join(str(r).split())
            if not r:
                continue
            if r.lower() not in known:
                raise LabelError(f"unknown reason {r!r}: pick from {', '.join(known.values()) or 'none'}")
            if known[r.lower()] not in picked:
                picked.append(known[r.lower()])
        out["reasons"] = picked or None
    text = (str(rationale).strip() if rationale is not None else "") or None
    if text and len(text) > MAX_RATIONALE:
        raise LabelError(f"the rationale is {len(text):,} characters; keep it under {MAX_RATIONALE:,}")
    if text and schema.get("rationale") == "off":
        raise LabelError("this dataset's label schema asks for no rationale")
    if not text and schema.get("rationale") == "required" and label not in ("skip",):
        raise LabelError("this dataset asks for a rationale with every label: N to type it")
    out["rationale"] = text
    return label, out


def scale_keys(points: int) -> list[tuple[str, int, str]]:
    """(key, grade, title) of each point of a scale: keys 1 to ``points`` from A's end to B's.

    >>> scale_keys(5)[0], scale_keys(5)[-1]
    (('1', -2, 'A much better'), ('5', 2, 'B much better'))
    """
    return [(str(i + 1), v, title) for i, (v, title) in enumerate(SCALES[points])]
