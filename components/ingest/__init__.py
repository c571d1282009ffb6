"""Sources -> Arrow -> the database, one bad row at a time.

``ingest(db, source)`` reads a local file or folder (jsonl, jsonl.gz, json, parquet, csv,
``save_to_disk``) or a Hub dataset id as Arrow (``sources``: parquet a batch at a time, JSON row by
row in ``jsonrows``), detects its format (``formats_multi.detect_any``: ``formats.detect`` and the N-response formats), normalizes every row in DuckDB
(``formats.select_sql``) into staging rows outside the app's write lock (``stage``), and swaps them
in as the dataset in one short transaction (``Database.replace_dataset``). Rows that cannot be
loaded are kept aside with their reason and raw text; pairs with an empty side are loaded and
flagged (``formats.EMPTY_SIDE_SQL``). An ingest that fails leaves the database as it was.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import duckdb
import pyarrow as pa

from .. import formats, formats_multi
from ..names import InvalidName, check_dataset_name, slug
from ..catalogue import DatasetInfo
from ..store import Database
from ..text import first_line
from . import sources, stage
from .sources import IngestError, suffix
from .stage import empty_side_counts
from .. import catalogue

__all__ = ["IngestError", "IngestSummary", "default_name", "empty_side_counts", "ingest", "load_demo"]

Progress = Callable[[float, str], None]

GENERIC_STEMS = {"train", "test", "validation", "valid", "dev", "eval", "data", "corpus", "dataset", "default"}


@dataclass
class IngestSummary:
    name: str
    format: str
    kind: str
    source: str
    rows_in: int
    rows_loaded: int
    rejected: dict = field(default_factory=dict)
    empty_side: int = 0
    seconds: float = 0.0
    version: int = 1
    note: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        lines = [
            f"{self.name}: {self.rows_loaded:,} of {self.rows_in:,} rows loaded as {self.kind} "
            f"(format {self.format}, version {self.version}, {self.seconds:.1f} s)"
        ]
        if self.empty_side:
            lines.append(f"  flagged {self.empty_side:,} pairs with an empty side (loaded)")
        for reason, n in self.rejected.items():
            lines.append(f"  rejected {n:,}: {reason}")
        if self.note:
            lines.append(f"  note: {self.note}")
        return "\n".join(lines)


# -- names ----------------------------------------------------------------------------------------


def _identity(source: str) -> str:
    """What makes two sources the same: a local path's real path, else the Hub id as written."""
    path = Path(source).expanduser()
    return os.path.realpath(path) if path.exists() or suffix(path) else source.strip().rstrip("/")


def _digest(source: str) -> str:
    return hashlib.sha256(_identity(source).encode()).hexdigest()[:6]


def default_name(source: str, split: str | None = None) -> str:
    """A readable dataset name from its source: ``data/hh/test.jsonl.gz`` -> ``hh-test``; a short
    hash of the source stands in for a name with no Latin letters or digits (``データ.jsonl``).

    >>> default_name("org/some-dataset", "train")
    'some-dataset-train'
    >>> default_name("/x/データ.jsonl") == "dataset-" + _digest("/x/データ.jsonl")
    True
    """
    p = Path(source)
    if p.exists() or suffix(p):
        ext = suffix(p)
        stem = p.name[: -len(ext)] if ext else p.name
        if stem.lower() in GENERIC_STEMS and p.parent.name:
            stem = f"{p.parent.name}-{stem}"
    else:
        stem = source.rstrip("/").split("/")[-1]
        if split:
            stem = f"{stem}-{split}"
    return slug(stem, fallback="") or f"dataset-{_digest(source)}"


def choose_name(db: Database, source: str, name: str | None, split: str | None) -> tuple[str, str | None]:
    """The dataset name to load ``source`` as, and a note when the default one was taken.

    An explicit ``name`` is used as given (it replaces whatever has that name). A default name
    replaces only a dataset loaded from the same source; when another source has it, the source's
    short hash is added, so two sources never silently replace each other.
    """
    try:
        if name:
            return check_dataset_name(name), None
        base = default_name(source, split)
        existing = catalogue.dataset(db, base)
        if existing is None or _identity(existing.source or "") == _identity(source):
            return check_dataset_name(base), None
        distinct = check_dataset_name(f"{base[:93]}-{_digest(source)}")
    except InvalidName as err:
        raise IngestError(str(err)) from None
    return distinct, (f"{base!r} holds data from another source ({existing.source}); loaded as {distinct!r} "
                      f"(give the name {base!r} explicitly to replace it)")


# -- ingest ---------------------------------------------------------------------------------------


class Rate:
    """Rows done out of ``total`` since it was made, in words with the rate and the time left.

    >>> Rate(1_000_000, started=0.0).describe(250_000, now=5.0)
    'normalized 250,000 of 1,000,000 rows (50,000 rows/s, about 15 s left)'
    """

    def __init__(self, total: int, started: float | None = None):
        self.total, self.started = total, time.perf_counter() if started is None else started

    def describe(self, done: int, now: float | None = None) -> str:
        elapsed = max(1e-6, (time.perf_counter() if now is None else now) - self.started)
        rate = done / elapsed
        left = f", about {(self.total - done) / rate:,.0f} s left" if rate and done < self.total else ""
        return f"normalized {done:,} of {self.total:,} rows ({rate:,.0f} rows/s{left})"


