"""Search indexes: where they live, what the database says about them, building them, opening them.

Each dataset gets its own index folder (``indexes/<name>/``), built from its rows in the database by
Anserini's indexer (Pyserini's ``LuceneIndexer``), with the fields ``contents`` (the whole
conversation or document), ``prompt``, ``chosen``, ``rejected`` and ``final`` (the final turns),
plus one sortable-number field per range filter (length, scores, score margin, numeric metadata).
The index's metadata -- documents, build time, BM25 k1 and b, the dataset version it was built
from -- is kept in the database (table ``search_indexes``); an index built from an older version of
its dataset is stale, and searching it is refused with a message saying how to rebuild it.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from ..names import InvalidName, check_dataset_name
from ..store import DEFAULT_DB, Database
from ..text import utc_now
from . import numbers, total
from .details import CARDS, forget_cards, write_cards
from .feed import ahead, documents
from .errors import IndexNotReady, SearchError
from .java import LOCK, java, java_message, locked
from .query import FIELDS
from .. import catalogue

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_K1 = 0.9
DEFAULT_B = 0.4
"""BM25 parameters of a new index: Pyserini's defaults."""

INDEX_MARKER = "studio-index.json"
Progress = Callable[[float, str], None]


def index_root(db: Database) -> Path:
    """The folder holding the indexes of ``db``: $STUDIO_INDEXES, ``indexes/`` of the repository for
    the default database, else ``<db name>-indexes/`` beside the database file."""
    if os.environ.get("STUDIO_INDEXES"):
        return Path(os.environ["STUDIO_INDEXES"]).expanduser()
    if db.path.resolve() == DEFAULT_DB.resolve():
        return ROOT / "indexes"
    return db.path.parent / f"{db.path.stem}-indexes"


def index_folder(root: Path, dataset: str) -> Path:
    """The index folder of ``dataset`` under ``root``: the name checked by the one rule, and the
    resolved path checked to lie inside ``root`` (a name can never reach another folder).

    >>> index_folder(Path("/srv/indexes"), "hh-test")
    PosixPath('/srv/indexes/hh-test')
    >>> index_folder(Path("/srv/indexes"), "../victim")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    SearchError: dataset name '../victim' must start with a letter or digit ...
    """
    try:
        check_dataset_name(dataset)
    except InvalidName as err:
        raise SearchError(str(err)) from None
    base = Path(os.path.realpath(root))
    folder = Path(os.path.realpath(base / dataset))
    if folder.parent != base:
        raise SearchError(f"the index of {dataset!r} would not lie in {base}")
    return base / dataset


# -- the search_indexes table ---------------------------------------------------------------------


def _decoded(r: dict) -> dict:
    if isinstance(r.get("numeric_fields"), str):
        r["numeric_fields"] = json.loads(r["numeric_fields"])
    return r


def saved_index(db: Database, dataset: str) -> dict | None:
    """The ``search_indexes`` row of ``dataset`` (None when it has no index)."""
    r = db.dicts("SELECT * FROM search_indexes WHERE dataset = ?", [dataset])
    return _decoded(r[0]) if r else None


def _overview(db: Database) -> list[dict]:
    """Every dataset with its index (NULL columns where it has none) and whether it is stale."""
    return [_decoded(r) for r in db.dicts(
        """SELECT d.name AS dataset, d.kind, d.split, d.row_count, d.version,
                  s.path, s.documents, s.build_seconds, s.k1, s.b, s.dataset_version, s.built_at,
                  s.numeric_fields,
                  s.dataset IS NOT NULL AND s.dataset_version <> d.version AS stale
           FROM datasets d LEFT JOIN search_indexes s ON s.dataset = d.name
           ORDER BY d.name""")]


def _save(db: Database, summary: "BuildSummary", built_at, numeric_fields: dict) -> None:
    def run(cur):
        cur.execute("DELETE FROM search_indexes WHERE dataset = ?", [summary.dataset])
        cur.execute("INSERT INTO search_indexes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", [
            summary.dataset, summary.path, summary.documents, summary.seconds, summary.k1, summary.b,
            summary.version, built_at, json.dumps(numeric_fields)])

    db.write(run)


# -- statuses -------------------------------------------------------------------------------------


