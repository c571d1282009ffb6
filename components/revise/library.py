"""The principles library: a checked file, copied into the database, edited there with every version kept.

``data/principles.json`` is the starting library. The first time a database is used, the principles
it has never seen are copied into the ``principles`` table; users then edit, add and delete them
there, and every version goes to ``principle_history`` (so an old revision still names the text it
was judged by). A template such as the "pink elephant" has ``{slots}`` filled in before use.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable

from ..store import Database
from ..versions import Versioned
from .errors import RevisionError

PRINCIPLES_FILE = Path(__file__).resolve().parents[2] / "data" / "principles.json"
_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_SLOT = re.compile(r"\{(\w+)\}")
_COLUMNS = "id, grp, title, text, template, params, is_default, origin, version, deleted, updated_by, updated_at"


@dataclass(frozen=True)
class Principle:
    id: str
    group: str
    title: str
    text: str
    template: bool = False
    params: tuple[str, ...] = ()
    default: bool = False
    version: int = 1
    values: tuple[tuple[str, str], ...] = ()  # the filled slots of a template

    def as_dict(self) -> dict:
        d = {"id": self.id, "version": self.version, "group": self.group, "title": self.title, "text": self.text}
        if self.values:
            d["values"] = dict(self.values)
        return d

    def fill(self, values: dict[str, str]) -> "Principle":
        """A template with its slots filled in; raises RevisionError naming any slot left empty.

        >>> p = Principle("pe", "pink elephant", "t", "Avoid {avoid}; talk about {steer}.", True, ("avoid", "steer"))
        >>> p.fill({"avoid": "cats", "steer": "dogs"}).text
        'Avoid cats; talk about dogs.'
        """
        missing = [k for k in self.params if not str(values.get(k) or "").strip()]
        if missing:
            raise RevisionError(
                f"principle {self.id!r} is a template: fill in {', '.join(missing)} "
                f"(e.g. {self.id}:" + ":".join(f"{k}=..." for k in self.params) + ")"
            )
        text = self.text
        for k in self.params:
            text = text.replace("{" + k + "}", str(values[k]).strip())
        return replace(self, text=text, values=tuple((k, str(values[k]).strip()) for k in self.params))


# -- the library file -------------------------------------------------------------------------------


def load_library(path: str | os.PathLike = PRINCIPLES_FILE) -> list[dict]:
    """The principles of a library file (JSON or YAML), checked: unique ids, a title and a text each."""
    path = Path(path)
    try:
        raw = path.read_text(encoding="utf-8")
        data = json.loads(raw) if path.suffix == ".json" else _yaml(raw)
    except (OSError, ValueError) as err:
        raise RevisionError(f"cannot read the principles library {path}: {err}") from None
    items = data.get("principles") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise RevisionError(f"{path}: expected a list of principles under 'principles'")
    seen = set()
    for i, p in enumerate(items):
        problem = check_principle(p)
        if problem:
            raise RevisionError(f"{path}: principle {i + 1}: {problem}")
        if p["id"] in seen:
            raise RevisionError(f"{path}: principle id {p['id']!r} appears twice")
        seen.add(p["id"])
    return items


def _yaml(text: str):
    import yaml

    return yaml.safe_load(text)


def check_principle(p: dict) -> str | None:
    """What is wrong with principle ``p`` (a dict), or None.

    >>> check_principle({"id": "short", "title": "Short", "text": "Be brief."}) is None
    True
    >>> check_principle({"id": "t", "title": "T", "text": "Avoid {x}", "params": ["y"]})
    "t: params ['y'] do not match the slots ['x'] of its text"
    """
    if not isinstance(p, dict):
        return "not an object"
    if not _ID.fullmatch(str(p.get("id") or "")):
        return f"id {p.get('id')!r} must be lower-case letters, digits, '.', '_' or '-' (at most 64)"
    for key in ("title", "text"):
        if not str(p.get(key) or "").strip():
            return f"{p['id']}: {key} is empty"
    slots = set(_SLOT.findall(p["text"]))
    params = set(p.get("params") or [])
    if p.get("template") and not params:
        return f"{p['id']}: a template needs params (the names of its {{slots}})"
    if params and slots != params:
        return f"{p['id']}: params {sorted(params)} do not match the slots {sorted(slots)} of its text"
    return None


# -- the tables: principles (current text) and principle_history (every version) ---------------------


def principle_rows(db: Database, include_deleted: bool = False) -> list[dict]:
    """The current version of each principle, as table rows."""
    where = "" if include_deleted else "WHERE NOT deleted"
    return db.dicts(f"SELECT {_COLUMNS} FROM principles {where} ORDER BY grp, id")


def principle_row(db: Database, pid: str) -> dict | None:
    rows = db.dicts(f"SELECT {_COLUMNS} FROM principles WHERE id = ?", [pid])
    return rows[0] if rows else None


TABLES = Versioned("principles", "principle_history", "id")


def seed_principles(db: Database, items: list[dict]) -> int:
    """Add library principles the database has never had (edited or deleted ones stay as they are)."""
    return db.write(lambda cur: TABLES.seed(cur, items, lambda p: _writer(cur, p, None)))


def _store(db: Database, p: dict, author: str | None) -> dict:
    """Create principle ``p['id']`` or store a new version of it; every version goes to the history."""
    db.write(lambda cur: TABLES.store(cur, p["id"], _writer(cur, p, author)))
    return principle_row(db, p["id"])


def delete_principle(db: Database, pid: str, author: str | None = None) -> bool:
    """Mark a principle deleted (kept, with its history, so old revisions still name it)."""
    def run(cur):
        old = cur.execute(f"SELECT {_COLUMNS} FROM principles WHERE id = ? AND NOT deleted", [pid]).fetchone()
        if old is None:
            return False
        p = dict(zip([c.strip() for c in _COLUMNS.split(",")], old))
        return TABLES.delete(cur, pid, _writer(cur, p, author))

    return db.write(run)


def _writer(cur, p: dict, author: str | None):
    """``put(version, origin, action, deleted)`` for principle ``p`` (see components.versions)."""
    grp = p.get("group") or p.get("grp") or "other"
    params = list(p.get("params") or [])
    template = bool(p.get("template"))
    is_default = bool(p.get("default", p.get("is_default", False)))

    def put(version: int, origin: str, action: str, deleted: bool) -> None:
        cur.execute("INSERT INTO principles VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, now())",
                    [p["id"], grp, p["title"], p["text"], template, params, is_default, origin, version, deleted,
                     author])
        cur.execute("INSERT INTO principle_history VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, now())",
                    [p["id"], version, action, grp, p["title"], p["text"], template, params, is_default, author])

    return put


def principle_history(db: Database, pid: str | None = None, limit: int = 200) -> list[dict]:
    """Every version of principle ``pid`` (of all principles when None), newest first."""
    return TABLES.versions(db, 'id, version, action, grp, title, text, author, "at"', pid or None, limit)


# -- the library as the app sees it ----------------------------------------------------------------

def ensure_principles(db: Database, path: str | os.PathLike = PRINCIPLES_FILE) -> None:
    """Copy the library's principles the database has never seen (once per open database)."""
    db.once(("principles", str(path)), lambda: seed_principles(db, load_library(path)))


