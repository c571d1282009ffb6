"""Versioned tables: a current row per key beside a history of every version, written once.

Principles and personas (and whatever else is edited in the app and named by old results) keep the
current version in one table and every version in a ``*_history`` table. The rules are the same for
each: a new key is version 1 (origin ``user``, or ``library`` when seeded); an edit stores version
n+1 and keeps the origin; saving a deleted one restores it; a delete is a version too (the row stays,
marked ``deleted``, so an old revision or label still finds what it named). The concept gives the
columns: ``put(version, origin, action, deleted)`` writes its own row to both tables.

>>> PERSONAS = Versioned("personas", "persona_history", "name")
>>> PERSONAS.history_sql("name, version", by_key=True)
'SELECT name, version FROM persona_history WHERE name = ? ORDER BY "at" DESC, version DESC LIMIT ?'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable

from .store import Database

Put = Callable[[int, str, str, bool], None]
"""``put(version, origin, action, deleted)``: insert the concept's row into both tables."""


@dataclass(frozen=True)
class Versioned:
    current: str  # the table of current versions
    history: str  # the table of every version
    key: str  # the column that names one item

    def state(self, cur, key: Any) -> tuple[int, str, bool] | None:
        """(version, origin, deleted) of ``key`` now, or None when it never existed."""
        return cur.execute(f"SELECT version, origin, deleted FROM {self.current} WHERE {self.key} = ?",
                           [key]).fetchone()

    def store(self, cur, key: Any, put: Put, *, action: str | None = None,
              unchanged: Callable[[], bool] | None = None) -> str:
        """Create ``key`` or store a new version of it: created, updated, or unchanged (when
        ``unchanged()`` says the live version already holds it)."""
        old = self.state(cur, key)
        if old is None:
            put(1, "user", action or "create", False)
            return "created"
        version, origin, deleted = old
        if not deleted and unchanged is not None and unchanged():
            return "unchanged"
        cur.execute(f"DELETE FROM {self.current} WHERE {self.key} = ?", [key])
        put(version + 1, origin, "restore" if deleted else (action or "edit"), False)
        return "updated"

    def delete(self, cur, key: Any, put: Put) -> bool:
        """Mark ``key`` deleted (a version of its own); False when there is no live ``key``."""
        old = self.state(cur, key)
        if old is None or old[2]:
            return False
        cur.execute(f"DELETE FROM {self.current} WHERE {self.key} = ?", [key])
        put(old[0] + 1, old[1], "delete", True)
        return True

    def seed(self, cur, items: Iterable[dict], put_for: Callable[[dict], Put]) -> int:
        """Add the library's items the database never had (edited or deleted ones stay as they are)."""
        known = {r[0] for r in cur.execute(f"SELECT {self.key} FROM {self.current}").fetchall()}
        fresh = [p for p in items if p[self.key] not in known]
        for p in fresh:
            put_for(p)(1, "library", "library", False)
        return len(fresh)

    def history_sql(self, columns: str, by_key: bool) -> str:
        where = f" WHERE {self.key} = ?" if by_key else ""
        return f'SELECT {columns} FROM {self.history}{where} ORDER BY "at" DESC, version DESC LIMIT ?'

    def versions(self, db: Database, columns: str, key: Any = None, limit: int = 200) -> list[dict]:
        """Every version of ``key`` (of every item when None), newest first."""
        return db.dicts(self.history_sql(columns, key is not None), ([key] if key is not None else []) + [int(limit)])
