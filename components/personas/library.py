"""The persona library: a checked JSON-lines file, copied into the database, edited there with every
version kept.

A persona is a name, attributes in words (demographics, values, preferences, expertise...) and a
template that renders them into the system message a model is given when it writes for, or judges
as, that person. ``data/personas.jsonl`` is the starting library; the first time a database is used,
the personas it has never seen are copied into the ``personas`` table. Users then edit, add, import
and delete them there, and every version goes to ``persona_history`` with the system message it
rendered (so a pair revised for version 2 still names the exact text it was conditioned on).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from ..store import Database
from ..versions import Versioned

PERSONAS_FILE = Path(__file__).resolve().parents[2] / "data" / "personas.jsonl"
DEFAULT_TEMPLATE = (
    "You are talking with someone who describes themselves this way:\n{profile}\n\n"
    "Write for this person: serve what they value, match their expertise and the style they prefer. "
    "Do not mention this description."
)
NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")
"""Persona names: lower-case letters, digits and '-' (they become part of a judge's annotator name)."""
MAX_ATTRIBUTES = 30
MAX_TEXT = 2000
_SLOT = re.compile(r"\{(\w+)\}")
_COLUMNS = "name, attributes, template, origin, version, deleted, updated_by, updated_at"


class PersonaError(ValueError):
    """A persona request that cannot be carried out, explained in one line."""


def render(template: str, name: str, attributes: dict[str, str]) -> str:
    """The system message: ``{name}``, ``{profile}`` (every attribute, one per line) and ``{ATTRIBUTE}``
    slots filled in.

    >>> render("Help {name} ({age}).\\n{profile}", "ada", {"age": "36", "values": "rigor"})
    'Help ada (36).\\n- age: 36\\n- values: rigor'
    """
    values = {"name": name, "profile": profile(attributes), **attributes}
    unknown = sorted(set(_SLOT.findall(template)) - set(values))
    if unknown:
        raise PersonaError(f"persona {name!r}: the template's slots {unknown} are not attributes "
                           f"(use {{name}}, {{profile}} or one of {sorted(attributes)})")
    return _SLOT.sub(lambda m: values[m.group(1)], template)


def profile(attributes: dict[str, str]) -> str:
    return "\n".join(f"- {k.replace('_', ' ')}: {v}" for k, v in attributes.items())


@dataclass(frozen=True)
class Persona:
    name: str
    attributes: tuple[tuple[str, str], ...]  # in the order written
    template: str = DEFAULT_TEMPLATE
    version: int = 1

    @property
    def system_message(self) -> str:
        return render(self.template, self.name, dict(self.attributes))

    def profile(self) -> str:
        return profile(dict(self.attributes))

    def as_dict(self) -> dict:
        """The library line of this persona (what ``personas add FILE`` reads), with its version."""
        return {"name": self.name, "version": self.version, "attributes": dict(self.attributes),
                "template": self.template, "system_message": self.system_message}

    def provenance(self) -> dict:
        """What a revision or a label records: the persona, its version and the exact system message."""
        return {"name": self.name, "version": self.version, "system_message": self.system_message}


def check_persona(p: dict) -> str | None:
    """What is wrong with persona ``p`` (a dict), or None.

    >>> check_persona({"name": "ada", "attributes": {"values": "rigor"}}) is None
    True
    >>> check_persona({"name": "Ada Lovelace", "attributes": {"values": "rigor"}})[:26]
    "name 'Ada Lovelace' must b"
    """
    if not isinstance(p, dict):
        return "not an object"
    name = p.get("name")
    if not isinstance(name, str) or not NAME.fullmatch(name):
        return f"name {name!r} must be lower-case letters, digits or '-' (at most 40, starting with a letter or digit)"
    attrs = p.get("attributes")
    if not isinstance(attrs, dict) or not attrs:
        return f"{name}: attributes must be an object of words, e.g. {{\"values\": \"honesty\"}}"
    if len(attrs) > MAX_ATTRIBUTES:
        return f"{name}: at most {MAX_ATTRIBUTES} attributes"
    for k, v in attrs.items():
        if not re.fullmatch(r"[a-z][a-z0-9_]{0,39}", str(k)):
            return f"{name}: attribute {k!r} must be lower-case letters, digits or '_'"
        if not isinstance(v, (str, int, float)) or not str(v).strip():
            return f"{name}: attribute {k!r} needs words"
        if len(str(v)) > MAX_TEXT:
            return f"{name}: attribute {k!r} is longer than {MAX_TEXT} characters"
    template = p.get("template") or DEFAULT_TEMPLATE
    if not isinstance(template, str) or len(template) > 4 * MAX_TEXT:
        return f"{name}: the template must be text of at most {4 * MAX_TEXT} characters"
    try:
        render(template, name, {k: str(v) for k, v in attrs.items()})
    except PersonaError as err:
        return str(err)
    return None


def _clean(p: dict) -> dict:
    problem = check_persona(p)
    if problem:
        raise PersonaError(problem)
    return {"name": p["name"], "attributes": {k: " ".join(str(v).split()) for k, v in p["attributes"].items()},
            "template": (p.get("template") or DEFAULT_TEMPLATE).strip()}


# -- the library file: JSON lines, one persona each --------------------------------------------------


def read_personas(path: str | os.PathLike = PERSONAS_FILE) -> list[dict]:
    """The personas of a JSON-lines file, checked: one object per line, unique names."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise PersonaError(f"cannot read {path}: {getattr(err, 'strerror', None) or err}") from None
    out, seen = [], set()
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            p = _clean(json.loads(line))
        except json.JSONDecodeError as err:
            raise PersonaError(f"{path}: line {i} is not JSON ({err.msg})") from None
        except PersonaError as err:
            raise PersonaError(f"{path}: line {i}: {err}") from None
        if p["name"] in seen:
            raise PersonaError(f"{path}: line {i}: persona {p['name']!r} appears twice")
        seen.add(p["name"])
        out.append(p)
    if not out:
        raise PersonaError(f"{path}: no personas (one JSON object per line)")
    return out


def write_personas(items: Iterable[Persona], path: str | os.PathLike) -> int:
    """Write personas as JSON lines (what ``read_personas`` reads back); returns how many."""
    path = Path(path)
    tmp = path.with_name(path.name + ".part")
    items = list(items)
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            for p in items:
                fh.write(json.dumps(p.as_dict(), ensure_ascii=False) + "\n")
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise PersonaError(f"cannot write {path}: {err.strerror or err}") from None
    return len(items)


# -- the tables: personas (current version) and persona_history (every version) ----------------------


def _persona(r: dict) -> Persona:
    attrs = json.loads(r["attributes"]) if isinstance(r["attributes"], str) else r["attributes"]
    return Persona(r["name"], tuple((k, str(v)) for k, v in attrs.items()), r["template"], r["version"])


TABLES = Versioned("personas", "persona_history", "name")


def _writer(cur, p: dict, author: str | None):
    """``put(version, origin, action, deleted)`` for persona ``p`` (see components.versions)."""
    def put(version: int, origin: str, action: str, deleted: bool) -> None:
        attrs = json.dumps(p["attributes"], ensure_ascii=False)
        cur.execute("INSERT INTO personas VALUES (?, ?, ?, ?, ?, ?, ?, now())",
                    [p["name"], attrs, p["template"], origin, version, deleted, author])
        cur.execute("INSERT INTO persona_history VALUES (?, ?, ?, ?, ?, ?, ?, now())",
                    [p["name"], version, action, attrs, p["template"],
                     render(p["template"], p["name"], p["attributes"]), author])

    return put


def _store(cur, p: dict, author: str | None, action: str | None = None) -> str:
    """Create persona ``p`` or store a new version of it; returns what happened (or ``unchanged``)."""
    def unchanged() -> bool:
        attrs, template = cur.execute("SELECT attributes, template FROM personas WHERE name = ?",
                                      [p["name"]]).fetchone()
        return json.loads(attrs) == p["attributes"] and template == p["template"]

    return TABLES.store(cur, p["name"], _writer(cur, p, author), action=action, unchanged=unchanged)


def seed_personas(db: Database, items: list[dict]) -> int:
    """Add library personas the database has never had (edited or deleted ones stay as they are)."""
    return db.write(lambda cur: TABLES.seed(cur, items, lambda p: _writer(cur, p, None)))


def ensure_personas(db: Database, path: str | os.PathLike = PERSONAS_FILE) -> None:
    """Copy the library's personas the database has never seen (once per open database)."""
    if not db.read_only:
        db.once(("personas", str(path)), lambda: seed_personas(db, read_personas(path)))


def personas(db: Database) -> list[Persona]:
    """The current version of every persona, by name."""
    ensure_personas(db)
    return [_persona(r) for r in db.dicts(f"SELECT {_COLUMNS} FROM personas WHERE NOT deleted ORDER BY name")]


def persona(db: Database, name: str) -> Persona | None:
    ensure_personas(db)
    rows = db.dicts(f"SELECT {_COLUMNS} FROM personas WHERE name = ? AND NOT deleted", [str(name or "").strip()])
    return _persona(rows[0]) if rows else None


def resolve(db: Database, name: str) -> Persona:
    """Persona ``name``, or PersonaError naming close matches."""
    found = persona(db, name)
    if found is None:
        names = [p.name for p in personas(db)]
        close = [n for n in names if str(name or "").lower() in n] or names[:5]
        raise PersonaError(f"no persona {str(name)[:60]!r} (e.g. {', '.join(close[:5])}); "
                           "list them with: python app.py personas list")
    return found


def version_of(db: Database, name: str, version: int) -> Persona | None:
    """Persona ``name`` as it was at ``version`` (from the history)."""
    rows = db.dicts("SELECT name, attributes, template, version FROM persona_history "
                    "WHERE name = ? AND version = ? AND action <> 'delete'", [name, version])
    return _persona(rows[0]) if rows else None


def save_persona(db: Database, p: dict, author: str | None = None) -> tuple[Persona, str]:
    """Create or edit a persona (a new version; the old one stays in the history).
    Returns the persona and what happened: created, updated or unchanged."""
    ensure_personas(db)
    p = _clean(p)
    what = db.write(lambda cur: _store(cur, p, author))
    return persona(db, p["name"]), what


def import_personas(db: Database, path: str | os.PathLike, author: str | None = None) -> dict[str, int]:
    """Add or update every persona of a JSON-lines file, in one transaction; counts of what happened."""
    ensure_personas(db)
    items = read_personas(path)

    def run(cur):
        counts = {"created": 0, "updated": 0, "unchanged": 0}
        for p in items:
            counts[_store(cur, p, author, action="import")] += 1
        return counts

    return db.write(run)


def delete_persona(db: Database, name: str, author: str | None = None) -> bool:
    """Mark a persona deleted (kept, with its history, so pairs revised for it still name it)."""
    ensure_personas(db)

    def run(cur):
        old = cur.execute("SELECT attributes, template FROM personas WHERE name = ? AND NOT deleted", [name]).fetchone()
        if old is None:
            return False
        p = {"name": name, "attributes": json.loads(old[0]), "template": old[1]}
        return TABLES.delete(cur, name, _writer(cur, p, author))

    return db.write(run)


def persona_history(db: Database, name: str | None = None, limit: int = 200) -> list[dict]:
    """Every version of persona ``name`` (of all personas when None), newest first."""
    out = TABLES.versions(db, 'name, version, action, attributes, template, system_message, author, "at"',
                          name or None, limit)
    for r in out:
        if isinstance(r["attributes"], str):
            r["attributes"] = json.loads(r["attributes"])
    return out


def parse_attributes(text: str) -> dict[str, str]:
    """``"age: 71\\nvalues: kindness"`` (one ``name: words`` per line, as the editor shows them) -> a dict.

    >>> parse_attributes("Age: 71\\n\\nvalues: kindness, patience")
    {'age': '71', 'values': 'kindness, patience'}
    """
    out = {}
    for i, line in enumerate((text or "").splitlines(), 1):
        line = line.strip().lstrip("-").strip()
        if not line:
            continue
        key, sep, value = line.partition(":")
        if not sep:
            raise PersonaError(f"attribute line {i}: write it as 'name: words', not {line[:60]!r}")
        out[key.strip().lower().replace(" ", "_")] = value.strip()
    return out


def attributes_text(p: Persona) -> str:
    return "\n".join(f"{k}: {v}" for k, v in p.attributes)
