"""The database: one DuckDB file, owned by one process, and every SQL statement the app runs.

``Database`` opens (or creates) the file, brings its schema up to date with the migrations below,
and offers two ways in:

* reads -- ``db.rows(sql, params)`` / ``db.one(...)`` / ``db.scalar(...)`` run on a cursor of the
  calling thread, so many threads can read at once;
* writes -- ``db.write(fn)`` runs ``fn(cursor)`` inside one transaction, one writer at a time
  (a process-wide lock), and rolls the whole transaction back if ``fn`` raises.

The SQL for each concept lives in a section of this module (datasets and records, indexes, labels,
revisions), next to the migration that created its tables.
"""

from __future__ import annotations

import json
import os
import re
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
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
]


# Range filters of the search indexes: a number is indexed as one token of SEARCH_NUMBER_WIDTH digits,
# floor(value * SCALE) clamped to +-LIMIT and shifted by OFFSET, so that the order of the tokens is the
# order of the numbers and a Lucene term range is a numeric range (to 1e-6, for |value| up to 4e12).
SEARCH_NUMBER_SCALE = 10**6
SEARCH_NUMBER_LIMIT = 4 * 10**18
SEARCH_NUMBER_OFFSET = 5 * 10**18
SEARCH_NUMBER_WIDTH = 19


def search_number_sql(expr: str) -> str:
    """SQL turning the DOUBLE ``expr`` into its range-filter token ('' for NULL, NaN or infinite)."""
    return (
        f"CASE WHEN ({expr}) IS NULL OR isnan({expr}) OR isinf({expr}) THEN '' ELSE "
        f"lpad((greatest(least(floor(({expr}) * {SEARCH_NUMBER_SCALE}), {SEARCH_NUMBER_LIMIT}), "
        f"-{SEARCH_NUMBER_LIMIT})::HUGEINT + {SEARCH_NUMBER_OFFSET})::VARCHAR, {SEARCH_NUMBER_WIDTH}, '0') END"
    )


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


