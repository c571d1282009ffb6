"""Labels: the vocabulary, labeling queues, progress, agreement between annotators, and export.

Every label is an event appended to DuckDB's ``label_events`` (who, when, which pair, what, with which
options); the ``current_labels`` view gives the latest event of each (pair, annotator) that was not
undone. An undo is an event too: nothing is ever overwritten.

>>> [lab.name for lab in VOCABULARY]
['chosen', 'rejected', 'tie', 'both_bad', 'skip']
>>> apply_preference({"prompt": [], "chosen": ["A"], "rejected": ["B"]}, "rejected")["chosen"]
['B']
"""

from __future__ import annotations

import json
import math
import os
import re
import threading
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from .store import Database, DatasetInfo

# -- the vocabulary --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Label:
    name: str  # what is stored and what the API takes
    title: str  # what the button says
    key: str  # the keyboard key
    help: str


VOCABULARY = [
    Label("chosen", "Chosen is better", "1", "agree with the source's preference"),
    Label("rejected", "Rejected is better", "2", "flip: the export swaps chosen and rejected"),
    Label("tie", "Tie", "3", "equally good; left out of the export unless asked for"),
    Label("both_bad", "Both bad", "4", "neither is acceptable; left out of the export unless asked for"),
    Label("skip", "Skip", "S", "no judgment; the pair leaves your queue"),
]
LABELS = tuple(lab.name for lab in VOCABULARY)
BY_NAME = {lab.name: lab for lab in VOCABULARY}
JUDGMENTS = ("chosen", "rejected", "tie", "both_bad")
"""Labels that are judgments (a skip is not): what agreement and majorities are computed over."""
NO_PREFERENCE = ("tie", "both_bad", "skip", "no_majority")
"""Current labels that give no direction: left out of an export unless ``keep_ties``."""

DEFAULT_TAGS = ["factuality", "helpfulness", "harmlessness", "instruction following", "reasoning", "style",
                "verbosity", "refusal", "formatting", "code"]
QUEUES = {"unlabeled": "Unlabeled (shuffled)", "search": "Search hits", "disagreements": "Disagreements"}
MAX_NOTE = 2000
MAX_TAGS = 20
_ANNOTATOR = re.compile(r"[^\W_][\w .@+\-]{0,63}")


class LabelError(ValueError):
    """A label request that cannot be carried out, explained in one line."""


def check_annotator(name: Any) -> str:
    """The annotator name, trimmed; a clear error when it is missing or odd.

    >>> check_annotator("  Ada L. ")
    'Ada L.'
    """
    name = " ".join(str(name or "").split())
    if not name:
        raise LabelError("enter your annotator name first")
    if not _ANNOTATOR.fullmatch(name):
        raise LabelError(
            f"annotator name {name[:70]!r} must be 1-64 letters, digits, spaces or . _ - @ + (starting with a letter or digit)"
        )
    return name


def check_label(label: Any) -> str:
    label = str(label or "").strip().lower().replace("-", "_").replace(" ", "_")
    if label not in LABELS:
        raise LabelError(f"unknown label {label!r}: use one of {', '.join(LABELS)}")
    return label


def check_pairs(db: Database, dataset: Any) -> DatasetInfo:
    info = db.dataset(str(dataset or ""))
    if info is None:
        raise LabelError(f"no dataset named {str(dataset)[:100]!r}")
    if info.kind != "pairs":
        raise LabelError(f"dataset {info.name!r} holds {info.kind}, not preference pairs: there is nothing to compare")
    return info


def check_row(db: Database, dataset: str, row: Any) -> int:
    try:
        r = int(row)
        if r != float(row):
            raise ValueError
    except (TypeError, ValueError):
        raise LabelError(f"row must be a whole number, not {row!r}") from None
    if db.one("SELECT 1 FROM records WHERE dataset = ? AND row = ?", [dataset, r]) is None:
        raise LabelError(f"row {r} is not a pair of {dataset!r} (past the end, or rejected at ingest)")
    return r


def clean_tags(tags: Any) -> list[str]:
    if tags is None:
        return []
    if isinstance(tags, str):
        tags = tags.split(",")
    out: list[str] = []
    for t in tags:
        t = " ".join(str(t).split())[:40]
        if t and t not in out:
            out.append(t)
    if len(out) > MAX_TAGS:
        raise LabelError(f"at most {MAX_TAGS} tags per label")
    return out