@dataclass
class IndexStatus:
    dataset: str
    kind: str
    split: str | None
    rows: int
    version: int
    state: str  # none | ready | stale | missing
    documents: int | None = None
    build_seconds: float | None = None
    k1: float | None = None
    b: float | None = None
    dataset_version: int | None = None
    built_at: object = None
    path: str | None = None
    numeric_fields: dict = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        return self.state == "ready"

    def problem(self) -> str:
        """Why this index cannot be searched, in one line ('' when it can)."""
        rebuild = f"build it with: python app.py index {self.dataset} (or the Index button)"
        if self.state == "none":
            return f"{self.dataset} has no search index yet; {rebuild}"
        if self.state == "stale":
            return (f"the index of {self.dataset} is stale: built from version {self.dataset_version}, "
                    f"the dataset is now version {self.version}; re{rebuild}")
        if self.state == "missing":
            return f"the index folder of {self.dataset} ({self.path}) is gone or belongs to another build; re{rebuild}"
        return ""

    def as_dict(self) -> dict:
        d = asdict(self)
        d["built_at"] = str(self.built_at) if self.built_at else None
        return d


def _stamp(ts) -> str:
    return ts.isoformat() if hasattr(ts, "isoformat") else str(ts)


def _marker_ok(path: str | None, built_at) -> bool:
    try:
        marker = json.loads((Path(path) / INDEX_MARKER).read_text())
    except (OSError, ValueError, TypeError):
        return False
    return marker.get("built_at") == _stamp(built_at)


def index_statuses(db: Database) -> list[IndexStatus]:
    """Every dataset and the state of its index."""
    out = []
    for r in _overview(db):
        if r["path"] is None:
            state = "none"
        elif r["stale"]:
            state = "stale"
        elif not _marker_ok(r["path"], r["built_at"]):
            state = "missing"
        else:
            state = "ready"
        out.append(IndexStatus(
            dataset=r["dataset"], kind=r["kind"], split=r["split"], rows=r["row_count"], version=r["version"],
            state=state, documents=r["documents"], build_seconds=r["build_seconds"], k1=r["k1"], b=r["b"],
            dataset_version=r["dataset_version"], built_at=r["built_at"], path=r["path"],
            numeric_fields=r["numeric_fields"] or {},
        ))
    return out


def index_status(db: Database, dataset: str) -> IndexStatus | None:
    return next((s for s in index_statuses(db) if s.dataset == dataset), None)


# -- building -------------------------------------------------------------------------------------

_NUMERIC_TYPE = re.compile(r"^(u?int\d+|float|double|halffloat|decimal.*)$")


def numeric_metadata(db: Database, dataset: str) -> dict[str, str]:
    """{Lucene field: column} for the dataset's numeric metadata columns."""
    info = catalogue.dataset(db, dataset)
    cols = info.columns if info else {}
    return {numbers.metadata_field(c): c for c, t in sorted(cols.items()) if _NUMERIC_TYPE.match(str(t))}


@dataclass
class BuildSummary:
    dataset: str
    documents: int
    rows: int
    seconds: float
    path: str
    k1: float
    b: float
    version: int

    def describe(self) -> str:
        skipped = self.rows - self.documents
        note = f" ({skipped:,} rows without text skipped)" if skipped else ""
        return (f"{self.dataset}: indexed {self.documents:,} documents{note} in {self.seconds:.1f} s "
                f"-> {self.path} (BM25 k1={self.k1:g} b={self.b:g}, dataset version {self.version})")

    def as_dict(self) -> dict:
        return asdict(self)


