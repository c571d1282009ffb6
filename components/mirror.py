"""Persistence for a Space without persistent storage: the work people did, mirrored to a Hub dataset.

A Space's disk is wiped at every restart. What people made in the app -- the label log, the accepted
revisions, the principles' and personas' edit histories, gold pairs and reviewers' final labels --
is written as append-only JSON-lines shards into a folder
(one folder per part: ``labels/``, ``revisions/``, ``principles/`` ...) that ``huggingface_hub.CommitScheduler`` pushes to a Hub
dataset repo every few minutes and at shutdown. At start, an empty database is filled back from the
repo's shards. Datasets themselves come back from their sources (the Hub or the demo files).

Each shard holds the rows added since the one before (``labels/events-0000000001-0000000250.jsonl``);
shards are never rewritten, so every shard loads with ``datasets.load_dataset("json", ...)``.
"""

from __future__ import annotations

import json
import os
import re
import sys
from datetime import date, datetime
from pathlib import Path

from .store import Database, DatabaseError
from .text import first_line

PARTS = {
    # part: (SELECT of its rows in a stable, append-only order; shard file prefix)
    "labels": ("SELECT * FROM label_events ORDER BY id", "events"),
    "principles": ('SELECT * FROM principle_history ORDER BY "at", id, version', "history"),
    "personas": ('SELECT * FROM persona_history ORDER BY "at", name, version', "history"),
    "revisions": ("SELECT * FROM revisions WHERE status = 'accepted' ORDER BY reviewed_at, id", "accepted"),
    "gold": ("SELECT * FROM gold_pairs ORDER BY id", "gold"),
    "reviews": ("SELECT * FROM reviews ORDER BY id", "reviews"),
}
LOGS = {
    # part: (append-only table, its columns but the id; restored in order, so new ids keep it)
    "gold": ("gold_pairs", ["dataset", "row", "label", "note", "set_by", "set_at"]),
    "reviews": ("reviews", ["dataset", "row", "reviewer", "label", "reason", "created_at"]),
}
_SHARD = re.compile(r"^[a-z]+-(\d{10})-(\d{10})\.jsonl$")


class MirrorError(Exception):
    """The Hub mirror could not start or restore; the message says why in one line."""


def _plain(value):
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _json(value):
    """A JSON column's value as DuckDB takes it (the shards hold it parsed or as text)."""
    return value if value is None or isinstance(value, str) else json.dumps(value)


def exported(folder: Path, part: str) -> int:
    """How many rows of ``part`` the shards in ``folder`` hold (the last shard's end)."""
    ends = [int(m.group(2)) for p in (folder / part).glob("*.jsonl") if (m := _SHARD.match(p.name))]
    return max(ends, default=0)


def dump(db: Database, folder: str | os.PathLike) -> dict[str, int]:
    """Write the rows added since the last shard of each part as one new shard; returns rows written."""
    folder = Path(folder)
    written = {}
    for part, (sql, prefix) in PARTS.items():
        done = exported(folder, part)
        rows = db.dicts(f"{sql} OFFSET {int(done)}")
        written[part] = len(rows)
        if not rows:
            continue
        (folder / part).mkdir(parents=True, exist_ok=True)
        final = folder / part / f"{prefix}-{done + 1:010d}-{done + len(rows):010d}.jsonl"
        tmp = final.with_name("." + final.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(_plain(r), ensure_ascii=False) + "\n")
        os.replace(tmp, final)  # a shard appears whole or not at all
    return written


def _read(folder: Path, part: str, skipped: list[str] | None = None) -> list[dict]:
    """The rows of a part's shards in order. A line that is not a JSON object (a shard cut short, a
    bad edit) is skipped, and said in ``skipped`` as ``file line N: why``; the rest is read."""
    shards = sorted(((int(m.group(1)), p) for p in (folder / part).glob("*.jsonl") if (m := _SHARD.match(p.name))))
    rows = []
    for _, path in shards:
        with open(path, encoding="utf-8", errors="replace") as f:
            for n, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as err:
                    row, why = None, f"not JSON ({err.msg} at column {err.colno})"
                else:
                    why = "not a JSON object"
                if isinstance(row, dict):
                    rows.append(row)
                elif skipped is not None:
                    skipped.append(f"{part}/{path.name} line {n}: {why}")
    return rows


HISTORIES = {
    # part: (history table, key column, history columns, current table, the current row from history row h)
    "principles": ("principle_history", "id",
                   ["id", "version", "action", "grp", "title", "text", "template", "params", "is_default", "author", "at"],
                   "principles", "h.id, h.grp, h.title, h.text, h.template, h.params, h.is_default"),
    "personas": ("persona_history", "name",
                 ["name", "version", "action", "attributes", "template", "system_message", "author", "at"],
                 "personas", "h.name, h.attributes, h.template"),
}


