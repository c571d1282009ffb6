"""Duplicates in a dataset of pairs: exact duplicate prompts and pairs (hashes, in DuckDB) and
near-duplicate prompts (MinHash LSH, ``datasketch``) with their clusters.

Near duplicates are looked for among the distinct prompts, the first ``NEAR_LIMIT`` of them in
source order (shingles are hashed in DuckDB, but MinHash and the LSH index cost about 0.1 ms a
prompt in Python); the result says when it was capped. Two prompts are near duplicates when their word 3-gram sets have an estimated Jaccard
similarity of ``NEAR_THRESHOLD`` or more; clusters are the connected groups of such prompts.
"""

from __future__ import annotations

from typing import Any

import duckdb

from ..store import Database
from ..text import clip

NEAR_THRESHOLD = 0.7
NEAR_LIMIT = 10_000
NUM_PERM = 64
SHINGLE = 3
CLUSTERS_SHOWN = 50

SHINGLES_SQL = (
    "list_distinct(CASE WHEN len(w) < {k} THEN [hash(array_to_string(w, ' ')) & 4294967295] "
    "ELSE list_transform(range(1, len(w) - {k} + 2), lambda i: hash({args}) & 4294967295) END)"
).format(k=SHINGLE, args=", ".join(f"w[i + {j}]" for j in range(SHINGLE)))
"""SQL: the 32-bit hashes of the word 3-grams of the word list ``w`` (its words, joined, when it has
fewer than three), what MinHash is fed."""
WORDS_SQL = "regexp_extract_all(lower({text}), '[\\p{{L}}\\p{{N}}]+')"


def shingle_hashes(texts: list[str]) -> list[list[int]]:
    """The shingle hashes of each of ``texts``, computed by ``SHINGLES_SQL`` (empty for a text without words).

    >>> a, b, c = shingle_hashes(["The cat, the CAT sat.", "the cat the cat sat", ""])
    >>> len(a), sorted(a) == sorted(b), c
    (3, True, [])
    """
    import pyarrow as pa

    con = duckdb.connect()
    try:
        con.register("t", pa.table({"i": range(len(texts)), "text": texts}))
        got = con.execute(f"SELECT CASE WHEN len(w) = 0 THEN [] ELSE {SHINGLES_SQL} END FROM "
                          f"(SELECT i, {WORDS_SQL.format(text='text')} AS w FROM t) ORDER BY i").fetchall()
    finally:
        con.close()
    return [r[0] for r in got]


def near_clusters(sets: list[list[int]], threshold: float = NEAR_THRESHOLD, num_perm: int = NUM_PERM) -> list[list[int]]:
    """Groups (indexes into ``sets``, two or more each) of near-duplicate shingle sets, largest first.

    >>> near_clusters(shingle_hashes(["how do I boil an egg for a salad today", "How do I boil an egg for a salad, today?",
    ...                               "a different question about the stock market"]))
    [[0, 1]]
    """
    from datasketch import LeanMinHash, MinHash, MinHashLSH

    keep = [i for i, s in enumerate(sets) if s]
    hashes = MinHash.bulk([sets[i] for i in keep], num_perm=num_perm, hashfunc=int)
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    lean = {}
    with lsh.insertion_session() as session:
        for i, h in zip(keep, hashes):
            lean[i] = LeanMinHash(h)
            session.insert(i, lean[i], check_duplication=False)
    parent = {i: i for i in keep}

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in keep:
        for j in lsh.query(lean[i]):
            if j != i and lean[i].jaccard(lean[j]) >= threshold:
                a, b = root(i), root(j)
                if a != b:
                    parent[max(a, b)] = min(a, b)
    groups: dict[int, list[int]] = {}
    for i in keep:
        groups.setdefault(root(i), []).append(i)
    return sorted((sorted(g) for g in groups.values() if len(g) > 1), key=lambda g: (-len(g), g[0]))