def _sample(table: pa.Table, n: int = 20) -> list[dict]:
    cols = [c for c in table.column_names if c in ("chosen", "rejected", "prompt")]
    return table.select(cols).slice(0, n).to_pylist() if cols else []


def ingest(db: Database, source: str, name: str | None = None, split: str | None = None,
           config: str | None = None, mapping: list[str] | dict | None = None,
           max_chars: int = formats.DEFAULT_MAX_CHARS, progress: Progress | None = None,
           hub_only: bool = False) -> IngestSummary:
    """Load ``source`` into dataset ``name`` (replacing an older one of that name, atomically);
    ``hub_only`` reads it from the Hugging Face Hub and never from this machine's files.

    Raises IngestError (one line) when nothing can be loaded; the database is then unchanged.
    """
    report = progress or (lambda frac, desc: None)
    started = time.perf_counter()
    name, note = choose_name(db, source, name, split)
    try:
        mapping = formats.parse_mapping(mapping)
    except formats.FormatError as err:
        raise IngestError(str(err)) from None
    sources.sweep_scratch(db.path)
    left = stage.leftovers(db)
    stage.discard(db, left)
    scratch = sources.make_scratch(db.path)
    keys: list[str] = []
    try:
        report(0.02, f"reading {source}")
        try:
            rows, split = sources.load_source(source, split, config, max_chars, scratch, hub_only=hub_only)
        except OSError as err:
            raise IngestError(f"{source}: {first_line(err)}") from None
        report(0.05, f"found {rows.num_rows:,} rows; detecting format")
        columns = {f.name: f.type for f in rows.schema}
        try:
            plan = formats_multi.detect_any(columns, _sample(rows.head(20)), mapping=mapping, max_chars=max_chars)
        except formats.FormatError as err:
            raise IngestError(f"{source}: {err}") from None
        columns |= {"__row": pa.int64()}
        report(0.05, f"normalizing {rows.num_rows:,} rows as {plan.format}")
        staging = Rate(rows.num_rows)
        try:
            keys.append(stage.stage(
                db, lambda rel: formats.select_sql(plan, columns, rel), rows.batches(stage.BATCH_ROWS),
                progress=lambda done: report(0.05 + 0.8 * done / max(1, rows.num_rows), staging.describe(done))))
        except duckdb.Error as err:
            raise IngestError(f"{source}: could not normalize rows as {plan.format}: {first_line(err)}") from None
        report(0.9, f"writing the {rows.num_rows:,} normalized rows into the database file")
        stage.settle(db)
        loaded, reasons, empty = stage.counts(db, keys[0])
        if not loaded:
            raise IngestError(f"{source}: {sources.nothing_loads(rows.num_rows, reasons)}")
        report(0.92, f"swapping {loaded:,} rows in as {name}")
        path = Path(source).expanduser()
        info = {
            "name": name, "kind": plan.kind, "format": plan.format,
            "source": str(path.resolve()) if path.exists() else source, "config": config, "split": split,
            "columns": formats.metadata_columns(columns, plan), "mapping": plan.mapping,
        }
        try:
            stored: DatasetInfo = catalogue.replace_dataset(db, info, keys[0])
        except duckdb.Error as err:
            raise IngestError(f"{source}: could not swap the rows in as {name}: {first_line(err)}") from None
        keys.clear()
    finally:
        stage.discard(db, keys)
        shutil.rmtree(scratch, ignore_errors=True)
    report(1.0, "done")
    return IngestSummary(
        name=name, format=plan.format, kind=plan.kind, source=info["source"], rows_in=rows.num_rows,
        rows_loaded=stored.row_count, rejected=stored.rejected_reasons, empty_side=empty,
        seconds=round(time.perf_counter() - started, 3), version=stored.version, note=note,
    )


DEMO_DIR = Path(__file__).resolve().parent.parent.parent / "data" / "demo"
DEMO_SOURCES = {
    "demo-assistant-pairs": "assistant-pairs.jsonl",
    "demo-trl-standard": "trl-standard.jsonl",
    "demo-trl-conversational": "trl-conversational.jsonl",
    "demo-sdsd-dialogues": "sdsd-dialogues.jsonl",
    "demo-field-notes": "field-notes.jsonl",
}


def load_demo(db: Database, progress: Progress | None = None) -> list[IngestSummary]:
    """Ingest the demo data shipped in ``data/demo`` (used on first start with an empty database)."""
    out = []
    for i, (name, file) in enumerate(DEMO_SOURCES.items()):
        (progress or (lambda frac, desc: None))(i / len(DEMO_SOURCES), f"loading demo dataset {name}")
        out.append(ingest(db, str(DEMO_DIR / file), name=name))
    return out