def _utc_now():
    """Now, in UTC, as a naive timestamp (what TIMESTAMP columns hold)."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


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
        return self.cursor().execute(sql, params or []).to_arrow_table()

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

    def replace_dataset(
        self,
        info: dict,
        normalize: Callable[[str], str],
        relations: dict[str, Any],
    ) -> DatasetInfo:
        """Replace dataset ``info['name']`` with normalized rows, all in one transaction.

        ``normalize(source)`` returns a SELECT over the relation named ``source`` giving the records
        columns plus ``problem`` (NULL for a good row, else the reason) and ``raw`` (the source row
        as JSON, kept for rejected rows). ``relations`` are the Arrow tables it reads (the source is
        ``src``), registered for the duration of the write. If anything fails, nothing changes.
        """
        name = info["name"]

        def run(cur):
            for rel_name, table in relations.items():
                cur.register(rel_name, table)
            try:
                old = cur.execute("SELECT version, created_at FROM datasets WHERE name = ?", [name]).fetchone()
                cur.execute("DELETE FROM records WHERE dataset = ?", [name])
                cur.execute("DELETE FROM rejects WHERE dataset = ?", [name])
                cur.execute("DELETE FROM datasets WHERE name = ?", [name])
                # one normalization pass lands the good rows, in source order ...
                cur.execute(
                    f"""INSERT INTO records
                        SELECT ?, row, prompt, chosen, rejected, text, source_id, score_chosen,
                               score_rejected, metadata
                        FROM ({normalize("src")}) WHERE problem IS NULL""",
                    [name],
                )
                # ... and a second one, over just the rows that did not land, keeps their reasons
                cur.execute(
                    "CREATE OR REPLACE TEMP VIEW _left_out AS SELECT * FROM src "
                    "WHERE __row NOT IN (SELECT row FROM records WHERE dataset = " + _literal(name) + ")"
                )
                cur.execute(
                    f"INSERT INTO rejects SELECT ?, row, problem, raw FROM ({normalize('_left_out')}) ORDER BY row",
                    [name],
                )
                cur.execute("DROP VIEW _left_out")
            finally:
                for rel_name in relations:
                    try:
                        cur.unregister(rel_name)
                    except duckdb.Error:
                        pass  # the transaction failed; the original error is what matters
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

    # =============================================================================================
    # Labels: the append-only event log ``label_events`` and the ``current_labels`` view over it
    # =============================================================================================

    _UNDONE = (
        "SELECT TRY_CAST(json_extract_string(options, '$.undoes') AS BIGINT) AS id "
        "FROM label_events WHERE label = 'undo'"
    )

    def add_label_event(self, dataset: str, row: int, annotator: str, label: str,
                        confidence: int | None = None, note: str | None = None,
                        tags: Sequence[str] | None = None, options: dict | None = None) -> dict:
        """Append one label event; return it (with its id)."""
        created = _utc_now()

        def run(cur):
            return cur.execute(
                """INSERT INTO label_events (dataset, row, annotator, label, confidence, note, tags, options, created_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id""",
                [dataset, row, annotator, label, confidence, note, list(tags or []),
                 json.dumps(options or {}), created],
            ).fetchone()[0]

        event_id = self.write(run)
        return {"id": event_id, "dataset": dataset, "row": row, "annotator": annotator, "label": label,
                "confidence": confidence, "note": note, "tags": list(tags or []), "created_at": created}

    def undo_last_label(self, dataset: str, annotator: str, options: dict | None = None) -> dict | None:
        """Append an undo of ``annotator``'s latest label in ``dataset`` that is still in effect.

        Returns the event undone (id, row, label), or None when there is nothing left to undo.
        """
        created = _utc_now()

        def run(cur):
            last = cur.execute(
                f"""SELECT id, row, label, confidence FROM label_events
                    WHERE dataset = ? AND annotator = ? AND label <> 'undo'
                      AND id NOT IN (SELECT id FROM ({self._UNDONE}) WHERE id IS NOT NULL)
                    ORDER BY id DESC LIMIT 1""",
                [dataset, annotator],
            ).fetchone()
            if last is None:
                return None
            cur.execute(
                """INSERT INTO label_events (dataset, row, annotator, label, options, created_at)
                   VALUES (?, ?, ?, 'undo', ?, ?)""",
                [dataset, last[1], annotator, json.dumps((options or {}) | {"undoes": last[0]}), created],
            )
            return {"id": last[0], "row": last[1], "label": last[2], "confidence": last[3]}

        return self.write(run)

    def label_log(self, dataset: str | None = None):
        """The raw event log (undo events included) in the order it was written, as Arrow."""
        where = "WHERE dataset = ?" if dataset else ""
        return self._label_arrow(
            f"""SELECT id, dataset, row, annotator, label, confidence, note, tags, options::VARCHAR AS options,
                       created_at
                FROM label_events {where} ORDER BY id""",
            [dataset] if dataset else None,
        )

    def _label_arrow(self, sql: str, params: list | None):
        """An Arrow result read on a cursor of its own (a half-read result elsewhere cannot block it)."""
        cur = self._con.cursor()
        try:
            return cur.sql(sql, params=params).to_arrow_table()
        finally:
            cur.close()

    def label_event_count(self, dataset: str | None = None) -> int:
        if dataset:
            return self.scalar("SELECT count(*) FROM label_events WHERE dataset = ?", [dataset])
        return self.scalar("SELECT count(*) FROM label_events")

    def current_label(self, dataset: str, row: int, annotator: str) -> dict | None:
        r = self.dicts(
            "SELECT * FROM current_labels WHERE dataset = ? AND row = ? AND annotator = ?",
            [dataset, row, annotator],
        )
        return r[0] if r else None

    def pair_labels(self, dataset: str, row: int) -> list[dict]:
        """Every annotator's current label of one pair."""
        return self.dicts(
            "SELECT annotator, label, confidence, note, tags, created_at FROM current_labels "
            "WHERE dataset = ? AND row = ? ORDER BY annotator",
            [dataset, row],
        )

    def current_labels_of(self, dataset: str) -> list[tuple[int, str, str]]:
        """(row, annotator, label) of every current label in ``dataset``."""
        return self.rows(
            "SELECT row, annotator, label FROM current_labels WHERE dataset = ? ORDER BY row, annotator",
            [dataset],
        )

    def labeled_rows(self, dataset: str, annotator: str) -> dict[int, str]:
        """{row: label} of ``annotator``'s current labels in ``dataset``."""
        return dict(self.rows(
            "SELECT row, label FROM current_labels WHERE dataset = ? AND annotator = ?", [dataset, annotator]
        ))

    def label_annotators(self, dataset: str) -> list[str]:
        return [r[0] for r in self.rows(
            "SELECT DISTINCT annotator FROM current_labels WHERE dataset = ? ORDER BY 1", [dataset]
        )]

    def label_tags(self, dataset: str, limit: int = 50) -> list[str]:
        """The tags used in ``dataset``, most used first."""
        return [r[0] for r in self.rows(
            """SELECT tag FROM (SELECT unnest(tags) AS tag FROM current_labels WHERE dataset = ?)
               GROUP BY tag ORDER BY count(*) DESC, tag LIMIT ?""",
            [dataset, limit],
        )]

    def label_progress(self, dataset: str, annotator: str, rows: Sequence[int] | None = None) -> dict:
        """Counts over the pairs of ``dataset`` (or only ``rows``): total, labeled by ``annotator``
        (skips among them), labeled (not skipped) by anyone, and how many annotators."""
        if rows is None:
            total = self.scalar("SELECT count(*) FROM records WHERE dataset = ? AND rejected IS NOT NULL", [dataset])
            in_rows, params = "", [annotator, annotator, dataset]
        else:
            total = len(set(rows))
            in_rows, params = "AND list_contains(?, row)", [annotator, annotator, dataset, list(rows)]
        mine, skipped, anyone, annotators = self.one(
            f"""SELECT count(DISTINCT row) FILTER (WHERE annotator = ?),
                       count(DISTINCT row) FILTER (WHERE annotator = ? AND label = 'skip'),
                       count(DISTINCT row) FILTER (WHERE label <> 'skip'),
                       count(DISTINCT annotator)
                FROM current_labels WHERE dataset = ? {in_rows}""",
            params,
        )
        return {"total": total, "mine": mine, "skipped": skipped, "anyone": anyone, "annotators": annotators}

    def pair_rows_shuffled(self, dataset: str) -> list[int]:
        """The dataset's pairs in a stable pseudo-random order (the same for every annotator)."""
        return [r[0] for r in self.rows(
            "SELECT row FROM records WHERE dataset = ? AND rejected IS NOT NULL "
            "ORDER BY md5(dataset || '/' || row::VARCHAR), row",
            [dataset],
        )]

    def pairs_matching(self, dataset: str, terms: Sequence[str], limit: int = 1000) -> list[int]:
        """Rows of the pairs whose prompt or responses contain every term (case-insensitive), in source order."""
        if not terms:
            return []
        text = ("lower(array_to_string(list_transform(coalesce(prompt, []) || coalesce(chosen, []) || "
                "coalesce(rejected, []), lambda m: coalesce(m.content, '')), chr(10)))")
        conds = " AND ".join(f"contains({text}, ?)" for _ in terms)
        return [r[0] for r in self.rows(
            f"SELECT row FROM records WHERE dataset = ? AND rejected IS NOT NULL AND {conds} ORDER BY row LIMIT ?",
            [dataset, *[t.lower() for t in terms], limit],
        )]

    def preference_rows(self, dataset: str):
        """Every pair of ``dataset`` in source order (row, prompt, chosen, rejected), as Arrow."""
        return self._label_arrow(
            "SELECT row, prompt, chosen, rejected FROM records WHERE dataset = ? AND rejected IS NOT NULL ORDER BY row",
            [dataset],
        )

    # =============================================================================================
    # Revisions: the principles library and its history, revision jobs, revision results, and
    # revised pairs appended to a dataset of kind pairs (format "revisions")
    # =============================================================================================

    _PRINCIPLE_COLS = "id, grp, title, text, template, params, is_default, origin, version, deleted, updated_by, updated_at"

    def principles(self, include_deleted: bool = False) -> list[dict]:
        return self.dicts(
            f"SELECT {self._PRINCIPLE_COLS} FROM principles {'' if include_deleted else 'WHERE NOT deleted'} "
            "ORDER BY grp, id"
        )

    def principle(self, pid: str) -> dict | None:
        r = self.dicts(f"SELECT {self._PRINCIPLE_COLS} FROM principles WHERE id = ?", [pid])
        return r[0] if r else None

    def seed_principles(self, items: list[dict]) -> int:
        """Add library principles the database has never had (edited or deleted ones stay as they are)."""
        def run(cur):
            known = {r[0] for r in cur.execute("SELECT id FROM principles").fetchall()}
            added = 0
            for p in items:
                if p["id"] in known:
                    continue
                self._put_principle(cur, p, version=1, origin="library", action="library", author=None)
                added += 1
            return added

        return self.write(run)

    def save_principle(self, p: dict, author: str | None = None) -> dict:
        """Create principle ``p['id']`` or store a new version of it; every version goes to the history."""
        def run(cur):
            old = cur.execute("SELECT version, origin, deleted FROM principles WHERE id = ?", [p["id"]]).fetchone()
            if old is None:
                self._put_principle(cur, p, version=1, origin="user", action="create", author=author)
            else:
                cur.execute("DELETE FROM principles WHERE id = ?", [p["id"]])
                self._put_principle(cur, p, version=old[0] + 1, origin=old[1],
                                    action="restore" if old[2] else "edit", author=author)

        self.write(run)
        return self.principle(p["id"])

    def delete_principle(self, pid: str, author: str | None = None) -> bool:
        """Mark a principle deleted (kept, with its history, so old revisions still name it)."""
        def run(cur):
            old = cur.execute(
                f"SELECT {self._PRINCIPLE_COLS} FROM principles WHERE id = ? AND NOT deleted", [pid]
            ).fetchone()
            if old is None:
                return False
            p = dict(zip([c.strip() for c in self._PRINCIPLE_COLS.split(",")], old))
            cur.execute("DELETE FROM principles WHERE id = ?", [pid])
            self._put_principle(cur, p | {"deleted": True}, version=p["version"] + 1, origin=p["origin"],
                                action="delete", author=author)
            return True

        return self.write(run)

    @staticmethod
    def _put_principle(cur, p: dict, version: int, origin: str, action: str, author: str | None) -> None:
        grp = p.get("group") or p.get("grp") or "other"
        params = list(p.get("params") or [])
        template = bool(p.get("template"))
        is_default = bool(p.get("default", p.get("is_default", False)))
        cur.execute(
            "INSERT INTO principles VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, now())",
            [p["id"], grp, p["title"], p["text"], template, params, is_default, origin, version,
             bool(p.get("deleted")), author],
        )
        cur.execute(
            "INSERT INTO principle_history VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, now())",
            [p["id"], version, action, grp, p["title"], p["text"], template, params, is_default, author],
        )

    def principle_history(self, pid: str | None = None, limit: int = 200) -> list[dict]:
        where, params = ("WHERE id = ?", [pid]) if pid else ("", [])
        return self.dicts(
            f'SELECT id, version, action, grp, title, text, author, "at" FROM principle_history {where} '
            'ORDER BY "at" DESC, version DESC LIMIT ?',
            params + [limit],
        )

    # -- jobs ------------------------------------------------------------------------------------

    def create_revision_job(self, job: dict) -> dict:
        def run(cur):
            cur.execute(
                "INSERT INTO revision_jobs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'running', NULL, now(), now())",
                [job["id"], job["key"], job["dataset"], job["side"], json.dumps(job.get("selection") or {}),
                 list(job["rows"]), json.dumps(job["principles"]), json.dumps(job["backend"]),
                 json.dumps(job["settings"]), job.get("accept_into")],
            )

        self.write(run)
        return self.revision_job(job["id"])

    def revision_job(self, job_id: str) -> dict | None:
        r = self.revision_jobs(job_id=job_id)
        return r[0] if r else None

    def revision_jobs(self, job_id: str | None = None, key: str | None = None, unfinished: bool = False,
                      limit: int = 100) -> list[dict]:
        where, params = ["TRUE"], []
        if job_id:
            where.append("j.id = ?"), params.append(job_id)
        if key:
            where.append("j.key = ?"), params.append(key)
        if unfinished:
            where.append("j.status IN ('running', 'interrupted', 'failed')")
        out = self.dicts(
            f"""SELECT j.*,
                       (SELECT count(*) FROM revisions r WHERE r.job_id = j.id) AS done,
                       (SELECT count(*) FROM revisions r WHERE r.job_id = j.id AND r.status = 'pending') AS pending,
                       (SELECT count(*) FROM revisions r WHERE r.job_id = j.id AND r.status = 'failed') AS failed
                FROM revision_jobs j WHERE {' AND '.join(where)}
                ORDER BY j.created_at DESC LIMIT ?""",
            params + [limit],
        )
        for j in out:
            for k in ("selection", "principles", "backend", "settings"):
                if isinstance(j.get(k), str):
                    j[k] = json.loads(j[k])
            j["total"] = len(j["rows"])
        return out

    def set_revision_job_status(self, job_id: str, status: str, message: str | None = None) -> None:
        self.write(lambda cur: cur.execute(
            "UPDATE revision_jobs SET status = ?, message = ?, updated_at = now() WHERE id = ?",
            [status, message, job_id],
        ))

    def revision_job_done_rows(self, job_id: str) -> set[int]:
        """Rows of the job that have a result (failed ones excepted: a resumed job tries them again)."""
        return {r[0] for r in self.rows(
            "SELECT row FROM revisions WHERE job_id = ? AND status <> 'failed'", [job_id])}

    # -- results ---------------------------------------------------------------------------------

    _REVISION_JSON = ("principles", "settings", "tokens")
    _REVISION_COLS = ["id", "job_id", "dataset", "row", "side", "dataset_version", "prompt", "original", "critique",
                      "violations", "critique_parsed", "revision", "final_revision", "edited", "status", "error",
                      "principles", "model", "backend", "endpoint", "device", "dtype", "settings", "seed", "tokens",
                      "latency_s", "ttft_s", "notes"]

    def add_revisions(self, items: list[dict]) -> None:
        """Store revision results; a failed row of a job is replaced when it is tried again."""
        def run(cur):
            for it in items:
                self._insert_revision(cur, it)

        self.write(run)

    def _insert_revision(self, cur, it: dict) -> None:
        cols = self._REVISION_COLS
        casts = {"prompt": f"::{MESSAGES}", "original": f"::{MESSAGES}"}
        if it.get("job_id"):
            cur.execute("DELETE FROM revisions WHERE job_id = ? AND row = ? AND status = 'failed'",
                        [it["job_id"], it["row"]])
        cur.execute(
            f"INSERT INTO revisions ({', '.join(cols)}, created_at) "
            f"VALUES ({', '.join('?' + casts.get(c, '') for c in cols)}, now())",
            [json.dumps(it.get(c)) if c in self._REVISION_JSON else it.get(c) for c in cols],
        )

    def revision(self, rid: str) -> dict | None:
        r = self.revisions(rid=rid)
        return r[0] if r else None

    def revisions(self, rid: str | None = None, status: str | None = None, job_id: str | None = None,
                  dataset: str | None = None, limit: int = 500, offset: int = 0) -> list[dict]:
        where, params = ["TRUE"], []
        for col, val in (("id", rid), ("status", status), ("job_id", job_id), ("dataset", dataset)):
            if val is not None:
                where.append(f"{col} = ?"), params.append(val)
        out = self.dicts(
            f"SELECT * FROM revisions WHERE {' AND '.join(where)} ORDER BY created_at, dataset, row LIMIT ? OFFSET ?",
            params + [limit, offset],
        )
        for r in out:
            for k in self._REVISION_JSON:
                if isinstance(r.get(k), str):
                    r[k] = json.loads(r[k])
        return out

    def reject_revision(self, rid: str, reviewed_by: str | None = None) -> None:
        self.write(lambda cur: cur.execute(
            "UPDATE revisions SET status = 'rejected', reviewed_by = ?, reviewed_at = now() WHERE id = ? AND status = 'pending'",
            [reviewed_by, rid],
        ))

    def accept_revisions(self, into: str, accepted: list[dict]) -> list[int]:
        """Append the pairs of ``accepted`` to dataset ``into`` and mark their revisions accepted.

        Each item: ``{"revision_id" (or None for a pair with no stored revision), "final_revision",
        "edited", "reviewed_by", "pair": {prompt, chosen, rejected, metadata, source_id}}``, and
        ``"new_revision"`` (a revision record to store first) for one not yet in the database.
        One transaction: either every pair lands and every revision is marked, or nothing changes.
        Returns the new rows of ``into``.
        """
        def run(cur):
            for a in accepted:
                if a.get("new_revision"):
                    self._insert_revision(cur, a["new_revision"])
            rows = self._append_pairs(cur, into, [a["pair"] for a in accepted])
            for a, row in zip(accepted, rows):
                if a.get("revision_id"):
                    cur.execute(
                        """UPDATE revisions SET status = 'accepted', final_revision = ?, edited = ?,
                                  reviewed_by = ?, reviewed_at = now(), into_dataset = ?, into_row = ?
                           WHERE id = ?""",
                        [a["final_revision"], bool(a.get("edited")), a.get("reviewed_by"), into, row,
                         a["revision_id"]],
                    )
            return rows

        return self.write(run)

    def add_revision_pairs(self, into: str, pairs: list[dict]) -> list[int]:
        """Append pairs ``{prompt, chosen, rejected, metadata, source_id}`` to dataset ``into``.

        The dataset is created (kind pairs, format ``revisions``) when it does not exist; otherwise
        it must be a pairs dataset, gets the rows after its last one, and its version is bumped.
        """
        return self.write(lambda cur: self._append_pairs(cur, into, pairs))

    def _append_pairs(self, cur, into: str, pairs: list[dict]) -> list[int]:
        info = cur.execute("SELECT kind, version FROM datasets WHERE name = ?", [into]).fetchone()
        if info is not None and info[0] != "pairs":
            raise DatabaseError(f"dataset {into!r} holds {info[0]}; revised pairs go into a pairs dataset "
                                "(choose another name)")
        first = cur.execute("SELECT coalesce(max(row) + 1, 0) FROM records WHERE dataset = ?", [into]).fetchone()[0]
        rows = list(range(first, first + len(pairs)))
        for row, p in zip(rows, pairs):
            cur.execute(
                f"""INSERT INTO records VALUES (?, ?, ?::{MESSAGES}, ?::{MESSAGES}, ?::{MESSAGES}, NULL, ?,
                                                NULL, NULL, ?::JSON)""",
                [into, row, p["prompt"], p["chosen"], p["rejected"], p.get("source_id"),
                 json.dumps(p.get("metadata") or {})],
            )
        columns = {k: "json" for p in pairs for k in (p.get("metadata") or {})}
        if info is None:
            cur.execute(
                """INSERT INTO datasets VALUES (?, 'pairs', 'revisions', 'revise', NULL, NULL, ?, 0, '{}', ?,
                                               NULL, 1, now(), now())""",
                [into, len(pairs), json.dumps(columns)],
            )
        else:
            cur.execute(
                """UPDATE datasets SET row_count = (SELECT count(*) FROM records WHERE dataset = ?),
                                       version = version + 1, updated_at = now()
                   WHERE name = ?""",
                [into, into],
            )
        return rows

    def existing_rows(self, dataset: str, rows: Iterable[int]) -> list[int]:
        rows = list(rows)
        return [r[0] for r in self.rows(
            "SELECT row FROM records WHERE dataset = ? AND list_contains(?, row) ORDER BY row", [dataset, rows])]

    def first_rows(self, dataset: str, limit: int) -> list[int]:
        return [r[0] for r in self.rows("SELECT row FROM records WHERE dataset = ? ORDER BY row LIMIT ?",
                                        [dataset, limit])]

    def rows_matching(self, dataset: str, terms: list[str], limit: int) -> list[int]:
        """Rows whose messages contain every term (case-insensitive), in source order."""
        text = ("lower(coalesce(text, '') || ' ' || array_to_string(list_transform("
                "coalesce(prompt, []) || coalesce(chosen, []) || coalesce(rejected, []), lambda m: m.content), ' '))")
        where = " AND ".join(f"contains({text}, lower(?))" for _ in terms) or "TRUE"
        return [r[0] for r in self.rows(
            f"SELECT row FROM records WHERE dataset = ? AND {where} ORDER BY row LIMIT ?", [dataset, *terms, limit])]

    # =============================================================================================
    # Search: the metadata of each dataset's Lucene index (search_indexes), and the rows an index
    # is built from, as the JSON documents Anserini's indexer reads
    # =============================================================================================

    def search_index(self, dataset: str) -> dict | None:
        r = self.dicts("SELECT * FROM search_indexes WHERE dataset = ?", [dataset])
        return self._index_row(r[0]) if r else None

    def search_index_overview(self) -> list[dict]:
        """Every dataset with its index (NULL columns where it has none) and whether it is stale."""
        rows = self.dicts(
            """SELECT d.name AS dataset, d.kind, d.split, d.row_count, d.version,
                      s.path, s.documents, s.build_seconds, s.k1, s.b, s.dataset_version, s.built_at,
                      s.numeric_fields,
                      s.dataset IS NOT NULL AND s.dataset_version <> d.version AS stale
               FROM datasets d LEFT JOIN search_indexes s ON s.dataset = d.name
               ORDER BY d.name"""
        )
        return [self._index_row(r) for r in rows]

    @staticmethod
    def _index_row(r: dict) -> dict:
        if isinstance(r.get("numeric_fields"), str):
            r["numeric_fields"] = json.loads(r["numeric_fields"])
        return r

    def save_search_index(self, dataset: str, path: str, documents: int, build_seconds: float, k1: float,
                          b: float, dataset_version: int, built_at: Any, numeric_fields: dict) -> None:
        def run(cur):
            cur.execute("DELETE FROM search_indexes WHERE dataset = ?", [dataset])
            cur.execute(
                "INSERT INTO search_indexes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [dataset, path, documents, build_seconds, k1, b, dataset_version, built_at,
                 json.dumps(numeric_fields)],
            )

        self.write(run)

    def delete_search_index(self, dataset: str) -> None:
        self.write(lambda cur: cur.execute("DELETE FROM search_indexes WHERE dataset = ?", [dataset]))

    def search_documents(self, dataset: str, metadata_fields: dict[str, str], batch_rows: int = 20_000):
        """Yield the rows of ``dataset`` as JSON documents for the indexer, ``batch_rows`` at a time.

        Each document has the Lucene ``id`` ``DATASET/ROW`` (the row zero-padded, so that ties in
        score sort in source order), the text fields ``contents`` (everything), ``prompt``,
        ``chosen``, ``rejected`` and ``final`` (the last user turn and the last turn of each
        response), ``source_id`` (stored, not searched), and the range-filter fields: ``n_length``
        (characters of contents), ``n_score_chosen``, ``n_score_rejected``, ``n_margin`` (chosen
        minus rejected) and one per entry of ``metadata_fields`` ({field: metadata column}), each
        holding its number as one sortable token (``search_number_sql``).
        """
        numbers = {
            "n_length": "length(contents)::DOUBLE",
            "n_score_chosen": "score_chosen::DOUBLE",
            "n_score_rejected": "score_rejected::DOUBLE",
            "n_margin": "(score_chosen - score_rejected)::DOUBLE",
        }
        for field, column in metadata_fields.items():
            path = '$."' + column.replace("\\", "\\\\").replace('"', '\\"') + '"'
            numbers[field] = "TRY_CAST(json_extract(metadata, '" + path.replace("'", "''") + "') AS DOUBLE)"
        keys = ", ".join(f"'{field}': {search_number_sql(expr)}" for field, expr in numbers.items())
        sql = f"""
            WITH r AS (
                SELECT row, source_id, text, score_chosen, score_rejected, metadata,
                       nullif(array_to_string(list_transform(prompt, lambda m: m.content), '\n\n'), '') AS p,
                       nullif(array_to_string(list_transform(chosen, lambda m: m.content), '\n\n'), '') AS c,
                       nullif(array_to_string(list_transform(rejected, lambda m: m.content), '\n\n'), '') AS rj,
                       concat_ws('\n\n', list_filter(prompt, lambda m: m.role = 'user')[-1].content,
                                 chosen[-1].content, rejected[-1].content) AS fin
                FROM records WHERE dataset = $dataset
            ), d AS (
                SELECT *, concat_ws('\n\n', nullif(text, ''), p, c, rj) AS contents FROM r
            )
            SELECT to_json({{
                'id': $dataset || '/' || lpad(row::VARCHAR, 12, '0'),
                'contents': contents, 'prompt': coalesce(p, ''), 'chosen': coalesce(c, ''),
                'rejected': coalesce(rj, ''), 'final': fin, 'source_id': source_id, {keys}
            }})::VARCHAR AS doc
            FROM d ORDER BY row"""
        cur = self._con.cursor()
        try:
            reader = cur.sql(sql, params={"dataset": dataset}).to_arrow_reader(batch_rows)
            for batch in reader:
                yield batch.column(0).to_pylist()
        finally:
            cur.close()

    def source_ids(self, dataset: str, rows: Iterable[int]) -> dict[int, str]:
        """{row: source id} for those of ``rows`` whose record has a source id."""
        return dict(self.rows(
            """SELECT r.row, r.source_id FROM records r
               WHERE r.dataset = ? AND r.source_id IS NOT NULL
                 AND r.row IN (SELECT unnest(?::BIGINT[]))""",
            [dataset, list(rows)],
        ))

    def search_label_rows(self, dataset: str, status: str) -> list[int]:
        """Rows of ``dataset`` with a current judgment (``labeled``: chosen, rejected, tie or both
        bad; skips do not count), or whose majority judgment is ``rejected`` (``flipped``)."""
        if status == "flipped":
            having = ("HAVING count(*) FILTER (WHERE label = 'rejected') > greatest("
                      "count(*) FILTER (WHERE label = 'chosen'), count(*) FILTER (WHERE label = 'tie'), "
                      "count(*) FILTER (WHERE label = 'both_bad'))")
        elif status == "labeled":
            having = ""
        else:
            raise ValueError(f"unknown label status {status!r}")
        return [r[0] for r in self.rows(
            f"""SELECT row FROM current_labels
                WHERE dataset = ? AND label IN ('chosen', 'rejected', 'tie', 'both_bad')
                GROUP BY row {having} ORDER BY row""",
            [dataset],
        )]