def clean_confidence(confidence: Any) -> int | None:
    if confidence in (None, "", 0, "0", "–", "-"):
        return None
    try:
        c = int(confidence)
    except (TypeError, ValueError):
        raise LabelError(f"confidence must be 1, 2 or 3, not {confidence!r}") from None
    if c not in (1, 2, 3):
        raise LabelError(f"confidence must be 1, 2 or 3, not {confidence!r}")
    return c


# -- labeling ---------------------------------------------------------------------------------------


def add_label(db: Database, dataset: Any, row: Any, label: Any, annotator: Any, confidence: Any = None,
              note: Any = None, tags: Any = None, options: dict | None = None) -> dict:
    """Record ``annotator``'s ``label`` of pair ``row`` of ``dataset`` (every argument is checked)."""
    info = check_pairs(db, dataset)
    row = check_row(db, info.name, row)
    label = check_label(label)
    annotator = check_annotator(annotator)
    note = (str(note).strip() if note is not None else "") or None
    if note and len(note) > MAX_NOTE:
        raise LabelError(f"the note is {len(note):,} characters; keep it under {MAX_NOTE:,}")
    opts = {"dataset_version": info.version} | (options or {})
    return db.add_label_event(info.name, row, annotator, label, clean_confidence(confidence), note,
                              clean_tags(tags), opts)


def undo(db: Database, dataset: Any, annotator: Any, options: dict | None = None) -> dict | None:
    """Undo ``annotator``'s latest label in ``dataset`` still in effect (an undo event); None if none."""
    info = check_pairs(db, dataset)
    return db.undo_last_label(info.name, check_annotator(annotator), options)


# -- queues -----------------------------------------------------------------------------------------

_orders: dict[tuple[str, str, int], list[int]] = {}
_orders_lock = threading.Lock()


def shuffled_rows(db: Database, dataset: str) -> list[int]:
    """The dataset's pairs in its stable shuffled order (cached per dataset version)."""
    info = check_pairs(db, dataset)
    key = (str(db.path), info.name, info.version)
    with _orders_lock:
        rows = _orders.get(key)
    if rows is None:
        rows = db.pair_rows_shuffled(info.name)
        with _orders_lock:
            for k in [k for k in _orders if k[:2] == key[:2]]:
                del _orders[k]
            _orders[key] = rows
    return rows


def search_rows(db: Database, dataset: str, query: str, limit: int = 1000) -> list[int]:
    """The pairs a search for ``query`` finds: ranked by the dataset's BM25 index when it has a ready
    one (components.search), else every pair containing each word (quoted phrases kept whole), in
    source order."""
    info = check_pairs(db, dataset)
    terms = [a or b for a, b in re.findall(r'"([^"]+)"|(\S+)', query or "")]
    if not terms:
        raise LabelError("type what to search for")
    ranked = _indexed_search(db, info.name, query, limit)
    if ranked is not None:
        return ranked
    return db.pairs_matching(info.name, terms, limit)


def search_engine(db: Database, dataset: str) -> str:
    """What ``search_rows`` uses for ``dataset``: "BM25 index" or "text match"."""
    try:
        from . import search

        status = search.index_status(db, dataset)
        return "BM25 index" if status is not None and status.ready else "text match"
    except (ImportError, AttributeError):
        return "text match"


def _indexed_search(db: Database, dataset: str, query: str, limit: int) -> list[int] | None:
    if search_engine(db, dataset) != "BM25 index":
        return None
    from . import search

    try:
        results = search.search(db, [dataset], query, k=limit, snippets=False)
    except search.SearchError as err:
        raise LabelError(str(err)) from None
    seen: dict[int, None] = {}
    for hit in results.hits:
        seen.setdefault(hit.row, None)
    return list(seen)


def disagreement_rows(db: Database, dataset: str) -> list[int]:
    return [d["row"] for d in disagreements(db, dataset)]


def queue_rows(db: Database, dataset: str, mode: str = "unlabeled", query: str | None = None) -> list[int]:
    if mode == "unlabeled":
        return shuffled_rows(db, dataset)
    if mode == "search":
        return search_rows(db, dataset, query or "")
    if mode == "disagreements":
        return disagreement_rows(db, dataset)
    raise LabelError(f"unknown queue {mode!r}: use one of {', '.join(QUEUES)}")


