"""Revision results: stored for review, accepted (possibly edited) as pairs of a dataset, or rejected.

An accepted revision becomes a preference pair (prompt = the conversation before the final turn,
chosen = the revision, rejected = the original final turn) appended to a dataset of kind pairs
(format ``revisions``; ``DATASET-revisions`` unless the user names another), with its provenance as
the record's metadata. The pair and the revision's new status land in one transaction.
"""

from __future__ import annotations

import json

from ..names import InvalidName, check_dataset_name
from ..schema import MESSAGES
from ..store import Database, DatabaseError
from ..text import utc_now
from .errors import RevisionError

_JSON_COLUMNS = ("principles", "settings", "tokens", "persona")
_COLUMNS = ["id", "job_id", "dataset", "row", "side", "dataset_version", "prompt", "original", "critique",
            "violations", "critique_parsed", "revision", "final_revision", "edited", "status", "error",
            "principles", "model", "backend", "endpoint", "device", "dtype", "settings", "seed", "tokens",
            "latency_s", "ttft_s", "notes", "persona"]


def default_into(dataset: str) -> str:
    """The dataset accepted revisions of ``dataset`` go to unless the user names another.

    >>> default_into("hh-test")
    'hh-test-revisions'
    """
    return f"{dataset}-revisions"


def target_name(into: str | None, dataset: str) -> str:
    """The dataset accepted pairs go to: ``into`` (checked by the one dataset-name rule), else the default."""
    into = (into or "").strip() or default_into(dataset)
    try:
        return check_dataset_name(into)
    except InvalidName as err:
        raise RevisionError(str(err)) from None


# -- the revisions table ------------------------------------------------------------------------------


def add_revisions(db: Database, items: list[dict]) -> None:
    """Store revision results; a failed row of a job is replaced when it is tried again."""
    def run(cur):
        for it in items:
            _insert(cur, it)

    db.write(run)


def _insert(cur, it: dict) -> None:
    casts = {"prompt": f"::{MESSAGES}", "original": f"::{MESSAGES}"}
    if it.get("job_id"):
        cur.execute("DELETE FROM revisions WHERE job_id = ? AND row = ? AND status = 'failed'", [it["job_id"], it["row"]])
    cur.execute(
        f"INSERT INTO revisions ({', '.join(_COLUMNS)}, created_at) "
        f"VALUES ({', '.join('?' + casts.get(c, '') for c in _COLUMNS)}, now())",
        [json.dumps(it.get(c)) if c in _JSON_COLUMNS else it.get(c) for c in _COLUMNS],
    )


def revisions(db: Database, rid: str | None = None, status: str | None = None, job_id: str | None = None,
              dataset: str | None = None, limit: int = 500, offset: int = 0) -> list[dict]:
    """Stored revisions, oldest first, filtered by any of id, status, job and source dataset."""
    where, params = ["TRUE"], []
    for col, val in (("id", rid), ("status", status), ("job_id", job_id), ("dataset", dataset)):
        if val is not None:
            where.append(f"{col} = ?"), params.append(val)
    out = db.dicts(
        f"SELECT * FROM revisions WHERE {' AND '.join(where)} ORDER BY created_at, dataset, row LIMIT ? OFFSET ?",
        params + [limit, offset],
    )
    for r in out:
        for k in _JSON_COLUMNS:
            if isinstance(r.get(k), str):
                r[k] = json.loads(r[k])
    return out


def get_revision(db: Database, rid: str) -> dict | None:
    found = revisions(db, rid=rid)
    return found[0] if found else None


def pending(db: Database, job_id: str | None = None, limit: int = 500) -> list[dict]:
    return revisions(db, status="pending", job_id=job_id, limit=limit)


def reject(db: Database, revision_id: str, reviewed_by: str | None = None) -> None:
    db.write(lambda cur: cur.execute(
        "UPDATE revisions SET status = 'rejected', reviewed_by = ?, reviewed_at = now() WHERE id = ? AND status = 'pending'",
        [(reviewed_by or "").strip() or None, revision_id],
    ))


def accept_revisions(db: Database, into: str, accepted: list[dict]) -> list[int]:
    """Append the pairs of ``accepted`` to dataset ``into`` and mark their revisions accepted.

    Each item: ``{"revision_id" (or None for a pair with no stored revision), "final_revision",
    "edited", "reviewed_by", "pair": {prompt, chosen, rejected, metadata, source_id}}``, and
    ``"new_revision"`` (a revision record to store first) for one not yet in the database.
    One transaction: either every pair lands and every revision is marked, or nothing changes.
    Returns the new rows of ``into``; RevisionError when ``into`` holds something other than pairs.
    """
    def run(cur):
        for a in accepted:
            if a.get("new_revision"):
                _insert(cur, a["new_revision"])
        rows = _append_pairs(cur, into, [a["pair"] for a in accepted])
        for a, row in zip(accepted, rows):
            if a.get("revision_id"):
                cur.execute(
                    """UPDATE revisions SET status = 'accepted', final_revision = ?, edited = ?,
                              reviewed_by = ?, reviewed_at = now(), into_dataset = ?, into_row = ?
                       WHERE id = ?""",
                    [a["final_revision"], bool(a.get("edited")), a.get("reviewed_by"), into, row, a["revision_id"]],
                )
        return rows

    return db.write(run)


