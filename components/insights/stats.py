"""Statistics of one dataset of pairs, computed in DuckDB and cached per dataset version.

``dataset_stats(db, name)`` reads one narrow table of per-pair measures from the database (lengths
of the final chosen and rejected responses, scores, turns, the empty-side flag, hashes of the
prompt and of the pair), keeps it in memory for the dataset's version, and aggregates it in an
in-memory DuckDB: rows, rejected rows by reason, flagged rows, turns, length histograms, the length
bias, ratings, duplicates and metadata facets. Word and token lengths are measured on request (a
word count costs about as much as everything else together at 1M pairs). Labels change without a
new version, so their part (``labelstats``) is computed on each call, as is a reward model's accuracy
(``accuracy``: scores too are added to a version).

Every bar carries a ``key``; ``rows_for(db, name, key)`` returns exactly the rows of that bar, by
the same SQL predicate that counted them (``bins``).
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable

import duckdb

from .. import formats
from ..store import Database
from . import accuracy, duplicates, labelstats
from .bins import DIFF_BUCKETS, GAP_BUCKETS, Bins, bucket_sql, choose_bins
from .. import catalogue

UNITS = {"chars": "characters", "words": "words", "tokens": "tokens"}
FACET_COLUMNS = 8
"""Categorical metadata columns shown, at most (the first ones of the dataset's columns)."""
FACET_VALUES = 12
"""Top values shown per metadata column."""
CACHE_SIZE = 4
"""Datasets whose per-pair measures are kept in memory."""


class StatsError(ValueError):
    """A statistics request that cannot be answered, in one line."""


@dataclass
class Measures:
    """The per-pair measures of one dataset version, and the bins and aggregates computed from them."""

    table: Any  # pyarrow.Table
    bins: dict[str, Bins] = field(default_factory=dict)
    stats: dict[str, dict] = field(default_factory=dict)  # unit -> statistics without labels
    near: dict | None = None  # the near-duplicate clusters, once computed (the same in every unit)
    lock: threading.Lock = field(default_factory=threading.Lock)


_cache: "OrderedDict[tuple, Measures]" = OrderedDict()
_cache_lock = threading.Lock()


def _final(side: str) -> str:
    return f"coalesce({side}[-1].content, '')"


MEASURES_SQL = f"""
SELECT row,
       length({_final('chosen')}) AS chosen_chars,
       length({_final('rejected')}) AS rejected_chars,
       len(prompt) + len(chosen) AS turns,
       score_chosen, score_rejected,
       score_chosen - score_rejected AS margin,
       {formats.EMPTY_SIDE_SQL} AS flagged,
       {_final('chosen')} = {_final('rejected')} AS identical,
       hash(prompt) AS prompt_hash,
       hash(prompt, chosen, rejected) AS pair_hash
FROM records
WHERE dataset = ? AND chosen IS NOT NULL AND rejected IS NOT NULL
ORDER BY row
"""


def check_pairs(db: Database, name: Any):
    """The catalogue entry of dataset ``name``, which must hold pairs."""
    return catalogue.dataset_of(db, name, StatsError, ("pairs",), "statistics are for pairs")


def measures(db: Database, name: str) -> tuple[Any, Measures]:
    """(catalogue entry, per-pair measures) of ``name``, read once per dataset version."""
    info = check_pairs(db, name)
    key = (str(db.path), info.name, info.version)
    with _cache_lock:
        m = _cache.get(key)
        if m is not None:
            _cache.move_to_end(key)
            return info, m
    table = db.arrow(MEASURES_SQL, [info.name])
    m = Measures(table=table)
    with _cache_lock:
        for k in [k for k in _cache if k[:2] == key[:2]]:
            del _cache[k]
        _cache[key] = m
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return info, m


def _con(m: Measures) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    con.register("m", m.table)
    return con


def _add_lengths(db: Database, name: str, m: Measures, unit: str, tokenizer: Any = None) -> None:
    """Add ``chosen_<unit>`` and ``rejected_<unit>`` columns to the measures (words, or tokens)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if f"chosen_{unit}" in m.table.column_names:
        return
    texts = db.arrow(f"SELECT {_final('chosen')} AS c, {_final('rejected')} AS r FROM records "
                     "WHERE dataset = ? AND chosen IS NOT NULL AND rejected IS NOT NULL ORDER BY row", [name])
    table = m.table
    for side, col in (("chosen", "c"), ("rejected", "r")):
        if unit == "words":
            counts = pc.list_value_length(pc.utf8_split_whitespace(texts[col])).cast(pa.int64())
        else:
            ids = tokenizer(texts[col].to_pylist(), add_special_tokens=False)["input_ids"]
            counts = pa.array([len(x) for x in ids], pa.int64())
        table = table.append_column(f"{side}_{unit}", counts)
    m.table = table


def load_tokenizer(path: str):
    """A tokenizer from a local folder or file (``tokenizer.json``), for token lengths."""
    from pathlib import Path

    from transformers import PreTrainedTokenizerFast

    p = Path(path)
    try:
        if p.is_file():
            return PreTrainedTokenizerFast(tokenizer_file=str(p))
        return PreTrainedTokenizerFast.from_pretrained(str(p))
    except (OSError, ValueError) as err:
        raise StatsError(f"cannot load a tokenizer from {path}: {str(err).splitlines()[0]}") from None


# -- aggregates -----------------------------------------------------------------------------------


def _histogram(con, m: Measures, chart: str, title: str, x: str, series: dict[str, str], integer: bool) -> dict:
    """Overlaid histograms of the columns ``series`` ({name: column}) on shared bins."""
    cols = list(series.values())
    union = " UNION ALL ".join(f"SELECT {c}::DOUBLE AS v FROM m" for c in cols)
    low, high = con.execute(f"SELECT min(v), quantile_cont(v, 0.99) FROM ({union})").fetchone()
    bins = choose_bins(low, high, integer)
    out = {"chart": chart, "title": title, "x": x, "labels": [], "keys": [], "series": {}}
    if bins is None:
        return out
    m.bins[chart] = bins
    out["bins"] = bins.as_dict()
    out["labels"] = [bins.label(i, integer) for i in range(bins.count)]
    out["keys"] = [f"{chart}:{i}" for i in range(bins.count)]
    for name, col in series.items():
        counts = dict(con.execute(f"SELECT {bins.sql(col)} AS b, count(*) FROM m WHERE {col} IS NOT NULL "
                                  "GROUP BY b").fetchall())
        out["series"][name] = [counts.get(i, 0) for i in range(bins.count)]
        out["keys_" + name] = [f"{chart}.{name}:{i}" for i in range(bins.count)]
    return out


def _length_bias(con) -> dict:
    n, longer, shorter, same = con.execute(
        "SELECT count(*), count(*) FILTER (chosen_chars > rejected_chars), "
        "count(*) FILTER (chosen_chars < rejected_chars), count(*) FILTER (chosen_chars = rejected_chars) FROM m"
    ).fetchone()
    diff = dict(con.execute(
        f"SELECT {bucket_sql('chosen_chars - rejected_chars', DIFF_BUCKETS)} AS b, count(*) FROM m GROUP BY b"
    ).fetchall())
    gap = {b: (k, c) for b, k, c in con.execute(
        f"SELECT {bucket_sql('abs(chosen_chars - rejected_chars)', GAP_BUCKETS)} AS b, count(*), "
        "count(*) FILTER (chosen_chars > rejected_chars) FROM m GROUP BY b").fetchall() if b is not None}
    return {
        "chosen_longer_share": (longer / n) if n else None,
        "chosen_longer": longer, "chosen_shorter": shorter, "same_length": same, "pairs": n,
        "by_difference": {
            "labels": [b[0] for b in DIFF_BUCKETS], "keys": [f"diff:{i}" for i in range(len(DIFF_BUCKETS))],
            "counts": [diff.get(i, 0) for i in range(len(DIFF_BUCKETS))],
        },
        "by_gap": {
            "labels": [b[0] for b in GAP_BUCKETS], "keys": [f"gap:{i}" for i in range(len(GAP_BUCKETS))],
            "pairs": [gap.get(i, (0, 0))[0] for i in range(len(GAP_BUCKETS))],
            "chosen_longer_rate": [(gap[i][1] / gap[i][0]) if gap.get(i, (0,))[0] else None
                                   for i in range(len(GAP_BUCKETS))],
        },
    }


def _ratings(con, m: Measures) -> dict:
    scored, nonpositive = con.execute(
        "SELECT count(*) FILTER (margin IS NOT NULL), count(*) FILTER (margin <= 0) FROM m").fetchone()
    out = {"scored": scored, "margin_nonpositive": nonpositive, "margin_nonpositive_key": "margin_nonpositive"}
    if scored:
        out["scores"] = _histogram(con, m, "score", "Scores of the chosen and rejected responses", "score",
                                   {"chosen": "score_chosen", "rejected": "score_rejected"}, integer=False)
        out["margin"] = _histogram(con, m, "margin", "Margin (score chosen − score rejected)", "margin",
                                   {"pairs": "margin"}, integer=False)
    return out


def _facets(db: Database, info) -> list[dict]:
    columns = [c for c, t in (info.columns or {}).items() if str(t) in ("string", "large_string", "string_view")]
    out = []
    for col in columns[:FACET_COLUMNS]:
        path = "$." + json.dumps(col)
        rows = db.rows(
            "SELECT v, n, count(*) OVER () AS distinct_values FROM ("
            "  SELECT json_extract_string(metadata, ?) AS v, count(*) AS n FROM records WHERE dataset = ? "
            "  AND chosen IS NOT NULL AND rejected IS NOT NULL GROUP BY v) "
            "ORDER BY n DESC, v NULLS LAST LIMIT ?", [path, info.name, FACET_VALUES])
        if not rows or rows[0][1] < 2:
            continue  # every value is unique (an id): nothing to facet
        out.append({"column": col, "distinct": rows[0][2], "values": [r[0] for r in rows],
                    "counts": [r[1] for r in rows], "keys": ["facet:" + json.dumps([col, r[0]]) for r in rows]})
    return out


def _timed(timings: dict, name: str, fn: Callable[[], Any]) -> Any:
    t = time.perf_counter()
    out = fn()
    timings[name] = round(time.perf_counter() - t, 3)
    return out


def dataset_stats(db: Database, name: str, unit: str = "chars", tokenizer: Any = None,
                  labels: bool = True, model: str | None = None, near: bool = True) -> dict:
    """Every statistic of dataset ``name`` as plain data (the CLI prints it as JSON, charts draws it).

    ``unit`` (chars, words or tokens; tokens need ``tokenizer``) is the unit of the length histograms;
    the length bias is always in characters. ``model`` (default: the first that scored the dataset)
    is the reward model whose accuracy by length difference is given (``accuracy``). The near
    duplicates (MinHash over every distinct prompt: about 30 s at a million) are computed once per
    version; ``near=False`` gives them only when they already are, else ``duplicates.pending``, so
    that a page draws everything else first.
    """
    if unit not in UNITS:
        raise StatsError(f"unknown unit {unit!r}: use one of {', '.join(UNITS)}")
    if unit == "tokens" and tokenizer is None:
        raise StatsError("token lengths need a tokenizer (--tokenizer PATH)")
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    info, m = _timed(timings, "measures", lambda: measures(db, name))
    with m.lock:
        cached = m.stats.get(unit)
        if cached is None:
            if unit != "chars":
                _timed(timings, unit, lambda: _add_lengths(db, info.name, m, unit, tokenizer))
            cached = _compute(db, info, m, unit, timings)
            if unit != "tokens":  # a token count depends on the tokenizer: not cached
                m.stats[unit] = cached
    out = json.loads(json.dumps(cached))  # a copy the caller may change
    found = _near_of(db, info, m, timings) if near else m.near
    out["duplicates"]["near"] = ({k: v for k, v in found.items() if k != "_hashes"} if found is not None
                                 else duplicates.pending())
    out["duplicates"]["by_embedding"] = _embedding_near(db, info.name, near, timings)
    if labels:
        out["labels"] = _timed(timings, "labels", lambda: labelstats.label_stats(db, info.name, m.table))
    out["reward_model"] = _timed(timings, "reward_model",
                                 lambda: accuracy.model_accuracy(db, info.name, m.table, model))
    out["timings_s"] = timings | {"total": round(time.perf_counter() - t0, 3)}
    return out


def _compute(db: Database, info, m: Measures, unit: str, timings: dict) -> dict:
    con = _con(m)
    try:
        rows, flagged, identical = con.execute(
            "SELECT count(*), count(*) FILTER (flagged), count(*) FILTER (identical) FROM m").fetchone()
        word = UNITS[unit]
        out = {
            "dataset": info.name, "version": info.version, "rows": rows, "unit": unit,
            "rejected_rows": info.rejected_count, "rejected_by_reason": info.rejected_reasons,
            "flagged_empty_side": flagged, "flagged_key": "flagged",
            "turns": _timed(timings, "turns", lambda: _histogram(
                con, m, "turns", "Messages per conversation (prompt + chosen)", "messages",
                {"pairs": "turns"}, integer=True)),
            "lengths": _timed(timings, "lengths", lambda: _histogram(
                con, m, f"len_{unit}", f"Length of the final responses ({word})", word,
                {"chosen": f"chosen_{unit}", "rejected": f"rejected_{unit}"}, integer=True)),
            "length_bias": _timed(timings, "length_bias", lambda: _length_bias(con)),
            "ratings": _timed(timings, "ratings", lambda: _ratings(con, m)),
            "duplicates": _timed(timings, "duplicates", lambda: duplicates.duplicate_stats(db, info.name, con)),
            "facets": _timed(timings, "facets", lambda: _facets(db, info)),
        }
        out["duplicates"]["identical_sides"] = identical
        out["duplicates"]["identical_key"] = "identical"
        return out
    finally:
        con.close()


# -- the rows of a bar ----------------------------------------------------------------------------


@dataclass
class BinRows:
    title: str  # what the rows are, in words
    rows: list[int]  # source rows, in order, at most ``limit``
    total: int  # how many rows the bar counts


def _bin_predicate(m: Measures, key: str) -> tuple[str, str]:
    """(SQL predicate over the measures, title) of the bar ``key``."""
    kind, _, arg = key.partition(":")
    if kind == "flagged":
        return "flagged", "pairs with an empty side"
    if kind == "identical":
        return "identical", "pairs whose chosen response is identical to the rejected one"
    if kind == "margin_nonpositive":
        return "margin <= 0", "pairs whose margin (score chosen − score rejected) is 0 or less"
    if kind in ("diff", "gap"):
        buckets = DIFF_BUCKETS if kind == "diff" else GAP_BUCKETS
        expr = "chosen_chars - rejected_chars" if kind == "diff" else "abs(chosen_chars - rejected_chars)"
        i = _index(arg, len(buckets), key)
        what = buckets[i][0] if kind == "diff" else f"chosen and rejected differ by {buckets[i][0]} characters"
        return f"{bucket_sql(expr, buckets)} = {i}", f"{what} (characters)" if kind == "diff" else what
    chart, _, side = kind.partition(".")
    bins = m.bins.get(chart)
    if bins is None:
        raise StatsError(f"unknown bar {key!r}")
    i = _index(arg, bins.count, key)
    if chart == "turns":
        cols, what = ["turns"], "messages"
    elif chart == "margin":
        cols, what = ["margin"], "margin"
    elif chart == "score":
        cols, what = [f"score_{s}" for s in ((side,) if side else ("chosen", "rejected"))], "score"
    elif chart.startswith("len_"):
        unit = chart[4:]
        cols, what = [f"{s}_{unit}" for s in ((side,) if side else ("chosen", "rejected"))], UNITS[unit]
    else:
        raise StatsError(f"unknown bar {key!r}")
    integer = chart == "turns" or chart.startswith("len_")
    pred = " OR ".join(f"{bins.sql(c)} = {i}" for c in cols)
    who = f"{side} " if side else ""
    return f"({pred})", f"{who}{what} {bins.label(i, integer)}"


def _index(arg: str, n: int, key: str) -> int:
    try:
        i = int(arg)
    except ValueError:
        raise StatsError(f"unknown bar {key!r}") from None
    if not 0 <= i < n:
        raise StatsError(f"unknown bar {key!r}")
    return i


def _near_of(db: Database, info, m: Measures, timings: dict) -> dict:
    """The near-duplicate clusters of the measures' version, computed once (under the measures' lock)."""
    with m.lock:
        if m.near is None:
            con = _con(m)
            try:
                m.near = _timed(timings, "near_duplicates", lambda: duplicates.near_duplicates(db, info.name, con))
            finally:
                con.close()
        return m.near


def _embedding_near(db: Database, name: str, compute: bool, timings: dict) -> dict | None:
    """The near-duplicate clusters of the dataset's embeddings (``semantic.clusters``): None without
    embeddings, ``{"pending": True}`` while not computed and ``compute`` is False."""
    from ..semantic import NoEmbeddings, clusters

    try:
        found = _timed(timings, "embedding_clusters", lambda: clusters.embedding_clusters(db, name, compute=compute))
    except NoEmbeddings:
        return None
    return found if found is not None else {"pending": True, "threshold": clusters.THRESHOLD}


def _ensure(db: Database, info, m: Measures, unit: str) -> dict:
    """The cached statistics of ``unit`` (chars or words), computing them if needed."""
    with m.lock:
        if unit not in m.stats:
            if unit != "chars":
                _add_lengths(db, info.name, m, unit)
            m.stats[unit] = _compute(db, info, m, unit, {})
        return m.stats[unit]


def rows_for(db: Database, name: str, key: str, limit: int = 200) -> BinRows:
    """The rows behind the bar ``key`` of ``dataset_stats(db, name)`` (source order, at most ``limit``)."""
    info, m = measures(db, name)
    key = str(key or "")
    kind = key.partition(":")[0]
    chart = kind.partition(".")[0]
    try:
        if kind == "facet":
            return _facet_rows(db, info.name, key, limit)
        if kind in accuracy.KINDS:
            title, rows = accuracy.rows_for(db, info.name, m.table, key)
            return BinRows(title, rows[:limit], len(rows))
        if kind in ("annot", "tag"):
            title, rows = labelstats.rows_for(db, info.name, key)
            return BinRows(title, rows[:limit], len(rows))
        if kind == "embnear":
            from ..semantic import NoEmbeddings, clusters

            try:
                rows = clusters.cluster_rows(db, info.name, int(key.partition(":")[2]))
            except (ValueError, IndexError, NoEmbeddings):
                raise StatsError(f"unknown bar {key!r}") from None
            return BinRows(f"near-duplicate cluster {key.partition(':')[2]} by embedding", rows[:limit], len(rows))
        unit = chart[4:] if chart.startswith("len_") else "chars"
        if unit == "tokens" and chart not in m.bins:
            raise StatsError("compute the token statistics first (with a tokenizer)")
        stats = _ensure(db, info, m, "chars" if unit == "tokens" else unit)
        con = _con(m)
        try:
            if kind in ("dup_prompt", "dup_pair", "near"):
                title, rows = duplicates.rows_for(con, key, _near_of(db, info, m, {}) if kind == "near" else None)
                return BinRows(title, rows[:limit], len(rows))
            pred, title = _bin_predicate(m, key)
            total = con.execute(f"SELECT count(*) FROM m WHERE {pred}").fetchone()[0]
            rows = [r[0] for r in con.execute(f"SELECT row FROM m WHERE {pred} ORDER BY row LIMIT ?",
                                              [limit]).fetchall()]
            return BinRows(title, rows, total)
        finally:
            con.close()
    except KeyError:
        raise StatsError(f"unknown bar {key!r}") from None


def _facet_rows(db: Database, name: str, key: str, limit: int) -> BinRows:
    try:
        col, value = json.loads(key.partition(":")[2])
    except (ValueError, TypeError):
        raise StatsError(f"unknown bar {key!r}") from None
    path = "$." + json.dumps(col)
    cond = "json_extract_string(metadata, ?) IS NULL" if value is None else "json_extract_string(metadata, ?) = ?"
    params = [name, path] + ([] if value is None else [value])
    where = f"dataset = ? AND chosen IS NOT NULL AND rejected IS NOT NULL AND {cond}"
    total = db.scalar(f"SELECT count(*) FROM records WHERE {where}", params)
    rows = [r[0] for r in db.rows(f"SELECT row FROM records WHERE {where} ORDER BY row LIMIT ?", params + [limit])]
    return BinRows(f"{col} = {value}", rows, total)