def next_unlabeled(rows: Sequence[int], labeled: dict | set, start: int = 0) -> int | None:
    """Position of the first row at or after ``start`` not in ``labeled``, wrapping around; None when all are.

    >>> next_unlabeled([5, 3, 9, 1], {3, 5}, 0), next_unlabeled([5, 3, 9, 1], {1, 9}, 3)
    (2, 0)
    """
    n = len(rows)
    for i in range(n):
        pos = (start + i) % n
        if rows[pos] not in labeled:
            return pos
    return None


def next_row(db: Database, dataset: Any, annotator: Any) -> int | None:
    """The next pair ``annotator`` should label in ``dataset``'s shuffled queue (None when done)."""
    info = check_pairs(db, dataset)
    annotator = check_annotator(annotator)
    rows = shuffled_rows(db, info.name)
    pos = next_unlabeled(rows, db.labeled_rows(info.name, annotator))
    return None if pos is None else rows[pos]


def progress(db: Database, dataset: str, annotator: str | None, rows: Sequence[int] | None = None) -> dict:
    return db.label_progress(dataset, annotator or "", rows)


# -- agreement --------------------------------------------------------------------------------------


def judgments(db: Database, dataset: str, annotators: Iterable[str] | None = None) -> dict[int, dict[str, str]]:
    """{row: {annotator: label}} of the current judgments (skips left out) in ``dataset``."""
    keep = set(annotators) if annotators else None
    out: dict[int, dict[str, str]] = {}
    for row, annotator, label in db.current_labels_of(dataset):
        if label in JUDGMENTS and (keep is None or annotator in keep):
            out.setdefault(row, {})[annotator] = label
    return out


def majority(votes: Iterable[str]) -> str | None:
    """The label with strictly more votes than any other (None if there is a tie at the top).

    >>> majority(["chosen", "rejected", "chosen"]), majority(["chosen", "rejected"])
    ('chosen', None)
    """
    top = Counter(votes).most_common(2)
    if not top:
        return None
    if len(top) == 2 and top[0][1] == top[1][1]:
        return None
    return top[0][0]


MAX_PAIRWISE = 20
"""Pairwise kappas (the heatmap) are computed among the this many annotators with the most judgments."""


@dataclass
class Agreement:
    dataset: str
    annotators: list[str]
    items: int  # pairs judged by two or more of the annotators
    judged: int  # pairs judged by anyone
    kappa: float | None  # Cohen's kappa (exactly two annotators)
    alpha: float | None  # Krippendorff's alpha, nominal (two or more)
    raw: float | None  # observed pairwise agreement
    unanimous: float | None  # share of items where every annotator gave the same label
    pairwise: list[dict] = field(default_factory=list)  # {a, b, n, kappa, raw}, among the busiest MAX_PAIRWISE
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # annotator -> label -> n
    disagreements: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def _num(x: float) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def cohen_kappa(a: Sequence[str], b: Sequence[str]) -> float | None:
    """Cohen's kappa of two annotators' labels of the same items (scikit-learn); None when undefined."""
    from sklearn.metrics import cohen_kappa_score

    if len(a) == 0:
        return None
    if len(set(a) | set(b)) == 1:
        return None  # one category only: chance agreement is 1 and kappa is 0/0
    return _num(cohen_kappa_score(list(a), list(b), labels=list(JUDGMENTS)))


def krippendorff_alpha(table: dict[int, dict[str, str]], annotators: Sequence[str]) -> float | None:
    """Krippendorff's alpha (nominal) of {row: {annotator: label}} with missing values (``krippendorff``)."""
    import krippendorff
    import numpy as np

    rows = [r for r, v in table.items() if len(v) >= 2]
    if not rows or len(annotators) < 2:
        return None
    code = {lab: i for i, lab in enumerate(JUDGMENTS)}
    data = np.full((len(annotators), len(rows)), np.nan)
    for j, r in enumerate(rows):
        for i, a in enumerate(annotators):
            if a in table[r]:
                data[i, j] = code[table[r][a]]
    if len(set(data[~np.isnan(data)].tolist())) < 2:
        return None  # one category only: alpha is undefined
    return _num(krippendorff.alpha(reliability_data=data, level_of_measurement="nominal"))


