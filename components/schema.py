"""The schema of the database: every table, as one ordered list of named migrations.

Each migration is applied once, in order, and recorded in ``schema_migrations``; a newer app opens an
older file by applying the migrations the file has not seen yet. A concept's tables are created by
its own migration, and its SQL lives beside the concept (see docs/architecture.md).
"""

from __future__ import annotations

JUDGMENTS = ("chosen", "rejected", "tie", "both_bad")
"""The labels that count as a judgment of a pair (a skip does not): the one list every query uses."""


def judged(column: str = "label") -> str:
    """The SQL test that ``column`` holds a judgment.

    >>> judged("c.label")
    "c.label IN ('chosen', 'rejected', 'tie', 'both_bad')"
    """
    return f"{column} IN ({', '.join(repr(j) for j in JUDGMENTS)})"


MESSAGE = "STRUCT(role VARCHAR, content VARCHAR)"
MESSAGES = f"{MESSAGE}[]"


_LATEST_LABELS = """FROM (
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
               WHERE _latest = 1"""
"""The current label of each (dataset, row, annotator): its latest event that is neither an undo nor
undone by one (the body of the current_labels view, in every version of it)."""

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
               """ + _LATEST_LABELS,
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
    (
        "0010_simulated_labels",
        [
            # current_labels also says whether a label is a model judge's (``simulated`` in its
            # options): simulated labels are kept and compared, but never fill a pair's overlap slots.
            """CREATE OR REPLACE VIEW current_labels AS
               SELECT dataset, row, annotator, label, confidence, note, tags, created_at,
                      coalesce(TRY_CAST(json_extract(options, '$.simulated') AS BOOLEAN), false) AS simulated
               """ + _LATEST_LABELS,
        ],
    ),
    (
        "0011_jobs_and_scores",
        [
            # A job: one model step over a selection of a dataset's rows (components/jobs/runner.py).
            """CREATE TABLE jobs (
                id VARCHAR PRIMARY KEY,
                kind VARCHAR NOT NULL,            -- score | judge | embed | revise
                dataset VARCHAR NOT NULL,
                dataset_version INTEGER NOT NULL,
                settings JSON,                    -- the step's identity (model, revision, ...)
                selection JSON,                   -- {rows: [...]} | {query: ...} | {queue: ...} | {}
                status VARCHAR NOT NULL,          -- running | done | cancelled | failed | interrupted
                where_run VARCHAR NOT NULL,       -- process | endpoint | ray
                started_by VARCHAR,
                started_at TIMESTAMP NOT NULL,
                finished_at TIMESTAMP,
                rows_total BIGINT,
                rows_done BIGINT NOT NULL DEFAULT 0,
                rows_failed BIGINT NOT NULL DEFAULT 0,
                message VARCHAR
            )""",
            """CREATE TABLE job_errors (
                job VARCHAR NOT NULL,
                row BIGINT NOT NULL,
                error VARCHAR NOT NULL,
                "at" TIMESTAMP NOT NULL
            )""",
            # A model's scores of both sides of a pair, per dataset version, model and model revision.
            """CREATE TABLE pair_scores (
                dataset VARCHAR NOT NULL,
                dataset_version INTEGER NOT NULL, -- datasets.version scored
                row BIGINT NOT NULL,
                model VARCHAR NOT NULL,           -- as the user named it: a path or a Hub id
                model_revision VARCHAR NOT NULL,  -- Hub commit, or a hash of the local weights files
                kind VARCHAR NOT NULL,            -- reward | judge
                score_chosen DOUBLE,
                score_rejected DOUBLE,
                margin DOUBLE,                    -- score_chosen - score_rejected
                job VARCHAR,                      -- jobs.id
                scored_by VARCHAR,                -- identity name of who started the job
                scored_at TIMESTAMP NOT NULL,
                PRIMARY KEY (dataset, dataset_version, row, model, model_revision)
            )""",
        ],
    ),
    (
        "0012_embeddings",
        [
            # One vector per (dataset version, row, field embedded, model, model revision), L2-normalized.
            """CREATE TABLE embeddings (
                dataset VARCHAR NOT NULL,
                dataset_version INTEGER NOT NULL, -- datasets.version embedded
                row BIGINT NOT NULL,
                field VARCHAR NOT NULL,           -- prompt | chosen | rejected | text
                model VARCHAR NOT NULL,           -- as the user named it: a path or a Hub id
                model_revision VARCHAR NOT NULL,  -- Hub commit, or a hash of the local weights files
                vector FLOAT[] NOT NULL,
                job VARCHAR,                      -- jobs.id
                embedded_by VARCHAR,
                embedded_at TIMESTAMP NOT NULL,
                PRIMARY KEY (dataset, dataset_version, row, field, model, model_revision)
            )""",
        ],
    ),
    (
        "0013_graded_labels",
        [
            # What a label carries beyond its label under a dataset's label schema (labels/label_schema.py):
            # the schema's version, a grade on the 5- or 7-point scale (negative: the source's chosen side
            # better), each aspect's choice ({aspect: chosen | rejected | tie}), reasons from the schema's
            # list, a rationale, and for a dataset of N responses the ranking (response indexes, best first).
            "ALTER TABLE label_events ADD COLUMN schema_version INTEGER",
            "ALTER TABLE label_events ADD COLUMN grade INTEGER",
            "ALTER TABLE label_events ADD COLUMN aspects JSON",
            "ALTER TABLE label_events ADD COLUMN reasons VARCHAR[]",
            "ALTER TABLE label_events ADD COLUMN rationale VARCHAR",
            "ALTER TABLE label_events ADD COLUMN ranking INTEGER[]",
            """CREATE OR REPLACE VIEW current_labels AS
               SELECT dataset, row, annotator, label, confidence, note, tags, created_at,
                      coalesce(TRY_CAST(json_extract(options, '$.simulated') AS BOOLEAN), false) AS simulated,
                      schema_version, grade, aspects, reasons, rationale, ranking
               """ + _LATEST_LABELS,
        ],
    ),
]
