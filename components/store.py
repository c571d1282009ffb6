"""The database: one DuckDB file, owned by one process, its schema and the one write path.

``Database`` opens (or creates) the file, brings its schema up to date with the migrations below,
and offers two ways in:

* reads -- ``db.rows(sql, params)`` / ``db.one(...)`` / ``db.scalar(...)`` run on a cursor of the
  calling thread, so many threads can read at once;
* writes -- ``db.write(fn)`` runs ``fn(cursor)`` inside one transaction, one writer at a time
  (a process-wide lock), and rolls the whole transaction back if ``fn`` raises.

The schema of every table is here, as one ordered list of migrations. The SQL of each concept lives
beside that concept (``labels/events.py``, ``revise/results.py``, ``search/index.py`` ...) and runs
through these generic methods; what stays here is the dataset catalogue and its records, which every
concept reads.
"""

from __future__ import annotations

import json
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import duckdb

DEFAULT_DB = Path(__file__).resolve().parent.parent / "data" / "studio.duckdb"

MESSAGE = "STRUCT(role VARCHAR, content VARCHAR)"
MESSAGES = f"{MESSAGE}[]"


class DatabaseError(Exception):
    """A database problem explained in one line for the user."""


class DatabaseInUse(DatabaseError):
    """Another process holds the database file."""


# ---------------------------------------------------------------------------------------------
# Migrations: (name, statements). Applied in order, each once, recorded in schema_migrations.
# A newer app opens an older file by applying the migrations the file has not seen yet.
# ---------------------------------------------------------------------------------------------