def _append_pairs(cur, into: str, pairs: list[dict]) -> list[int]:
    """Append pairs to dataset ``into``: created (kind pairs, format ``revisions``) when missing, else
    it must hold pairs; the new rows follow its last one and its version is bumped."""
    info = cur.execute("SELECT kind, version FROM datasets WHERE name = ?", [into]).fetchone()
    if info is not None and info[0] != "pairs":
        raise RevisionError(f"dataset {into!r} holds {info[0]}; revised pairs go into a pairs dataset "
                            "(choose another name)")
    first = cur.execute("SELECT coalesce(max(row) + 1, 0) FROM records WHERE dataset = ?", [into]).fetchone()[0]
    rows = list(range(first, first + len(pairs)))
    for row, p in zip(rows, pairs):
        cur.execute(
            f"""INSERT INTO records VALUES (?, ?, ?::{MESSAGES}, ?::{MESSAGES}, ?::{MESSAGES}, NULL, ?,
                                            NULL, NULL, ?::JSON)""",
            [into, row, p["prompt"], p["chosen"], p["rejected"], p.get("source_id"), json.dumps(p.get("metadata") or {})],
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


# -- accepting: a revision becomes a pair ----------------------------------------------------------


def with_system(prompt: list[dict], system: str) -> tuple[list[dict], str | None]:
    """``prompt`` starting with ``system`` as its system message (the Multifaceted Collection format);
    a system turn the conversation opened with is replaced, and returned so that it can be kept.

    >>> with_system([{"role": "system", "content": "old"}, {"role": "user", "content": "hi"}], "new")
    ([{'role': 'system', 'content': 'new'}, {'role': 'user', 'content': 'hi'}], 'old')
    """
    rest = list(prompt or [])
    replaced = rest.pop(0)["content"] if rest and rest[0].get("role") == "system" else None
    return [{"role": "system", "content": system}] + rest, replaced


def pair_of(result: dict, final_text: str, edited: bool, reviewed_by: str | None) -> dict:
    """The preference pair of a revision, with its provenance as the record's metadata. A revision
    for a persona gets the persona's system message as the first turn of its prompt."""
    persona = result.get("persona")
    prompt, replaced = with_system(result["prompt"], persona["system_message"]) if persona else (result["prompt"], None)
    meta = {
        "source_dataset": result["dataset"],
        "source_row": result["row"],
        "source_side": result["side"],
        "source_version": result.get("dataset_version"),
        "principles": [p["id"] for p in result["principles"]],
        "principle_texts": result["principles"],
        "violations": list(result.get("violations") or []),
        "critique": result.get("critique"),
        "critique_parsed": result.get("critique_parsed"),
        "model": result["model"],
        "backend": result["backend"],
        "endpoint": result.get("endpoint"),
        "device": result["device"],
        "dtype": result["dtype"],
        "settings": result["settings"],
        "seed": result["seed"],
        "tokens": result["tokens"],
        "latency_s": result["latency_s"],
        "ttft_s": result.get("ttft_s"),
        "notes": list(result.get("notes") or []),
        "revised_at": utc_now().strftime("%Y-%m-%dT%H:%M:%SZ"),
        "accepted_by": reviewed_by,
        "edited": bool(edited),
        "model_revision": result.get("revision") if edited else None,
        "revision_id": result["id"],
        "job_id": result.get("job_id"),
    }
    if persona:
        meta |= {"persona": persona["name"], "persona_version": persona["version"],
                 "system_message": persona["system_message"], "source_system": replaced}
    return {
        "prompt": prompt,
        "chosen": [{"role": "assistant", "content": final_text}],
        "rejected": result["original"],
        "source_id": f"{result['dataset']}#{result['row']}:{result['side']}" + (f"@{persona['name']}" if persona else ""),
        "metadata": meta,
    }


def accept(db: Database, result: dict, final_text: str | None = None, reviewed_by: str | None = None,
           into: str | None = None, stored: bool = False) -> tuple[str, int]:
    """Store ``result`` as a pair of dataset ``into`` (default ``DATASET-revisions``); return (into, row).

    ``final_text`` is the revision as the user left it: when it differs from the model's, the pair
    keeps the user's text and is marked edited (the model's text stays in the provenance).
    ``stored``: the revision is already in the database (a pending batch result).
    """
    model_text = (result.get("revision") or "").strip()
    final = (model_text if final_text is None else final_text).strip()
    if not final:
        raise RevisionError("the revision is empty: write one, or run the model again")
    edited = final != model_text
    into = target_name(into, result["dataset"])
    if stored:
        cur = get_revision(db, result["id"])
        if cur is None or cur["status"] != "pending":
            raise RevisionError(f"revision {result['id'][:8]} is no longer pending review")
    who = (reviewed_by or "").strip() or None
    item = {"revision_id": result["id"], "final_revision": final, "edited": edited, "reviewed_by": who,
            "pair": pair_of(result, final, edited, who)}
    if not stored:
        item["new_revision"] = result
    try:
        return into, accept_revisions(db, into, [item])[0]
    except DatabaseError as err:  # a read-only database
        raise RevisionError(str(err)) from None