def agreement(db: Database, dataset: str, annotators: Sequence[str] | None = None) -> Agreement:
    """Agreement between ``annotators`` (default: everyone who labeled) on ``dataset``'s pairs."""
    info = check_pairs(db, dataset)
    table = judgments(db, info.name, annotators)
    names = sorted({a for v in table.values() for a in v})
    if annotators:
        names = [a for a in annotators if a in names]
    shared = {r: v for r, v in table.items() if len(v) >= 2}
    counts = {a: dict(Counter(v[a] for v in table.values() if a in v)) for a in names}
    raw = unanimous = None
    if shared:
        agree_pairs = total_pairs = 0.0
        per_item = []
        for v in shared.values():
            labs = list(v.values())
            n = len(labs)
            c = Counter(labs)
            per_item.append(sum(k * (k - 1) for k in c.values()) / (n * (n - 1)))
            agree_pairs += sum(k * (k - 1) for k in c.values())
            total_pairs += n * (n - 1)
        raw = agree_pairs / total_pairs
        unanimous = sum(1 for v in shared.values() if len(set(v.values())) == 1) / len(shared)
    by_annotator: dict[str, dict[int, str]] = {a: {} for a in names}
    for r, v in table.items():
        for a, lab in v.items():
            if a in by_annotator:
                by_annotator[a][r] = lab
    busiest = sorted(names, key=lambda a: (-len(by_annotator[a]), a))[:MAX_PAIRWISE]
    pairwise = []
    for i, a in enumerate(names):
        if a not in busiest:
            continue
        for b in names[i + 1:]:
            if b not in busiest:
                continue
            both = sorted(by_annotator[a].keys() & by_annotator[b].keys())
            la = [by_annotator[a][r] for r in both]
            lb = [by_annotator[b][r] for r in both]
            pairwise.append({
                "a": a, "b": b, "n": len(both), "kappa": cohen_kappa(la, lb),
                "raw": (sum(x == y for x, y in zip(la, lb)) / len(both)) if both else None,
            })
    kappa = pairwise[0]["kappa"] if len(names) == 2 else None
    return Agreement(
        dataset=info.name, annotators=names, items=len(shared), judged=len(table), kappa=kappa,
        alpha=krippendorff_alpha(table, names), raw=raw, unanimous=unanimous, pairwise=pairwise,
        counts=counts, disagreements=_disagreements(table),
    )


def _disagreements(table: dict[int, dict[str, str]]) -> list[dict]:
    out = []
    for row in sorted(table):
        v = table[row]
        if len(v) >= 2 and len(set(v.values())) > 1:
            out.append({"row": row, "labels": dict(sorted(v.items())), "majority": majority(v.values())})
    return out


def disagreements(db: Database, dataset: str, annotators: Sequence[str] | None = None) -> list[dict]:
    """Pairs on which two or more annotators gave different judgments, in source order."""
    return _disagreements(judgments(db, check_pairs(db, dataset).name, annotators))


def confusion(db: Database, dataset: str, a: str, b: str) -> tuple[list[str], list[list[int]]]:
    """Counts of (``a``'s label, ``b``'s label) over the pairs both judged: rows ``a``, columns ``b``."""
    table = judgments(db, check_pairs(db, dataset).name, [a, b])
    idx = {lab: i for i, lab in enumerate(JUDGMENTS)}
    m = [[0] * len(JUDGMENTS) for _ in JUDGMENTS]
    for v in table.values():
        if a in v and b in v:
            m[idx[v[a]]][idx[v[b]]] += 1
    return list(JUDGMENTS), m


def busiest_pair(agr: Agreement) -> tuple[str, str] | None:
    """The two annotators who judged the most pairs in common."""
    if not agr.pairwise:
        return None
    best = max(agr.pairwise, key=lambda p: p["n"])
    return best["a"], best["b"]


# -- export -----------------------------------------------------------------------------------------

STYLES = ("conversational", "standard")
FILE_FORMATS = {".jsonl": "jsonl", ".json": "jsonl", ".parquet": "parquet"}