def _restore_history(cur, rows: list[dict], history: str, key: str, columns: list[str], current: str,
                     leading: str) -> int:
    """Put back an edit history and rebuild the current table from each item's latest version (its
    origin, version, deleted flag, author and time follow the history). A database whose history
    holds more than the library's own seeding is left alone."""
    if not rows or cur.execute(f"SELECT count(*) FROM {history} WHERE action <> 'library'").fetchone()[0]:
        return 0
    cur.execute(f"DELETE FROM {history}")
    names = ", ".join(f'"{c}"' for c in columns)
    for h in rows:
        cur.execute(f"INSERT INTO {history} ({names}) VALUES ({', '.join('?' * len(columns))})",
                    [_json(h.get(c)) if isinstance(h.get(c), dict) else h.get(c) for c in columns])
    cur.execute(f"DELETE FROM {current}")
    cur.execute(f"""
        INSERT INTO {current}
        SELECT {leading}, CASE WHEN first_action = 'library' THEN 'library' ELSE 'user' END,
               h.version, h.action = 'delete', h.author, h."at"
        FROM (SELECT *, row_number() OVER (PARTITION BY {key} ORDER BY version DESC, "at" DESC) AS latest,
                     first(action ORDER BY version) OVER (PARTITION BY {key}) AS first_action
              FROM {history}) h
        WHERE latest = 1""")
    return len(rows)


def restore(db: Database, folder: str | os.PathLike, warn=None) -> dict[str, int]:
    """Fill an empty database's labels, principles and accepted revisions from the shards in ``folder``.

    Parts the database already has rows of are left alone, so a restart with persistent storage never
    doubles anything. Label events get new ids in their old order; an undo keeps pointing at the event
    it undid. Lines that cannot be read are skipped, each said through ``warn`` (standard error by
    default), and counted in ``skipped``.
    """
    warn = warn or (lambda line: print(line, file=sys.stderr))
    folder = Path(folder)
    restored = {part: 0 for part in PARTS}
    skipped: list[str] = []

    def run(cur):
        restored.update({part: 0 for part in PARTS})
        del skipped[:]
        if not cur.execute("SELECT count(*) FROM label_events").fetchone()[0]:
            new_ids: dict[int, int] = {}
            for e in _read(folder, "labels", skipped):
                if not all(e.get(k) is not None for k in ("id", "dataset", "row", "annotator", "label", "created_at")):
                    skipped.append(f"labels: event {e.get('id')!r} lacks a dataset, row, annotator, label or time")
                    continue
                options = e.get("options")
                options = json.loads(options) if isinstance(options, str) else options
                if isinstance(options, dict) and options.get("undoes") is not None:
                    options = {**options, "undoes": new_ids.get(int(options["undoes"]), options["undoes"])}
                new = cur.execute(
                    "INSERT INTO label_events (dataset, row, annotator, label, confidence, note, tags, options, created_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                    [e["dataset"], e["row"], e["annotator"], e["label"], e.get("confidence"), e.get("note"),
                     e.get("tags"), json.dumps(options) if options is not None else None, e["created_at"]],
                ).fetchone()[0]
                new_ids[int(e["id"])] = new
                restored["labels"] += 1
        for part, spec in HISTORIES.items():
            restored[part] = _restore_history(cur, _read(folder, part, skipped), *spec)
        for part, (table, columns) in LOGS.items():
            if not cur.execute(f"SELECT count(*) FROM {table}").fetchone()[0]:
                for r in _read(folder, part, skipped):
                    cur.execute(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                                [r.get(c) for c in columns])
                    restored[part] += 1
        if not cur.execute("SELECT count(*) FROM revisions").fetchone()[0]:
            columns = [r[0] for r in cur.execute("DESCRIBE revisions").fetchall()]
            for r in _read(folder, "revisions", skipped):
                values = [_json(r.get(c)) if isinstance(r.get(c), dict) else r.get(c) for c in columns]
                cur.execute(f"INSERT INTO revisions ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                            values)
                restored["revisions"] += 1
        return restored

    db.write(run)
    for line in skipped:
        warn(f"mirror: skipped {line}")
    return restored | {"skipped": len(skipped)}


def start(db: Database, repo_id: str, folder: str | os.PathLike, token: str | None = None, every: float = 5):
    """Restore from ``repo_id`` when the database is empty, then push new shards every ``every`` minutes
    (and at shutdown). Returns the scheduler; MirrorError says in one line why it could not start."""
    from huggingface_hub import CommitScheduler, snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        snapshot_download(repo_id, repo_type="dataset", local_dir=folder, token=token,
                          allow_patterns=[f"{p}/*.jsonl" for p in PARTS])
    except (HfHubHTTPError, LocalEntryNotFoundError, OSError) as err:
        raise MirrorError(f"cannot read the mirror {repo_id}: {first_line(err)}") from None
    try:
        restore(db, folder)
    except (DatabaseError, ValueError, TypeError) as err:  # the app still starts, on the database as it is
        raise MirrorError(f"cannot restore from the mirror {repo_id}: {first_line(err)}") from None

    class Scheduler(CommitScheduler):
        def push_to_hub(self):
            dump(db, self.folder_path)
            return super().push_to_hub()

    try:
        return Scheduler(repo_id=repo_id, repo_type="dataset", folder_path=folder, every=every, token=token,
                         private=True, allow_patterns=[f"{p}/*.jsonl" for p in PARTS])
    except (HfHubHTTPError, OSError) as err:
        raise MirrorError(f"cannot push to the mirror {repo_id}: {first_line(err)}") from None
