"""Renaming and deleting a dataset (an admin's work), each in one transaction.

Deleting removes the dataset's rows, its catalogue entry and its index entry; its labels stay in the
append-only log (a dataset loaded again under the name finds them), and so do its gold pairs and reviews. Renaming moves everything that
names the dataset: rows, labels, settings, index entry, and the revisions made from it.
"""

from __future__ import annotations

from .. import search
from ..names import InvalidName, check_dataset_name
from ..store import Database
from .events import LabelError
from .. import catalogue

# (table, column) pairs that name a dataset, moved by a rename
_NAMED_BY = [("records", "dataset"), ("rejects", "dataset"), ("label_events", "dataset"),
             ("dataset_settings", "dataset"), ("search_indexes", "dataset"), ("revisions", "dataset"),
             ("revisions", "into_dataset"), ("revision_jobs", "dataset"), ("revision_jobs", "accept_into"), ("reservations", "dataset"),
             ("gold_pairs", "dataset"), ("reviews", "dataset")]


def _existing(db: Database, name: object) -> str:
    if not isinstance(name, str) or catalogue.dataset(db, name) is None:
        raise LabelError(f"no dataset named {str(name)[:100]!r}")
    return name


def delete_dataset(db: Database, name: object) -> dict:
    """Delete dataset ``name``: its rows, rejects, catalogue entry and search index (labels stay in the log)."""
    name = _existing(db, name)
    search.forget_index(db, name)

    def run(cur):
        rows = cur.execute("SELECT row_count FROM datasets WHERE name = ?", [name]).fetchone()[0]
        for table, column in (("records", "dataset"), ("rejects", "dataset"), ("search_indexes", "dataset"),
                              ("reservations", "dataset"), ("datasets", "name")):
            cur.execute(f"DELETE FROM {table} WHERE {column} = ?", [name])
        labels = cur.execute("SELECT count(*) FROM label_events WHERE dataset = ?", [name]).fetchone()[0]
        return {"dataset": name, "rows": rows, "label_events_kept": labels}

    return db.write(run)


def rename_dataset(db: Database, name: object, new_name: object) -> dict:
    """Rename dataset ``name`` to ``new_name`` (checked by the one name rule, and free)."""
    name = _existing(db, name)
    try:
        new = check_dataset_name(new_name)
    except InvalidName as err:
        raise LabelError(str(err)) from None
    if new == name:
        raise LabelError(f"the dataset is already called {name!r}")
    if catalogue.dataset(db, new) is not None:
        raise LabelError(f"a dataset named {new!r} exists already: delete or rename it first")
    had_index = search.forget_index(db, name)  # its folder is named after it: rebuilt under the new name

    def run(cur):
        if cur.execute("SELECT 1 FROM datasets WHERE name = ?", [new]).fetchone():
            raise LabelError(f"a dataset named {new!r} exists already: delete or rename it first")
        # the catalogue entry first (a new row, then the old one goes): nothing else references it by key
        cur.execute("INSERT INTO datasets SELECT * REPLACE (? AS name) FROM datasets WHERE name = ?", [new, name])
        cur.execute("DELETE FROM datasets WHERE name = ?", [name])
        moved = {}
        for table, column in _NAMED_BY:
            n = cur.execute(f"UPDATE {table} SET {column} = ? WHERE {column} = ?", [new, name]).fetchone()
            moved[f"{table}.{column}"] = n[0] if n else 0
        return {"dataset": new, "was": name, "moved": moved}

    result = db.write(run)
    if had_index:
        search.index_in_background(db, [new])
    return result
