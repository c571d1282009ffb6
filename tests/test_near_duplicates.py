"""Near-duplicate prompts over every distinct prompt: the numpy MinHash signatures and LSH buckets
against datasketch's own MinHash and MinHashLSH, and clusters found past the first 10,000 prompts."""

from __future__ import annotations

import json
import random

import numpy as np

from components import insights
from components.ingest import ingest
from components.insights import duplicates


def _pair(prompt: str, i: int) -> dict:
    return {"prompt": [{"role": "user", "content": prompt}], "chosen": [{"role": "assistant", "content": f"Yes {i}."}],
            "rejected": [{"role": "assistant", "content": f"No {i}."}]}


def _sentences(n: int, seed: int = 0, words: int = 14) -> list[str]:
    rng = random.Random(seed)
    vocab = [f"w{k}x" for k in range(4000)]
    return [" ".join(rng.choice(vocab) for _ in range(words)) for _ in range(n)]


def _variants(texts: list[str], seed: int = 1) -> list[str]:
    """Each text with its last word replaced (11 of its 12 shingles kept: a Jaccard of 11/13) or in capitals."""
    rng = random.Random(seed)
    out = []
    for t in texts:
        w = t.split()
        if rng.random() < 0.5:
            w[-1] = "changed"
            out.append(" ".join(w))
        else:
            out.append(t.upper() + "?!")
    return out


def _datasketch_clusters(sets: list[list[int]], threshold: float, num_perm: int) -> list[list[int]]:
    """The clusters as datasketch's objects alone find them: MinHash.bulk, MinHashLSH, LeanMinHash.jaccard."""
    from datasketch import LeanMinHash, MinHash, MinHashLSH

    lean = [LeanMinHash(h) for h in MinHash.bulk(sets, num_perm=num_perm, hashfunc=int)]
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    for i, h in enumerate(lean):
        lsh.insert(i, h)
    parent = list(range(len(sets)))

    def root(i):
        while parent[i] != i:
            i = parent[i]
        return i

    for i, h in enumerate(lean):
        for j in lsh.query(h):
            if j != i and h.jaccard(lean[j]) >= threshold:
                a, b = root(i), root(j)
                parent[max(a, b)] = min(a, b)
    groups: dict[int, list[int]] = {}
    for i in range(len(sets)):
        groups.setdefault(root(i), []).append(i)
    return sorted((g for g in groups.values() if len(g) > 1), key=lambda g: (-len(g), g[0]))


def test_signatures_are_datasketch_hashvalues():
    from datasketch import MinHash

    rng = np.random.default_rng(3)
    sets = [rng.integers(0, 2**32, rng.integers(1, 30), dtype=np.uint64).tolist() for _ in range(200)]
    offsets = np.concatenate([[0], np.cumsum([len(s) for s in sets])])
    values = np.concatenate([np.array(s, np.uint64) for s in sets])
    for num_perm in (16, 64):
        sig = duplicates.signatures(values, offsets, num_perm)
        expected = np.stack([m.hashvalues for m in MinHash.bulk(sets, num_perm=num_perm, hashfunc=int)])
        assert sig.dtype == np.uint32 and np.array_equal(sig, expected)


def test_clusters_are_those_datasketch_lsh_finds():
    base = _sentences(300)
    texts = base + _variants(base[:120]) + _sentences(200, seed=9, words=4)  # short texts: few shingles
    random.Random(5).shuffle(texts)
    sets = duplicates.shingle_hashes(texts)
    got = duplicates.near_clusters(sets)
    assert got == _datasketch_clusters(sets, duplicates.NEAR_THRESHOLD, duplicates.NUM_PERM)
    assert 110 <= len(got) <= 120  # nearly every planted variant is found, at that threshold


def test_a_big_bucket_is_one_cluster_without_comparing_every_pair():
    text = "please translate this sentence into french for me right now thank you very much"
    texts = [text.upper() if k % 2 else text + "!" * k for k in range(3 * duplicates.WINDOW)] + _sentences(50)
    sets = duplicates.shingle_hashes(texts)
    i, j = duplicates.candidate_pairs(duplicates.signatures(
        np.concatenate([np.array(s, np.uint64) for s in sets]), np.concatenate([[0], np.cumsum([len(s) for s in sets])])))
    n = 3 * duplicates.WINDOW
    assert len(i) < n * (n - 1) // 2  # the window, not all pairs of the bucket
    assert duplicates.near_clusters(sets) == [list(range(n))]


def test_near_duplicates_are_found_beyond_the_first_10000_prompts(db, tmp_path):
    texts = _sentences(10_049, seed=2)
    texts.append(texts[-1].upper().replace(texts[-1].split()[0].upper(), "CHANGED", 1) + "?")  # row 10,049
    path = tmp_path / "big.jsonl"
    path.write_text("\n".join(json.dumps(_pair(t, i)) for i, t in enumerate(texts)), encoding="utf-8")
    ingest(db, str(path), name="big")

    first = insights.dataset_stats(db, "big", labels=False, near=False)  # a page's first draw
    assert first["duplicates"]["near"]["pending"] and "near_duplicates" not in first["timings_s"]
    assert "being looked for" in "\n".join(insights.describe_stats(first))
    near = insights.dataset_stats(db, "big", labels=False)["duplicates"]["near"]
    assert "pending" not in near
    assert insights.dataset_stats(db, "big", labels=False, near=False)["duplicates"]["near"] == near  # kept

    assert near["capped"] is False
    assert near["checked_prompts"] == near["distinct_prompts"] == 10_050
    assert near["clusters_found"] == 1 and near["prompts_in_clusters"] == 2 and near["rows_in_clusters"] == 2
    [cluster] = near["clusters"]
    assert cluster["first_rows"] == [10_048, 10_049] and cluster["rows"] == 2
    assert cluster["example"] == texts[10_048]
    assert insights.rows_for(db, "big", cluster["key"]).rows == [10_048, 10_049]
