"""Duplicates in a dataset of pairs: exact duplicate prompts and pairs (hashes, in DuckDB) and
near-duplicate prompts (MinHash LSH) with their clusters, over every distinct prompt.

Two prompts are near duplicates when their word 3-gram sets have an estimated Jaccard similarity of
``NEAR_THRESHOLD`` or more; clusters are the connected groups of such prompts. Who does what:

- DuckDB: the distinct prompts (the first row of each) and the 32-bit hashes of their 3-grams
  (``SHINGLES_SQL``), read as one flat Arrow array;
- datasketch: the MinHash family (``MinHash(num_perm=NUM_PERM)``'s permutations, scheme
  ``affine32``) and the LSH banding (``MinHashLSH``'s bands and rows for the threshold); the
  signatures computed here over numpy arrays are the very ``hashvalues`` ``datasketch.MinHash``
  gives the same shingles (tests/test_near_duplicates.py checks both against datasketch). The
  signatures and the band buckets are computed over numpy arrays, every prompt at once, because
  datasketch's objects cost about 0.1 ms a prompt in Python (100 s for a million);
- numpy: band keys, sorted into buckets; the candidate pairs of a bucket verified by their
  estimated Jaccard (the share of equal signature values, as ``MinHash.jaccard``);
- scipy: the connected components of the verified pairs (``groups.groups_of``).

A bucket of up to ``WINDOW + 1`` prompts has all its pairs compared, as ``MinHashLSH.query`` would;
in a larger one (a template many prompts share) each prompt is compared with the ``WINDOW`` after it
in row order, which keeps the cost linear (such clusters may come out split where a full
comparison would join them).
"""

from __future__ import annotations

from typing import Any

import duckdb
import numpy as np

from ..groups import groups_of
from ..store import Database
from ..text import clip

NEAR_THRESHOLD = 0.7
NUM_PERM = 64
SHINGLE = 3
CLUSTERS_SHOWN = 50
WINDOW = 8
"""In a bucket of more than WINDOW + 1 prompts, each is compared with the WINDOW after it, not with all."""
PAIRS_AT_ONCE = 1 << 20

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


def _family(num_perm: int) -> tuple[np.ndarray, np.ndarray]:
    """datasketch's permutations (a, b) for ``num_perm`` (seed 1, scheme affine32)."""
    from datasketch import MinHash

    a, b = MinHash(num_perm=num_perm, seed=1, scheme="affine32").permutations
    return np.asarray(a, np.uint32), np.asarray(b, np.uint32)


def signatures(values: np.ndarray, offsets: np.ndarray, num_perm: int = NUM_PERM) -> np.ndarray:
    """The (sets, num_perm) uint32 MinHash signatures of the sets ``values[offsets[i]:offsets[i + 1]]``
    (32-bit shingle hashes; no set empty): row i is ``datasketch.MinHash(num_perm,
    hashfunc=int)``'s ``hashvalues`` after ``update_batch`` of set i.

    >>> from datasketch import MinHash
    >>> m = MinHash(num_perm=8, hashfunc=int); m.update_batch([7, 11, 13])
    >>> bool((signatures(np.array([7, 11, 13, 5]), np.array([0, 3, 4]), 8)[0] == m.hashvalues).all())
    True
    """
    from datasketch.minhash import _fmix

    values = np.asarray(values).astype(np.uint32, copy=False)
    offsets = np.asarray(offsets, np.int64)
    starts = offsets[:-1]
    if len(starts) == 0:
        return np.zeros((0, num_perm), np.uint32)
    if (np.diff(offsets) <= 0).any():
        raise ValueError("every set needs at least one shingle")
    a, b = _family(num_perm)
    mixed = _fmix(values, 32)
    out = np.empty((len(starts), num_perm), np.uint32)
    with np.errstate(over="ignore"):
        for p in range(num_perm):  # one pass over the shingles per permutation; wraps modulo 2^32 as datasketch's
            out[:, p] = np.minimum.reduceat(mixed * a[p] + b[p], starts)
    return out


def bands(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows per band) datasketch's ``MinHashLSH`` chooses for ``threshold`` and ``num_perm``."""
    from datasketch import MinHashLSH

    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    return lsh.b, lsh.r