MIGRATIONS: list[tuple[str, list[str]]] = [
    (
        "0001_datasets_records",
        [
            """CREATE TABLE datasets (
                name VARCHAR PRIMARY KEY,
                kind VARCHAR NOT NULL,            -- pairs | conversations | documents
                format VARCHAR NOT NULL,          -- detected or mapped source format
                source VARCHAR,                   -- path or hub id
                config VARCHAR,
                split VARCHAR,
                row_count BIGINT NOT NULL,
                rejected_count BIGINT NOT NULL,
                rejected_reasons JSON,            -- {reason: count}
                columns JSON,                     -- {metadata column: arrow type}
                mapping JSON,                     -- explicit column mapping, if any
                version INTEGER NOT NULL,         -- bumped on every (re-)ingest
                created_at TIMESTAMP NOT NULL,
                updated_at TIMESTAMP NOT NULL
            )""",
            f"""CREATE TABLE records (
                dataset VARCHAR NOT NULL,
                row BIGINT NOT NULL,              -- 0-based row of the source
                prompt {MESSAGES},
                chosen {MESSAGES},
                rejected {MESSAGES},
                text VARCHAR,                     -- documents
                source_id VARCHAR,                -- the source's own id, when it has one
                score_chosen DOUBLE,
                score_rejected DOUBLE,
                metadata JSON                     -- every other source column
            )""",
            """CREATE TABLE rejects (
                dataset VARCHAR NOT NULL,
                row BIGINT NOT NULL,
                reason VARCHAR NOT NULL,
                raw VARCHAR
            )""",
        ],
    ),
    (
        "0002_search_indexes",
        [
            """CREATE TABLE search_indexes (
                dataset VARCHAR PRIMARY KEY,
                path VARCHAR NOT NULL,            -- the Lucene index folder
                documents BIGINT NOT NULL,        -- documents in the index (rows with some text)
                build_seconds DOUBLE NOT NULL,
                k1 DOUBLE NOT NULL,               -- BM25 parameters used when searching this index
                b DOUBLE NOT NULL,
                dataset_version INTEGER NOT NULL, -- datasets.version the index was built from
                built_at TIMESTAMP NOT NULL,
                numeric_fields JSON               -- {filter name: Lucene field} of the range filters
            )""",
        ],
    ),
    (
        "0003_labels",
        [
            "CREATE SEQUENCE IF NOT EXISTS label_events_id START 1",
            """CREATE TABLE label_events (
                id BIGINT PRIMARY KEY DEFAULT nextval('label_events_id'),
                dataset VARCHAR NOT NULL,
                row BIGINT NOT NULL,              -- 0-based source row of the pair
                annotator VARCHAR NOT NULL,
                label VARCHAR NOT NULL CHECK (label IN ('chosen', 'rejected', 'tie', 'both_bad', 'skip', 'undo')),
                confidence INTEGER CHECK (confidence BETWEEN 1 AND 3),
                note VARCHAR,
                tags VARCHAR[],
                options JSON,                     -- how it was labeled; an undo names the event it undoes
                created_at TIMESTAMP NOT NULL     -- UTC
            )""",
            # The current label of each (dataset, row, annotator): its latest event that is neither an
            # undo nor undone by one. Events are never updated or deleted.
            """CREATE VIEW current_labels AS
               SELECT dataset, row, annotator, label, confidence, note, tags, created_at
               FROM (
                   SELECT e.*, row_number() OVER (PARTITION BY e.dataset, e.row, e.annotator ORDER BY e.id DESC) AS _latest
                   FROM label_events e
                   WHERE e.label <> 'undo'
                     AND e.id NOT IN (
                         SELECT u.undoes FROM (
                             SELECT TRY_CAST(json_extract_string(options, '$.undoes') AS BIGINT) AS undoes
                             FROM label_events WHERE label = 'undo'
                         ) u WHERE u.undoes IS NOT NULL
                     )
               )
               WHERE _latest = 1""",
        ],
    ),
    (
        "0004_revisions",
        [
            # The principles library: the current text of each principle (seeded from
            # data/principles.json, then edited by users) and every version it has had.
            """CREATE TABLE principles (
                id VARCHAR PRIMARY KEY,
                grp VARCHAR NOT NULL,             -- harmlessness | honesty | helpfulness | privacy | style ...
                title VARCHAR NOT NULL,
                text VARCHAR NOT NULL,            -- what the reviewing model reads; {name} slots in templates
                template BOOLEAN NOT NULL,
                params VARCHAR[],                 -- the slots of a template
                is_default BOOLEAN NOT NULL,      -- used when no principle is chosen
                origin VARCHAR NOT NULL,          -- library | user
                version INTEGER NOT NULL,
                deleted BOOLEAN NOT NULL,
                updated_by VARCHAR,
                updated_at TIMESTAMP NOT NULL
            )""",
            """CREATE TABLE principle_history (
                id VARCHAR NOT NULL,
                version INTEGER NOT NULL,
                action VARCHAR NOT NULL,          -- library | create | edit | delete | restore
                grp VARCHAR, title VARCHAR, text VARCHAR, template BOOLEAN, params VARCHAR[], is_default BOOLEAN,
                author VARCHAR,
                "at" TIMESTAMP NOT NULL
            )""",
            # A batch run over rows of a dataset; its results are the revisions carrying its id.
            """CREATE TABLE revision_jobs (
                id VARCHAR PRIMARY KEY,
                key VARCHAR NOT NULL,             -- hash of what was asked: the same request resumes the job
                dataset VARCHAR NOT NULL,
                side VARCHAR NOT NULL,            -- chosen | rejected
                selection JSON,                   -- {rows} or {query}, and the limit
                rows BIGINT[] NOT NULL,           -- the source rows to revise, in order
                principles JSON NOT NULL,
                backend JSON NOT NULL,            -- {kind, model, endpoint}
                settings JSON NOT NULL,
                accept_into VARCHAR,              -- accepted straight into this dataset, or NULL: pending review
                status VARCHAR NOT NULL,          -- running | interrupted | done | failed
                message VARCHAR,
                created_at TIMESTAMP NOT NULL,
                updated_at TIMESTAMP NOT NULL
            )""",
            # One critique + revision of the final assistant turn of one conversation, with its
            # provenance; accepted ones point at the pair they became.
            f"""CREATE TABLE revisions (
                id VARCHAR PRIMARY KEY,
                job_id VARCHAR,
                dataset VARCHAR NOT NULL,
                row BIGINT NOT NULL,
                side VARCHAR NOT NULL,
                dataset_version INTEGER,
                prompt {MESSAGES},                -- the conversation before the final turn
                original {MESSAGES},              -- the final assistant turn
                critique VARCHAR,                 -- raw model text, always kept
                violations VARCHAR[],
                critique_parsed BOOLEAN,
                revision VARCHAR,                 -- as the model wrote it
                final_revision VARCHAR,           -- as accepted (edited or not)
                edited BOOLEAN,
                status VARCHAR NOT NULL,          -- pending | accepted | rejected | failed
                error VARCHAR,
                principles JSON,                  -- id, version, title and text of each, as used
                model VARCHAR, backend VARCHAR, endpoint VARCHAR, device VARCHAR, dtype VARCHAR,
                settings JSON,
                seed BIGINT,
                tokens JSON,                      -- prompt, critique and revision token counts
                latency_s DOUBLE,
                ttft_s DOUBLE,
                notes VARCHAR[],                  -- e.g. turns dropped to fit the context
                created_at TIMESTAMP NOT NULL,
                reviewed_by VARCHAR,
                reviewed_at TIMESTAMP,
                into_dataset VARCHAR,
                into_row BIGINT
            )""",
        ],
    ),
    (
        "0005_users",
        [
            # Self-hosted sign-in: who may use the app and in which role (components/access.py).
            """CREATE TABLE users (
                name VARCHAR PRIMARY KEY,
                role VARCHAR NOT NULL CHECK (role IN ('viewer', 'annotator', 'reviewer', 'admin')),
                password_hash VARCHAR,            -- scrypt, with its parameters and salt; NULL: no password sign-in
                created_at TIMESTAMP NOT NULL,
                updated_at TIMESTAMP NOT NULL
            )""",
        ],
    ),
    (
        "0006_dataset_settings",
        [
            # Project settings of a dataset (blind labeling, ...): every change is a row, so the
            # history says who set what when; the latest row of each (dataset, key) is in effect.
            "CREATE SEQUENCE IF NOT EXISTS dataset_settings_id START 1",
            """CREATE TABLE dataset_settings (
                id BIGINT PRIMARY KEY DEFAULT nextval('dataset_settings_id'),
                dataset VARCHAR NOT NULL,
                key VARCHAR NOT NULL,
                value JSON,
                set_by VARCHAR,
                set_at TIMESTAMP NOT NULL         -- UTC
            )""",
        ],
    ),
    (
        "0007_personas",
        [
            # The persona library (components/personas): seeded from data/personas.jsonl, then edited
            # by users; every version is kept in persona_history with the system message it rendered.
            """CREATE TABLE personas (
                name VARCHAR PRIMARY KEY,
                attributes JSON NOT NULL,         -- {attribute: words}, in the order written
                template VARCHAR NOT NULL,        -- the system message, with {slots}
                origin VARCHAR NOT NULL,          -- library | user
                version INTEGER NOT NULL,
                deleted BOOLEAN NOT NULL,
                updated_by VARCHAR,
                updated_at TIMESTAMP NOT NULL
            )""",
            """CREATE TABLE persona_history (
                name VARCHAR NOT NULL,
                version INTEGER NOT NULL,
                action VARCHAR NOT NULL,          -- library | create | edit | delete | restore | import
                attributes JSON,
                template VARCHAR,
                system_message VARCHAR,           -- as rendered from this version
                author VARCHAR,
                "at" TIMESTAMP NOT NULL
            )""",
            # A revision (and a batch job) conditioned on a persona: {name, version, system_message}.
            "ALTER TABLE revisions ADD COLUMN persona JSON",
            "ALTER TABLE revision_jobs ADD COLUMN persona JSON",
        ],
    ),
    (
        "0008_models",
        [
            # The models people may run from the page (components/revise/models.py): admins add and
            # remove entries; a removed entry keeps its row; every change is a row of model_history.
            """CREATE TABLE models (
                id VARCHAR PRIMARY KEY,
                kind VARCHAR NOT NULL CHECK (kind IN ('local', 'endpoint')),
                model VARCHAR NOT NULL,           -- a folder or Hub id; for an endpoint, the served name
                endpoint VARCHAR,                 -- the endpoint's URL (NULL for a local model)
                origin VARCHAR NOT NULL,          -- settings ($STUDIO_MODELS, $STUDIO_REVISE_MODEL) | page | cli
                removed BOOLEAN NOT NULL,
                updated_by VARCHAR,
                updated_at TIMESTAMP NOT NULL
            )""",
            """CREATE TABLE model_history (
                id VARCHAR NOT NULL,
                action VARCHAR NOT NULL,          -- add | remove
                kind VARCHAR NOT NULL,
                model VARCHAR NOT NULL,
                endpoint VARCHAR,
                author VARCHAR,
                "at" TIMESTAMP NOT NULL
            )""",
        ],
    ),
    (
        "0009_labeling_project",
        [
            # A pair handed to an annotator by the overlap queue (components/labels/project.py): it holds
            # one of the pair's slots until it expires or the annotator labels the pair.
            """CREATE TABLE reservations (
                dataset VARCHAR NOT NULL,
                row BIGINT NOT NULL,
                annotator VARCHAR NOT NULL,
                reserved_at TIMESTAMP NOT NULL,   -- UTC: when the pair was handed out
                expires_at TIMESTAMP NOT NULL
            )""",
            # Pairs with a known answer; every change is a row, the latest of each pair in effect
            # (label NULL: no longer gold).
            "CREATE SEQUENCE IF NOT EXISTS gold_pairs_id START 1",
            """CREATE TABLE gold_pairs (
                id BIGINT PRIMARY KEY DEFAULT nextval('gold_pairs_id'),
                dataset VARCHAR NOT NULL,
                row BIGINT NOT NULL,
                label VARCHAR CHECK (label IN ('chosen', 'rejected', 'tie', 'both_bad')),
                note VARCHAR,
                set_by VARCHAR,
                set_at TIMESTAMP NOT NULL
            )""",
            # A reviewer's final label of a pair, with the reason; the latest of each pair is in effect.
            "CREATE SEQUENCE IF NOT EXISTS reviews_id START 1",
            """CREATE TABLE reviews (
                id BIGINT PRIMARY KEY DEFAULT nextval('reviews_id'),
                dataset VARCHAR NOT NULL,
                row BIGINT NOT NULL,
                reviewer VARCHAR NOT NULL,
                label VARCHAR NOT NULL CHECK (label IN ('chosen', 'rejected', 'tie', 'both_bad')),
                reason VARCHAR,
                created_at TIMESTAMP NOT NULL
            )""",
        ],
    ),
]