def _near(db: Database, name: str, con: duckdb.DuckDBPyConnection) -> dict:
    con.execute("CREATE OR REPLACE TEMP TABLE firsts AS SELECT prompt_hash, min(row) AS first FROM m GROUP BY 1")
    distinct = con.execute("SELECT count(*) FROM firsts").fetchone()[0]
    firsts = con.execute("SELECT prompt_hash, first FROM firsts ORDER BY first LIMIT ?", [NEAR_LIMIT]).fetchall()
    rows = [r[1] for r in firsts]
    text = "array_to_string(list_transform(prompt, lambda x: coalesce(x.content, '')), ' ')"
    got = {r: (t, h) for r, t, h in db.rows(
        f"SELECT row, t, CASE WHEN len(w) = 0 THEN [] ELSE {SHINGLES_SQL} END FROM ("
        f"  SELECT row, {text} AS t, {WORDS_SQL.format(text=text)} AS w FROM records "
        "  WHERE dataset = ? AND row IN (SELECT unnest(?)))", [name, rows])} if rows else {}
    texts = [got.get(r, ("", []))[0] for r in rows]
    groups = near_clusters([got.get(r, ("", []))[1] for r in rows])
    hashes = [[firsts[i][0] for i in g] for g in groups]
    counts = []
    if hashes:
        con.execute("CREATE OR REPLACE TEMP TABLE near AS SELECT c.cluster, unnest(c.hashes) AS h "
                    "FROM (SELECT unnest(range(len(?))) AS cluster, unnest(?) AS hashes) c", [hashes, hashes])
        counts = dict(con.execute("SELECT near.cluster, count(*) FROM m JOIN near ON m.prompt_hash = near.h "
                                  "GROUP BY 1").fetchall())
    clusters = [{"key": f"near:{k}", "prompts": len(g), "rows": counts.get(k, 0),
                 "example": clip(texts[g[0]], 160), "first_rows": [rows[i] for i in g[:5]]}
                for k, g in enumerate(groups)]
    return {
        "threshold": NEAR_THRESHOLD, "checked_prompts": len(firsts), "distinct_prompts": distinct,
        "capped": distinct > len(firsts), "clusters_found": len(groups),
        "prompts_in_clusters": sum(len(g) for g in groups), "rows_in_clusters": sum(counts.values()) if counts else 0,
        "clusters": clusters[:CLUSTERS_SHOWN], "_hashes": hashes,
    }


def duplicate_stats(db: Database, name: str, con: duckdb.DuckDBPyConnection) -> dict:
    """Exact and near duplicates of dataset ``name``; ``con`` holds its measures as table ``m``."""
    prompt_groups, prompt_rows, pair_groups, pair_rows = con.execute("""
        SELECT (SELECT count(*) FROM (SELECT prompt_hash FROM m GROUP BY 1 HAVING count(*) > 1)),
               (SELECT coalesce(sum(n), 0) FROM (SELECT count(*) AS n FROM m GROUP BY prompt_hash HAVING n > 1)),
               (SELECT count(*) FROM (SELECT pair_hash FROM m GROUP BY 1 HAVING count(*) > 1)),
               (SELECT coalesce(sum(n), 0) FROM (SELECT count(*) AS n FROM m GROUP BY pair_hash HAVING n > 1))
    """).fetchone()
    return {
        "duplicate_prompts": {"groups": prompt_groups, "rows": int(prompt_rows), "key": "dup_prompt"},
        "duplicate_pairs": {"groups": pair_groups, "rows": int(pair_rows), "key": "dup_pair"},
        "near": _near(db, name, con),
    }


def rows_for(con: duckdb.DuckDBPyConnection, key: str, near: dict | None) -> tuple[str, list[int]]:
    """(title, rows) of a duplicates key: ``dup_prompt``, ``dup_pair`` or ``near:CLUSTER``."""
    kind, _, arg = key.partition(":")
    if kind in ("dup_prompt", "dup_pair"):
        col = "prompt_hash" if kind == "dup_prompt" else "pair_hash"
        rows = [r[0] for r in con.execute(
            f"SELECT row FROM m WHERE {col} IN (SELECT {col} FROM m GROUP BY 1 HAVING count(*) > 1) "
            f"ORDER BY {col}, row").fetchall()]
        what = "prompts" if kind == "dup_prompt" else "pairs (prompt, chosen and rejected)"
        return f"rows whose {what} occur more than once (grouped)", rows
    hashes: list[Any] = (near or {}).get("_hashes") or []
    try:
        cluster = int(arg)
        members = hashes[cluster]
    except (ValueError, IndexError):
        raise KeyError(key) from None
    rows = [r[0] for r in con.execute("SELECT row FROM m WHERE list_contains(?, prompt_hash) ORDER BY row",
                                      [members]).fetchall()]
    return f"near-duplicate prompts, cluster {cluster + 1} ({len(members)} distinct prompts)", rows