def principles(db: Database) -> list[Principle]:
    ensure_principles(db)
    return [_principle(r) for r in principle_rows(db)]


def _principle(r: dict) -> Principle:
    return Principle(id=r["id"], group=r["grp"], title=r["title"], text=r["text"], template=bool(r["template"]),
                     params=tuple(r["params"] or ()), default=bool(r["is_default"]), version=r["version"])


def save_principle(db: Database, p: dict, author: str | None = None) -> Principle:
    """Create or edit a principle (a new version; the old one stays in the history)."""
    ensure_principles(db)
    p = {k: (v.strip() if isinstance(v, str) else v) for k, v in p.items()}
    if p.get("params") is None:
        p["params"] = sorted(set(_SLOT.findall(p.get("text") or "")))
        p["template"] = bool(p["params"])
    problem = check_principle(p)
    if problem:
        raise RevisionError(problem)
    return _principle(_store(db, p, author))


def parse_principle_specs(spec: str | Iterable[str] | None) -> list[tuple[str, dict]]:
    """``"a,b,pink-elephant:avoid=cats:steer=dogs"`` -> ``[("a", {}), ("b", {}), ("pink-elephant", {...})]``.

    >>> parse_principle_specs("honest, pink-elephant:avoid=the weather:steer=gardening")
    [('honest', {}), ('pink-elephant', {'avoid': 'the weather', 'steer': 'gardening'})]
    """
    if spec is None:
        return []
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    out = []
    for item in items:
        item = item.strip()
        if not item:
            continue
        pid, *slots = item.split(":")
        values = {}
        for s in slots:
            k, sep, v = s.partition("=")
            if not sep:
                raise RevisionError(f"principle {pid.strip()!r}: expected NAME=VALUE after ':', got {s!r}")
            values[k.strip()] = v.strip()
        out.append((pid.strip(), values))
    return out


def resolve_principles(db: Database, spec=None, values: dict | None = None) -> list[Principle]:
    """The principles named by ``spec`` (ids, or ``id:slot=value:...``), templates filled in.

    No spec: the library's default principles. ``values`` fills template slots not given in the spec.
    """
    library = {p.id: p for p in principles(db)}
    chosen = parse_principle_specs(spec)
    if not chosen:
        chosen = [(p.id, {}) for p in library.values() if p.default]
    out = []
    for pid, slots in chosen:
        p = library.get(pid)
        if p is None:
            close = [k for k in library if pid.lower() in k]
            hint = f" (did you mean {', '.join(close[:3])}?)" if close else ""
            raise RevisionError(f"no principle {pid!r}{hint}; list them in the Revise tab or data/principles.json")
        if p.template:
            p = p.fill({**(values or {}), **slots})
        out.append(p)
    if not out:
        raise RevisionError("choose at least one principle")
    return out