def candidate_pairs(sig: np.ndarray, threshold: float = NEAR_THRESHOLD, window: int = WINDOW
                    ) -> tuple[np.ndarray, np.ndarray]:
    """(i, j) arrays, i < j, of the signatures that share a band bucket (LSH): every pair of a
    bucket of up to ``window + 1``; in a larger bucket, each with the ``window`` after it."""
    n, num_perm = sig.shape
    nb, r = bands(threshold, num_perm)
    mult = np.random.default_rng(0).integers(1, 2**63, size=r, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    firsts, seconds = [], []
    for band in range(nb):
        block = sig[:, band * r:(band + 1) * r].astype(np.uint64)
        with np.errstate(over="ignore"):
            key = (block * mult).sum(axis=1, dtype=np.uint64)
            key ^= key >> np.uint64(29)
        order = np.argsort(key, kind="stable")
        keys = key[order]
        same = keys[1:] == keys[:-1]
        shared = np.zeros(n, bool)
        shared[1:] |= same
        shared[:-1] |= same
        members, mkeys = order[shared], keys[shared]
        at = np.arange(len(members) - 1)
        for d in range(1, window + 1):
            at = at[at + d < len(members)]
            at = at[mkeys[at + d] == mkeys[at]]
            if not len(at):
                break
            i, j = members[at], members[at + d]
            firsts.append(np.minimum(i, j))
            seconds.append(np.maximum(i, j))
    if not firsts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    pairs = np.unique(np.concatenate(firsts).astype(np.int64) * n + np.concatenate(seconds))  # one number a pair
    return pairs // n, pairs % n


def similar_pairs(sig: np.ndarray, threshold: float = NEAR_THRESHOLD, window: int = WINDOW
                  ) -> tuple[np.ndarray, np.ndarray]:
    """The candidate pairs whose estimated Jaccard (share of equal signature values) is ``threshold`` or more."""
    i, j = candidate_pairs(sig, threshold, window)
    keep = np.zeros(len(i), bool)
    need = threshold * sig.shape[1]
    for s in range(0, len(i), PAIRS_AT_ONCE):
        a, b = i[s:s + PAIRS_AT_ONCE], j[s:s + PAIRS_AT_ONCE]
        keep[s:s + PAIRS_AT_ONCE] = np.count_nonzero(sig[a] == sig[b], axis=1) >= need - 1e-9
    return i[keep], j[keep]


def flat_clusters(values: np.ndarray, offsets: np.ndarray, threshold: float = NEAR_THRESHOLD,
                  num_perm: int = NUM_PERM, window: int = WINDOW) -> list[list[int]]:
    """Groups (indexes of the sets ``values[offsets[i]:offsets[i + 1]]``) of near-duplicate sets,
    largest first; empty sets are in none."""
    offsets = np.asarray(offsets, np.int64)
    sizes = np.diff(offsets)
    keep = np.flatnonzero(sizes > 0)
    if len(keep) < 2:
        return []
    values = np.asarray(values)
    if len(keep) < len(sizes):
        values = values[np.repeat(offsets[keep], sizes[keep]) + _ranges(sizes[keep])]
        offsets = np.concatenate([[0], np.cumsum(sizes[keep])])
    sig = signatures(values, offsets, num_perm)
    i, j = similar_pairs(sig, threshold, window)
    return [[int(keep[x]) for x in g] for g in groups_of(len(keep), i, j)]


def _ranges(sizes: np.ndarray) -> np.ndarray:
    """0..size-1 for each of ``sizes``, concatenated."""
    ends = np.cumsum(sizes)
    return np.arange(ends[-1]) - np.repeat(ends - sizes, sizes)


def near_clusters(sets: list[list[int]], threshold: float = NEAR_THRESHOLD, num_perm: int = NUM_PERM) -> list[list[int]]:
    """Groups (indexes into ``sets``, two or more each) of near-duplicate shingle sets, largest first.

    >>> near_clusters(shingle_hashes(["how do I boil an egg for a salad today", "How do I boil an egg for a salad, today?",
    ...                               "a different question about the stock market"]))
    [[0, 1]]
    """
    offsets = np.concatenate([[0], np.cumsum([len(s) for s in sets])]).astype(np.int64)
    values = np.fromiter((v for s in sets for v in s), np.uint64, count=int(offsets[-1]))
    return flat_clusters(values, offsets, threshold, num_perm)


PROMPT_TEXT = "array_to_string(list_transform(prompt, lambda x: coalesce(x.content, '')), ' ')"
DISTINCT_PROMPTS_SQL = f"""
SELECT first, h, CASE WHEN len(w) = 0 THEN [] ELSE {SHINGLES_SQL} END AS s FROM (
    SELECT first, h, {WORDS_SQL.format(text='t')} AS w FROM (
        SELECT min(row) AS first, hash(prompt) AS h, arg_min({PROMPT_TEXT}, row) AS t
        FROM records WHERE dataset = ? AND chosen IS NOT NULL AND rejected IS NOT NULL GROUP BY 2))
ORDER BY first"""
"""Each distinct prompt of a dataset's pairs (the measures' ``prompt_hash``): its first row, hash and shingles."""


def _near(db: Database, name: str, con: duckdb.DuckDBPyConnection) -> dict:
    import pyarrow as pa

    table = db.arrow(DISTINCT_PROMPTS_SQL, [name])
    rows = table.column("first").to_numpy()
    prompt_hash = table.column("h").to_numpy()
    shingles = table.column("s").combine_chunks() if table.num_rows else pa.array([], pa.list_(pa.uint64()))
    if isinstance(shingles, pa.ChunkedArray):  # pragma: no cover - no chunks at all
        shingles = pa.array([], pa.list_(pa.uint64()))
    offsets = shingles.offsets.to_numpy().astype(np.int64)
    values = shingles.values.to_numpy(zero_copy_only=False)
    values = values[offsets[0]:offsets[-1]] if len(offsets) else values
    offsets = offsets - (offsets[0] if len(offsets) else 0)
    del table, shingles
    groups = flat_clusters(values, offsets)
    hashes = [prompt_hash[g].tolist() for g in groups]
    counts: dict[int, int] = {}
    if hashes:
        near = pa.table({"cluster": np.repeat(np.arange(len(groups)), [len(g) for g in groups]),
                         "h": pa.array(np.concatenate([prompt_hash[g] for g in groups]), pa.uint64())})
        con.register("near_prompts", near)
        try:
            counts = dict(con.execute("SELECT n.cluster, count(*) FROM m JOIN near_prompts n ON m.prompt_hash = n.h "
                                      "GROUP BY 1").fetchall())
        finally:
            con.unregister("near_prompts")
    shown = groups[:CLUSTERS_SHOWN]
    texts = dict(db.rows(f"SELECT row, {PROMPT_TEXT} FROM records WHERE dataset = ? AND row IN (SELECT unnest(?))",
                         [name, [int(rows[g[0]]) for g in shown]])) if shown else {}
    clusters = [{"key": f"near:{k}", "prompts": len(g), "rows": counts.get(k, 0),
                 "example": clip(texts.get(int(rows[g[0]])) or "", 160), "first_rows": [int(rows[i]) for i in g[:5]]}
                for k, g in enumerate(shown)]
    return {
        "threshold": NEAR_THRESHOLD, "checked_prompts": len(rows), "distinct_prompts": len(rows),
        "capped": False, "clusters_found": len(groups),
        "prompts_in_clusters": sum(len(g) for g in groups), "rows_in_clusters": sum(counts.values()),
        "clusters": clusters, "_hashes": hashes,
    }

def pending(distinct: int | None = None) -> dict:
    """What the near duplicates say before they are computed (``dataset_stats(..., near=False)``)."""
    return {"threshold": NEAR_THRESHOLD, "pending": True, "checked_prompts": 0, "distinct_prompts": distinct,
            "capped": False, "clusters_found": 0, "prompts_in_clusters": 0, "rows_in_clusters": 0, "clusters": []}


def near_duplicates(db: Database, name: str, con: duckdb.DuckDBPyConnection) -> dict:
    """The near-duplicate prompt clusters of dataset ``name``; ``con`` holds its measures as table ``m``."""
    return _near(db, name, con)


def duplicate_stats(db: Database, name: str, con: duckdb.DuckDBPyConnection) -> dict:
    """Exact duplicates of dataset ``name`` (near ones: ``near_duplicates``, seconds at a million
    prompts); ``con`` holds its measures as table ``m``."""
    prompt_groups, prompt_rows, pair_groups, pair_rows = con.execute("""
        SELECT (SELECT count(*) FROM (SELECT prompt_hash FROM m GROUP BY 1 HAVING count(*) > 1)),
               (SELECT coalesce(sum(n), 0) FROM (SELECT count(*) AS n FROM m GROUP BY prompt_hash HAVING n > 1)),
               (SELECT count(*) FROM (SELECT pair_hash FROM m GROUP BY 1 HAVING count(*) > 1)),
               (SELECT coalesce(sum(n), 0) FROM (SELECT count(*) AS n FROM m GROUP BY pair_hash HAVING n > 1))
    """).fetchall()[0]
    return {
        "duplicate_prompts": {"groups": prompt_groups, "rows": int(prompt_rows), "key": "dup_prompt"},
        "duplicate_pairs": {"groups": pair_groups, "rows": int(pair_rows), "key": "dup_pair"},
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
