"""Reading and writing pair_scores: a model's scores of the chosen and the rejected side of each pair.

A reader sees, for each model, the scores of its latest revision on the dataset's current version
(an older version's scores or an older revision's stay in the table, as provenance).
"""

from __future__ import annotations

import pyarrow as pa

_COLUMNS = "s.row, s.model, s.score_chosen, s.score_rejected, s.margin"

_EMPTY = pa.schema([
    ("row", pa.int64()), ("model", pa.string()), ("score_chosen", pa.float64()),
    ("score_rejected", pa.float64()), ("margin", pa.float64()),
])

# the latest revision of each model that scored a version: the one scored most recently
_LATEST = """WITH v AS (SELECT version FROM datasets WHERE name = $dataset),
latest AS (
    SELECT model, arg_max(model_revision, scored_at) AS model_revision
    FROM pair_scores, v
    WHERE dataset = $dataset AND dataset_version = v.version
    GROUP BY model
)"""


def current_scores(db, dataset: str, model: str | None = None) -> pa.Table:
    """Columns row, model, score_chosen, score_rejected, margin of the dataset's current version: of
    ``model`` (its latest revision), or of every model that scored that version when None."""
    params = {"dataset": dataset}
    where = ""
    if model is not None:
        where = "AND s.model = $model"
        params["model"] = model
    table = db.arrow(
        f"""{_LATEST}
        SELECT {_COLUMNS} FROM pair_scores s, v, latest l
        WHERE s.dataset = $dataset AND s.dataset_version = v.version
          AND s.model = l.model AND s.model_revision = l.model_revision {where}
        ORDER BY s.model, s.row""",
        params,
    )
    return table.cast(_EMPTY) if table.num_rows else _EMPTY.empty_table()


def scoring_models(db, dataset: str) -> list[str]:
    """The models that scored the dataset's current version, by name."""
    return [
        r[0]
        for r in db.rows(
            """SELECT DISTINCT s.model FROM pair_scores s JOIN datasets d
               ON d.name = s.dataset AND d.version = s.dataset_version
               WHERE s.dataset = ? ORDER BY 1""",
            [dataset],
        )
    ]


def score_counts(db, dataset: str, version: int, model: str, revision: str) -> int:
    """How many pairs of that version the model revision has scored."""
    return int(db.scalar(
        """SELECT count(*) FROM pair_scores WHERE dataset = ? AND dataset_version = ?
           AND model = ? AND model_revision = ?""",
        [dataset, version, model, revision],
    ) or 0)


def write_scores(db, results: pa.Table, *, dataset: str, version: int, model: str, revision: str,
                 kind: str, job: str | None, scored_by: str | None) -> int:
    """Insert one batch of scores (columns row, score_chosen, score_rejected) in one transaction; a
    pair already scored by this model revision keeps its first score (nothing is written twice)."""
    if results.num_rows == 0:
        return 0
    batch = pa.table({
        "row": results["row"].cast(pa.int64()),
        "score_chosen": results["score_chosen"].cast(pa.float64()),
        "score_rejected": results["score_rejected"].cast(pa.float64()),
    })

    def run(cur):
        cur.register("_scores_batch", batch)
        try:
            written = cur.execute(
                """INSERT INTO pair_scores
                   SELECT ?, ?, b.row, ?, ?, ?, b.score_chosen, b.score_rejected,
                          b.score_chosen - b.score_rejected, ?, ?, now()
                   FROM _scores_batch b
                   ON CONFLICT DO NOTHING""",
                [dataset, version, model, revision, kind, job, scored_by],
            ).fetchone()[0]
        finally:
            cur.unregister("_scores_batch")
        return int(written or 0)

    return db.write(run)