@dataclass
class ExportSummary:
    dataset: str
    out: str
    file_format: str
    style: str | None  # conversational | standard; None for the label log
    source: str  # "majority", "annotator NAME", or "label log"
    rows: int  # rows written
    pairs: int = 0  # pairs in the dataset
    flipped: int = 0
    agreed: int = 0  # labeled "chosen is better"
    unlabeled: int = 0  # written as in the source (no label)
    kept: dict = field(default_factory=dict)  # no-preference labels written (keep_ties)
    left_out: dict = field(default_factory=dict)  # reason -> pairs left out

    def as_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        if self.style is None:
            return f"{self.dataset}: {self.rows:,} label events written to {self.out}"
        text = (f"{self.dataset}: {self.rows:,} of {self.pairs:,} pairs written to {self.out} "
                f"({self.style} {self.file_format}, labels from {self.source}): {self.agreed:,} agreed, "
                f"{self.flipped:,} flipped, {self.unlabeled:,} unlabeled")
        if self.kept:
            text += "; kept " + ", ".join(f"{n:,} {k}" for k, n in self.kept.items())
        if self.left_out:
            text += "; left out " + ", ".join(f"{n:,} {k}" for k, n in self.left_out.items())
        return text


def file_format(out: str | os.PathLike) -> str:
    name = str(out).lower()
    for ext, fmt in FILE_FORMATS.items():
        if name.endswith(ext):
            return fmt
    raise LabelError(f"{out}: the output file must end in .jsonl, .json or .parquet")


def preference_labels(db: Database, dataset: str, annotator: str | None = None) -> dict[int, str]:
    """{row: label} to export: one annotator's current labels, or the majority of everyone's.

    With the majority, skips do not vote; a pair whose top labels tie gets ``no_majority``.
    """
    if annotator:
        return db.labeled_rows(dataset, check_annotator(annotator))
    votes: dict[int, list[str]] = {}
    for row, _who, label in db.current_labels_of(dataset):
        votes.setdefault(row, []).append(label)
    out = {}
    for row, labs in votes.items():
        judged = [lab for lab in labs if lab in JUDGMENTS]
        out[row] = (majority(judged) or "no_majority") if judged else "skip"
    return out


def _text(messages: list[dict] | None) -> str:
    return "\n\n".join((m.get("content") or "") for m in messages or [])


def prompt_text(messages: list[dict] | None) -> str:
    """A prompt as one string: a lone user turn as it is, longer prompts as a Human/Assistant transcript.

    >>> prompt_text([{"role": "user", "content": "Hi"}])
    'Hi'
    >>> prompt_text([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}, {"role": "user", "content": "?"}])
    '\\n\\nHuman: Hi\\n\\nAssistant: Yo\\n\\nHuman: ?\\n\\nAssistant:'
    """
    messages = messages or []
    if len(messages) == 1 and messages[0].get("role") == "user":
        return messages[0].get("content") or ""
    names = {"user": "Human", "assistant": "Assistant", "system": "System"}
    parts = [f"\n\n{names.get(m.get('role'), str(m.get('role')).title())}: {m.get('content') or ''}" for m in messages]
    return "".join(parts) + "\n\nAssistant:"


def apply_preference(pair: dict, label: str | None) -> dict:
    """The pair with a flip applied (``rejected`` label: chosen and rejected swap)."""
    if label == "rejected":
        return pair | {"chosen": pair["rejected"], "rejected": pair["chosen"]}
    return dict(pair)


def _messages(ms: list[dict] | None) -> list[dict]:
    return [{"role": m.get("role"), "content": m.get("content")} for m in ms or []]


def _write(rows: list[dict], out: Path, fmt: str, schema=None) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    if fmt == "parquet":
        pq.write_table(pa.Table.from_pylist(rows, schema=schema), tmp)
    else:
        with open(tmp, "w", encoding="utf-8") as fh:
            for r in rows:
                fh.write(json.dumps(r, ensure_ascii=False, default=str) + "\n")
    os.replace(tmp, out)


def _schema(style: str):
    import pyarrow as pa

    msgs = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
    t = msgs if style == "conversational" else pa.string()
    return pa.schema([("prompt", t), ("chosen", t), ("rejected", t), ("source_row", pa.int64()),
                      ("human_label", pa.string())])