def build_index(db: Database, dataset: str, k1: float = DEFAULT_K1, b: float = DEFAULT_B,
                progress: Progress | None = None, batch_rows: int = 20_000, threads: int = 2) -> BuildSummary:
    """Build (or rebuild) the index of ``dataset`` from its rows in ``db``; record it in the database.

    The new index is written beside the old one and swapped in when complete, so a failed build
    leaves the old one as it was. The Java lock is held one batch of ``batch_rows`` at a time, so
    searches go on between batches while an index builds.
    """
    report = progress or (lambda frac, desc: None)
    info = catalogue.dataset(db, dataset)
    if info is None:
        raise SearchError(f"no dataset named {dataset!r}")
    for name, value in (("k1", k1), ("b", b)):
        if value is None or not math.isfinite(value) or value < 0 or (name == "b" and value > 1):
            raise SearchError(f"BM25 {name} must be {'between 0 and 1' if name == 'b' else '0 or more'}, not {value}")
    started = time.perf_counter()
    J = java()
    metadata = numeric_metadata(db, dataset)
    numeric = dict(numbers.BUILTIN) | {f"meta:{col}": f for f, col in metadata.items()}
    root = index_root(db)
    root.mkdir(parents=True, exist_ok=True)
    final = index_folder(root, dataset)
    work = root / f".{dataset}.building-{os.getpid()}-{threading.get_ident()}"
    shutil.rmtree(work, ignore_errors=True)
    _sweep(root)
    fields = [f for f in FIELDS if f != "contents"] + sorted(numeric.values())
    report(0.0, f"indexing {info.row_count:,} rows of {dataset}")
    with LOCK:
        # positions (for phrases); no stored copy of the document: hits are read from the database
        indexer = J.LuceneIndexer(args=["-index", str(work), "-storePositions", "-fields", *fields],
                                  threads=threads)
        _bulk_settings(J, indexer)
    done = 0
    try:
        for batch in ahead(documents(db, dataset, metadata, batch_rows)):
            with LOCK:
                indexer.add_batch_raw(batch)
            done += len(batch)
            report(0.95 * done / max(1, info.row_count), f"indexed {done:,} of {info.row_count:,} rows")
    except BaseException:
        try:
            with LOCK:
                indexer.close()
        finally:
            shutil.rmtree(work, ignore_errors=True)
        raise
    with LOCK:
        indexer.close()
    try:
        write_cards(db, dataset, work / CARDS)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    with LOCK:
        reader = J.DirectoryReader.open(J.FSDirectory.open(J.Paths.get(str(work))))
        count = reader.numDocs()
        reader.close()
    built_at = utc_now()
    (work / INDEX_MARKER).write_text(json.dumps({
        "dataset": dataset, "dataset_version": info.version, "built_at": _stamp(built_at),
        "database": str(db.path.resolve()), "k1": k1, "b": b,
    }))
    summary = BuildSummary(dataset, count, info.row_count, round(time.perf_counter() - started, 3), str(final),
                           float(k1), float(b), info.version)
    with LOCK:  # no search runs while the folder is swapped and the database says so
        _close_readers(str(final))
        old = root / f".{dataset}.old-{os.getpid()}-{threading.get_ident()}"
        if final.exists():
            final.rename(old)
        work.rename(final)
        shutil.rmtree(old, ignore_errors=True)
        _save(db, summary, built_at, numeric)
    report(1.0, f"indexed {count:,} documents of {dataset}")
    return summary


BUFFER_MB = int(os.environ.get("STUDIO_INDEX_BUFFER_MB", "512"))


def _bulk_settings(J, indexer) -> None:
    """Settings for a bulk build. No merging: the segments stay as they are flushed (millions of
    documents each); merging them while documents stream in rewrote the postings again and took a
    fifth of a ten-million-document build. A smaller buffer than Anserini's 2 GB: each indexing
    thread flushes its segment while the other goes on adding, instead of one long flush at the end.
    Pyserini keeps its IndexWriter private; both are settings Lucene lets a live writer change."""
    try:
        writer = J.cast("org.apache.lucene.index.IndexWriter", J.autoclass(
            "org.apache.commons.lang3.reflect.FieldUtils").readField(indexer.object, "writer", True))
        config = writer.getConfig()
        config.setMergePolicy(J.autoclass("org.apache.lucene.index.NoMergePolicy").INSTANCE)
        config.setRAMBufferSizeMB(float(BUFFER_MB))
    except J.JavaException:
        pass  # another Anserini: its own merging, slower but the same index


# -- open indexes ---------------------------------------------------------------------------------
# Both caches are used only holding the Java lock, so no search runs while a rebuild closes a reader.

_READERS: dict[tuple[str, str], object] = {}  # open DirectoryReaders by (path, build stamp), shared by searchers
_SEARCHERS: dict[tuple, object] = {}  # IndexSearchers by (their readers' keys, k1, b), with the query cache


def _close_readers(path: str) -> None:
    """Close the readers of ``path`` and forget its searchers and card copy (before a rebuild replaces it)."""
    forget_cards(path)
    for key in [k for k in _SEARCHERS if any(part[0] == path for part in k[0])]:
        _forget_searcher(key)
    for key in [k for k in _READERS if k[0] == path]:
        _close(_READERS.pop(key))