@dataclass
class DatasetInfo:
    name: str
    kind: str
    format: str
    source: str | None
    config: str | None
    split: str | None
    row_count: int
    rejected_count: int
    rejected_reasons: dict
    columns: dict
    mapping: dict | None
    version: int
    created_at: Any
    updated_at: Any

    def as_dict(self) -> dict:
        d = dict(self.__dict__)
        d["created_at"] = str(self.created_at)
        d["updated_at"] = str(self.updated_at)
        return d


def _in_use_message(path: Path, err: Exception) -> str:
    pid = re.search(r"PID (\d+)", str(err))
    who = f"process {pid.group(1)}" if pid else "another process"
    return (
        f"the database {path} is in use by {who} (probably the running app); "
        "stop it first, or pass --db with another file"
    )


class Database:
    """One DuckDB database file and all of the app's SQL."""

    def __init__(self, path: str | os.PathLike = DEFAULT_DB, read_only: bool = False):
        self.path = Path(path)
        self.read_only = read_only
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._con = duckdb.connect(str(self.path), read_only=read_only)
        except duckdb.IOException as err:
            if "lock" in str(err).lower():
                raise DatabaseInUse(_in_use_message(self.path, err)) from None
            raise DatabaseError(f"cannot open {self.path}: {err}") from None
        self._write_lock = threading.RLock()
        self.generation = 0  # bumped by every committed write (caches of what was read compare it)
        self._local = threading.local()
        if not read_only:
            self.migrate()

    # -- connection plumbing ------------------------------------------------------------------

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A cursor for the calling thread (DuckDB cursors are not shared between threads)."""
        cur = getattr(self._local, "cursor", None)
        if cur is None:
            cur = self._con.cursor()
            self._local.cursor = cur
        return cur

    def close(self) -> None:
        self._con.close()

    def execute_checkpoint(self) -> None:
        """Write everything committed into the database file itself (not only its WAL)."""
        with self._write_lock:
            self.cursor().execute("CHECKPOINT")

    def rows(self, sql: str, params: Sequence | dict | None = None) -> list[tuple]:
        return self.cursor().execute(sql, params or []).fetchall()

    def dicts(self, sql: str, params: Sequence | dict | None = None) -> list[dict]:
        cur = self.cursor().execute(sql, params or [])
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r)) for r in cur.fetchall()]

    def one(self, sql: str, params: Sequence | dict | None = None) -> tuple | None:
        return self.cursor().execute(sql, params or []).fetchone()

    def scalar(self, sql: str, params: Sequence | dict | None = None) -> Any:
        r = self.one(sql, params)
        return None if r is None else r[0]

    def arrow(self, sql: str, params: Sequence | dict | None = None):
        return self.cursor().sql(sql, params=params or None).to_arrow_table()

    def write(self, fn: Callable[[duckdb.DuckDBPyConnection], Any]) -> Any:
        """Run ``fn(cursor)`` in one transaction, serialized with every other write."""
        if self.read_only:
            raise DatabaseError(f"the database {self.path} is open read-only")
        with self._write_lock:
            cur = self.cursor()
            cur.execute("BEGIN TRANSACTION")
            try:
                result = fn(cur)
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            cur.execute("COMMIT")
            self.generation += 1
            return result

    # -- schema ---------------------------------------------------------------------------------

    def migrate(self, upto: str | None = None) -> list[str]:
        """Apply the migrations this file has not seen; return their names."""
        def run(cur):
            cur.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (name VARCHAR PRIMARY KEY, applied_at TIMESTAMP)"
            )
            done = {r[0] for r in cur.execute("SELECT name FROM schema_migrations").fetchall()}
            applied = []
            for name, statements in MIGRATIONS:
                if name not in done:
                    for sql in statements:
                        cur.execute(sql)
                    cur.execute("INSERT INTO schema_migrations VALUES (?, now())", [name])
                    applied.append(name)
                if name == upto:
                    break
            return applied

        return self.write(run)

    def migrations(self) -> list[str]:
        return [r[0] for r in self.rows("SELECT name FROM schema_migrations ORDER BY name")]

    # =============================================================================================
    # Datasets and records
    # =============================================================================================

    def datasets(self) -> list[DatasetInfo]:
        return [self._info(r) for r in self.dicts("SELECT * FROM datasets ORDER BY name")]

    def dataset(self, name: str) -> DatasetInfo | None:
        r = self.dicts("SELECT * FROM datasets WHERE name = ?", [name])
        return self._info(r[0]) if r else None

    @staticmethod
    def _info(r: dict) -> DatasetInfo:
        for key in ("rejected_reasons", "columns", "mapping"):
            if isinstance(r.get(key), str):
                r[key] = json.loads(r[key])
        r["rejected_reasons"] = r.get("rejected_reasons") or {}
        r["columns"] = r.get("columns") or {}
        return DatasetInfo(**r)

    def replace_dataset(self, info: dict, staged: str) -> DatasetInfo:
        """Make the rows staged under ``staged`` dataset ``info['name']``, in one short transaction.

        The rows were written beforehand, outside the write lock, into ``records`` and ``rejects``
        with ``dataset = staged`` (components/ingest/stage.py). Here the old rows of the name are
        deleted, the staged ones renamed, and the catalogue entry written, with its version bumped.
        If anything fails, nothing changes.
        """
        name = info["name"]

        def run(cur):
            old = cur.execute("SELECT version, created_at FROM datasets WHERE name = ?", [name]).fetchone()
            for table, key in (("records", "dataset"), ("rejects", "dataset"), ("datasets", "name")):
                cur.execute(f"DELETE FROM {table} WHERE {key} = ?", [name])
            for table in ("records", "rejects"):
                cur.execute(f"UPDATE {table} SET dataset = ? WHERE dataset = ?", [name, staged])
            reasons = dict(cur.execute(
                "SELECT reason, count(*) FROM rejects WHERE dataset = ? GROUP BY 1 ORDER BY 2 DESC, 1", [name]
            ).fetchall())
            good = cur.execute("SELECT count(*) FROM records WHERE dataset = ?", [name]).fetchone()[0]
            version = (old[0] + 1) if old else 1
            cur.execute(
                """INSERT INTO datasets VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, coalesce(?, now()), now())""",
                [
                    name, info["kind"], info["format"], info.get("source"), info.get("config"), info.get("split"),
                    good, sum(reasons.values()), json.dumps(reasons), json.dumps(info.get("columns") or {}),
                    json.dumps(info["mapping"]) if info.get("mapping") else None, version, old[1] if old else None,
                ],
            )

        self.write(run)
        return self.dataset(name)

    def delete_dataset(self, name: str) -> None:
        def run(cur):
            cur.execute("DELETE FROM records WHERE dataset = ?", [name])
            cur.execute("DELETE FROM rejects WHERE dataset = ?", [name])
            cur.execute("DELETE FROM datasets WHERE name = ?", [name])

        self.write(run)

    def record(self, dataset: str, row: int) -> dict | None:
        r = self.dicts("SELECT * FROM records WHERE dataset = ? AND row = ?", [dataset, row])
        if not r:
            return None
        rec = r[0]
        if isinstance(rec.get("metadata"), str):
            rec["metadata"] = json.loads(rec["metadata"])
        return rec

    def page(self, dataset: str, offset: int, limit: int) -> list[dict]:
        """A page of records in source order: row, a preview of the prompt/text, and sizes."""
        return self.dicts(
            """SELECT row,
                      coalesce(text, prompt[-1].content, chosen[1].content, '') AS preview,
                      len(prompt) + greatest(len(chosen), len(rejected)) AS turns,
                      score_chosen, score_rejected, source_id, length(text) AS characters
               FROM records WHERE dataset = ? ORDER BY row LIMIT ? OFFSET ?""",
            [dataset, limit, offset],
        )

    def rows_of(self, dataset: str, rows: Iterable[int]) -> list[dict]:
        rows = list(rows)
        if not rows:
            return []
        return self.dicts(
            "SELECT * FROM records WHERE dataset = ? AND list_contains(?, row) ORDER BY row",
            [dataset, rows],
        )

    def rejects(self, dataset: str, limit: int = 100) -> list[dict]:
        return self.dicts(
            "SELECT row, reason, raw FROM rejects WHERE dataset = ? ORDER BY row LIMIT ?", [dataset, limit]
        )

    def row_position(self, dataset: str, row: int) -> int | None:
        """0-based position of source row ``row`` among the dataset's stored rows."""
        if self.one("SELECT 1 FROM records WHERE dataset = ? AND row = ?", [dataset, row]) is None:
            return None
        return self.scalar("SELECT count(*) FROM records WHERE dataset = ? AND row < ?", [dataset, row])

    def existing_rows(self, dataset: str, rows: Iterable[int]) -> list[int]:
        rows = list(rows)
        return [r[0] for r in self.rows(
            "SELECT row FROM records WHERE dataset = ? AND list_contains(?, row) ORDER BY row", [dataset, rows])]

    def first_rows(self, dataset: str, limit: int) -> list[int]:
        return [r[0] for r in self.rows("SELECT row FROM records WHERE dataset = ? ORDER BY row LIMIT ?",
                                        [dataset, limit])]