def export_pairs(db: Database, dataset: str, out: str | os.PathLike, style: str = "conversational",
                 annotator: str | None = None, labeled_only: bool = False, keep_ties: bool = False) -> ExportSummary:
    """Write every pair of ``dataset`` in source order with its current preference, in TRL's format.

    ``style`` "conversational" writes ``prompt``/``chosen``/``rejected`` as message lists, "standard"
    as strings. Labels come from ``annotator``, else the majority of everyone. A flip (label
    ``rejected``) swaps chosen and rejected; ties, both-bad, skips and pairs without a majority are
    left out unless ``keep_ties`` (then written as in the source); unlabeled pairs are written as in
    the source unless ``labeled_only``. Two extra columns say where each row came from:
    ``source_row`` and ``human_label``.
    """
    info = check_pairs(db, dataset)
    if style not in STYLES:
        raise LabelError(f"unknown format {style!r}: use conversational or standard")
    out = Path(out)
    fmt = file_format(out)
    labels = preference_labels(db, info.name, annotator)
    table = db.preference_rows(info.name)
    summary = ExportSummary(dataset=info.name, out=str(out), file_format=fmt, style=style,
                            source=f"annotator {check_annotator(annotator)}" if annotator else "majority",
                            rows=0, pairs=table.num_rows)
    left_out: Counter = Counter()
    kept: Counter = Counter()
    rows = []
    for rec in table.to_pylist():
        label = labels.get(rec["row"])
        if label is None:
            if labeled_only:
                left_out["unlabeled"] += 1
                continue
            summary.unlabeled += 1
        elif label in NO_PREFERENCE:
            if not keep_ties:
                left_out[label] += 1
                continue
            kept[label] += 1
        elif label == "rejected":
            summary.flipped += 1
        else:
            summary.agreed += 1
        pair = apply_preference(
            {"prompt": _messages(rec["prompt"]), "chosen": _messages(rec["chosen"]),
             "rejected": _messages(rec["rejected"])}, label)
        if style == "standard":
            pair = {"prompt": prompt_text(pair["prompt"]), "chosen": _text(pair["chosen"]),
                    "rejected": _text(pair["rejected"])}
        rows.append(pair | {"source_row": rec["row"], "human_label": label})
    _write(rows, out, fmt, _schema(style))
    summary.rows = len(rows)
    summary.left_out = dict(left_out)
    summary.kept = dict(kept)
    return summary


def export_log(db: Database, dataset: str, out: str | os.PathLike) -> ExportSummary:
    """Write ``dataset``'s raw label log (every event, undos included, in the order written)."""
    info = check_pairs(db, dataset)
    out = Path(out)
    fmt = file_format(out)
    log = db.label_log(info.name)
    rows = log.to_pylist()
    if fmt == "jsonl":
        for r in rows:
            r["created_at"] = r["created_at"].isoformat() if r["created_at"] else None
            r["options"] = json.loads(r["options"]) if r["options"] else {}
        _write(rows, out, fmt)
    else:
        _write(rows, out, fmt, log.schema)
    return ExportSummary(dataset=info.name, out=str(out), file_format=fmt, style=None, source="label log",
                         rows=len(rows))


def hub_token() -> str | None:
    """The Hugging Face token of this process ($HF_TOKEN, or a saved login), if any."""
    if os.environ.get("HF_TOKEN"):
        return os.environ["HF_TOKEN"]
    try:
        from huggingface_hub import get_token

        return get_token()
    except Exception:
        return None


def push_to_hub(path: str | os.PathLike, repo_id: str, token: str | None = None, private: bool = True) -> str:
    """Push an exported file to the Hub dataset repo ``repo_id`` with ``datasets``; return its URL."""
    import datasets

    token = token or hub_token()
    if not token:
        raise LabelError("no Hugging Face token: set HF_TOKEN (or run `hf auth login`) to push to the Hub")
    if not re.fullmatch(r"[\w.-]+/[\w.-]+", repo_id or ""):
        raise LabelError(f"{repo_id!r} is not a Hub dataset repo id (owner/name)")
    fmt = file_format(path)
    try:
        ds = (datasets.Dataset.from_parquet(str(path)) if fmt == "parquet"
              else datasets.Dataset.from_json(str(path)))
        ds.push_to_hub(repo_id, token=token, private=private)
    except Exception as err:
        first = (str(err).strip() or type(err).__name__).splitlines()[0][:300]
        raise LabelError(f"could not push to {repo_id}: {first}") from None
    return f"https://huggingface.co/datasets/{repo_id}"