def _sweep(root: Path) -> None:
    """Remove the half-built and retired folders that processes no longer alive left in ``root``."""
    for folder in root.glob(".*.*-*-*"):
        match = re.fullmatch(r"\..+\.(?:building|old)-(\d+)-\d+", folder.name)
        if match is None or not folder.is_dir():
            continue
        try:
            os.kill(int(match.group(1)), 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except PermissionError:
            pass  # alive, someone else's


def forget_index(db: Database, dataset: str) -> bool:
    """Close and remove the Lucene folder of ``dataset``'s index and its ``search_indexes`` row (before
    the dataset is deleted or renamed: a folder is named after its dataset). True if there was one."""
    saved = saved_index(db, dataset)
    with LOCK:
        if saved is not None:
            _close_readers(saved["path"])
        folder = Path(saved["path"]) if saved is not None else None
        root = Path(os.path.realpath(index_root(db)))
        if folder is not None and Path(os.path.realpath(folder)).parent == root:  # never outside the indexes
            shutil.rmtree(folder, ignore_errors=True)
        db.write(lambda cur: cur.execute("DELETE FROM search_indexes WHERE dataset = ?", [dataset]))
    return saved is not None


def _close(reader) -> None:
    try:
        reader.close()
    except java().JavaException:
        pass


def _forget_searcher(key: tuple) -> None:
    searcher = _SEARCHERS.pop(key)
    total.forget(searcher)
    if len(key[0]) > 1:  # its MultiReader holds a reference to each reader: give them back
        _close(searcher.getIndexReader())


def _reader(path: str, built_at) -> object:
    key = (path, _stamp(built_at))
    reader = _READERS.get(key)
    if reader is None:
        J = java()
        try:
            reader = J.DirectoryReader.open(J.FSDirectory.open(J.Paths.get(path)))
        except J.JavaException as err:
            raise IndexNotReady(f"cannot open the index {path}: {java_message(err)}") from None
        _READERS[key] = reader
    return reader


@locked
def open_searcher(statuses: Sequence[IndexStatus]):
    """An IndexSearcher over the indexes of ``statuses`` (BM25 with their k1 and b)."""
    parts = tuple((s.path, _stamp(s.built_at)) for s in statuses)
    k1, b = statuses[0].k1, statuses[0].b
    key = (parts, k1, b)
    searcher = _SEARCHERS.get(key)
    if searcher is None:
        J = java()
        readers = [J.cast("org.apache.lucene.index.IndexReader", _reader(s.path, s.built_at)) for s in statuses]
        top = readers[0] if len(readers) == 1 else J.cast(
            "org.apache.lucene.index.IndexReader", J.MultiReader(readers, False))
        searcher = J.IndexSearcher(top)
        searcher.setSimilarity(J.BM25Similarity(float(k1), float(b)))
        searcher.setQueryCache(J.query_cache)
        if len(_SEARCHERS) > 32:
            _forget_searcher(next(iter(_SEARCHERS)))
        _SEARCHERS[key] = searcher
    return searcher


def exitable_searcher(statuses: Sequence[IndexStatus], timeout):
    """A searcher like ``open_searcher``'s whose readers stop enumerating terms once ``timeout``
    (a Lucene ``QueryTimeout``) says so: the rewrite of a wildcard, fuzzy word or regular expression
    walks the term dictionary before any document is scored, which the searcher's own timeout does
    not see. Made per search (a few Java calls); it shares the cached readers and query cache."""
    J = java()
    k1, b = statuses[0].k1, statuses[0].b
    readers = [J.cast("org.apache.lucene.index.IndexReader", J.ExitableDirectoryReader.wrap(
        J.cast("org.apache.lucene.index.DirectoryReader", _reader(s.path, s.built_at)), timeout)) for s in statuses]
    top = readers[0] if len(readers) == 1 else J.cast("org.apache.lucene.index.IndexReader",
                                                      J.MultiReader(readers, False))
    searcher = J.IndexSearcher(top)
    searcher.setSimilarity(J.BM25Similarity(float(k1), float(b)))
    searcher.setQueryCache(J.query_cache)
    return searcher
