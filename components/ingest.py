"""Sources -> Arrow -> the database.

Every source goes through ``datasets``: local files (jsonl, jsonl.gz, json, parquet, csv), folders of
such files, ``save_to_disk`` folders, and Hugging Face Hub dataset ids. The Arrow table it yields is
normalized by DuckDB in bulk (``formats.select_sql``) and lands in one transaction.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import pyarrow as pa

from . import formats
from .store import Database, DatasetInfo

Progress = Callable[[float, str], None]

EXTENSIONS = {
    ".jsonl": "json", ".json": "json", ".jsonl.gz": "json", ".json.gz": "json", ".ndjson": "json",
    ".parquet": "parquet", ".csv": "csv", ".csv.gz": "csv",
}
GENERIC_STEMS = {"train", "test", "validation", "valid", "dev", "eval", "data", "corpus", "dataset", "default"}


class IngestError(Exception):
    """An ingest that could not run, explained in one line."""


@dataclass
class IngestSummary:
    name: str
    format: str
    kind: str
    source: str
    rows_in: int
    rows_loaded: int
    rejected: dict = field(default_factory=dict)
    seconds: float = 0.0
    version: int = 1

    def as_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        lines = [
            f"{self.name}: {self.rows_loaded:,} of {self.rows_in:,} rows loaded as {self.kind} "
            f"(format {self.format}, version {self.version}, {self.seconds:.1f} s)"
        ]
        for reason, n in self.rejected.items():
            lines.append(f"  rejected {n:,}: {reason}")
        return "\n".join(lines)


def _quiet(progress: Progress | None) -> Progress:
    return progress or (lambda frac, desc: None)


def _suffix(path: Path) -> str:
    name = path.name.lower()
    for ext in sorted(EXTENSIONS, key=len, reverse=True):
        if name.endswith(ext):
            return ext
    return ""


def default_name(source: str, split: str | None = None) -> str:
    """A dataset name from its source: ``data/hh/test.jsonl.gz`` -> ``hh-test``.

    >>> default_name("org/some-dataset", "train")
    'some-dataset-train'
    """
    p = Path(source)
    if p.exists() or _suffix(p):
        ext = _suffix(p)
        stem = p.name[: -len(ext)] if ext else p.name
        if stem.lower() in GENERIC_STEMS and p.parent.name:
            stem = f"{p.parent.name}-{stem}"
    else:
        stem = source.rstrip("/").split("/")[-1]
        if split:
            stem = f"{stem}-{split}"
    return re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-") or "dataset"


def check_name(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", name or ""):
        raise IngestError(f"dataset name {name!r} must be letters, digits, '.', '_' or '-' (at most 100)")
    return name


# -- loading --------------------------------------------------------------------------------------


def _json_fallback(files: list[Path]) -> "pa.Table":
    """Read JSON Lines row by row when Arrow's reader gives up (bad lines, mixed types).

    Unparseable lines and values of the wrong type for their column become rows with ``__problem``
    set, so they are counted and reported instead of failing the whole file.
    """
    import gzip

    import datasets

    rows: list[dict] = []
    problems: list[str | None] = []
    for f in files:
        opener = gzip.open if f.name.endswith(".gz") else open
        with opener(f, "rt", encoding="utf-8", errors="replace") as fh:
            text = fh.read()
        if _suffix(f) == ".json" and text.lstrip().startswith("["):
            try:
                items = json.loads(text)
            except json.JSONDecodeError as err:
                raise IngestError(f"{f}: not valid JSON ({err})") from None
            lines = [json.dumps(x) for x in items]
        else:
            lines = [ln for ln in text.splitlines() if ln.strip()]
        for line in lines:
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as err:
                rows.append({})
                problems.append(f"invalid JSON ({err.msg})")
                continue
            if not isinstance(obj, dict):
                rows.append({})
                problems.append("not a JSON object")
                continue
            rows.append(obj)
            problems.append(None)

    def kind(v):
        if v is None:
            return None
        if isinstance(v, bool):
            return "bool"
        if isinstance(v, (int, float)):
            return "number"
        return type(v).__name__

    kinds: dict[str, Counter] = {}
    for r in rows:
        for k, v in r.items():
            kn = kind(v)
            if kn:
                kinds.setdefault(k, Counter())[kn] += 1
    majority = {k: c.most_common(1)[0][0] for k, c in kinds.items()}
    names = {"str": "text", "number": "a number", "bool": "a boolean", "list": "a list", "dict": "an object"}
    for i, r in enumerate(rows):
        for k in list(r):
            kn = kind(r[k])
            if kn and kn != majority[k]:
                if problems[i] is None:
                    problems[i] = f"wrong type: {k} is {names.get(kn, kn)}, not {names.get(majority[k], majority[k])}"
                r[k] = None
    columns = list(kinds)
    records = [{c: r.get(c) for c in columns} for r in rows]
    try:
        table = datasets.Dataset.from_list(records).data.table if records else pa.table({})
    except Exception as err:  # nested values that still do not unify
        raise IngestError(f"cannot read {files[0]}: {_first_line(err)}") from None
    if table.num_columns == 0:
        table = pa.table({"__empty": pa.nulls(len(rows))})
    return table.append_column("__problem", pa.array(problems, pa.string()))


def _first_line(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    return text.splitlines()[0][:300]


def _data_files(path: Path) -> tuple[str, list[Path]]:
    if path.is_file():
        ext = _suffix(path)
        if not ext:
            raise IngestError(f"{path}: unsupported file type (use {', '.join(sorted(EXTENSIONS))})")
        return EXTENSIONS[ext], [path]
    files = sorted(p for p in path.rglob("*") if p.is_file() and _suffix(p) and not p.name.startswith("."))
    builders = {EXTENSIONS[_suffix(p)] for p in files}
    if not files:
        raise IngestError(f"{path}: no data files found (jsonl, jsonl.gz, json, parquet, csv)")
    if len(builders) > 1:
        raise IngestError(f"{path}: mixes file types ({', '.join(sorted(builders))}); point at one file or split folder")
    return builders.pop(), files


def load_source(source: str, split: str | None = None, config: str | None = None,
                cache_dir: str | None = None) -> tuple[pa.Table, str]:
    """Load a local path or Hub dataset id with ``datasets``; return its Arrow table and split."""
    import datasets
    from datasets.utils.logging import disable_progress_bar

    disable_progress_bar()
    path = Path(source).expanduser()
    if path.exists():
        if path.is_dir() and ((path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists()):
            ds = datasets.load_from_disk(str(path))
            if isinstance(ds, datasets.DatasetDict):
                split = split or ("train" if "train" in ds else next(iter(ds)))
                if split not in ds:
                    raise IngestError(f"{path}: no split {split!r} (splits: {', '.join(ds)})")
                ds = ds[split]
            return ds.flatten_indices().data.table, split or "train"
        builder, files = _data_files(path)
        try:
            ds = datasets.load_dataset(builder, data_files=[str(f) for f in files], split="train", cache_dir=cache_dir)
        except Exception as err:
            if builder != "json":
                raise IngestError(f"cannot read {path}: {_first_line(err)}") from None
            return _json_fallback(files), split or "train"
        return ds.data.table, split or "train"
    if _suffix(path) or source.startswith((".", "/", "~")):
        raise IngestError(f"{source}: no such file or folder")
    return _load_hub(source, split, config, cache_dir), split or "train"


def _load_hub(source: str, split: str | None, config: str | None, cache_dir: str | None) -> pa.Table:
    import datasets

    if not re.fullmatch(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?", source):
        raise IngestError(f"{source!r} is neither a local path nor a Hugging Face dataset id")
    try:
        ds = datasets.load_dataset(source, config, split=split or "train", cache_dir=cache_dir)
    except Exception as err:
        text = str(err)
        if os.environ.get("HF_HUB_OFFLINE") == "1" or "offline" in text.lower() or "connect" in text.lower() \
                or "resolve" in text.lower() or "Max retries" in text:
            raise IngestError(
                f"cannot load {source!r} from the Hugging Face Hub: the Hub is unreachable or the dataset is "
                "unknown (offline?). Download it elsewhere and ingest the files by path."
            ) from None
        raise IngestError(f"cannot load {source!r} from the Hugging Face Hub: {_first_line(err)}") from None
    return ds.data.table


# -- ingest ---------------------------------------------------------------------------------------


def _scratch_dir(source: str) -> str | None:
    """Where ``datasets`` writes its Arrow copy of a local source: memory (/dev/shm) when it fits."""
    shm = "/dev/shm"
    try:
        size = sum(p.stat().st_size for p in ([Path(source)] if Path(source).is_file() else Path(source).rglob("*")))
        if os.access(shm, os.W_OK) and shutil.disk_usage(shm).free > 12 * size + (256 << 20):
            return shm
    except OSError:
        pass
    return None


def _sample(table: pa.Table, n: int = 20) -> list[dict]:
    cols = [c for c in table.column_names if c in ("chosen", "rejected", "prompt")]
    return table.select(cols).slice(0, n).to_pylist() if cols else []


def ingest(db: Database, source: str, name: str | None = None, split: str | None = None,
           config: str | None = None, mapping: list[str] | dict | None = None,
           max_chars: int = formats.DEFAULT_MAX_CHARS, progress: Progress | None = None) -> IngestSummary:
    """Load ``source`` into dataset ``name`` (replacing an older one of that name, atomically)."""
    report = _quiet(progress)
    started = time.perf_counter()
    name = check_name(name or default_name(source, split))
    try:
        mapping = formats.parse_mapping(mapping)
    except formats.FormatError as err:
        raise IngestError(str(err)) from None
    report(0.05, f"reading {source}")
    with tempfile.TemporaryDirectory(prefix="studio-ingest-", dir=_scratch_dir(source)) as cache:
        table, split = load_source(source, split, config, cache_dir=cache)
        report(0.45, f"read {table.num_rows:,} rows; detecting format")
        columns = {f.name: f.type for f in table.schema}
        try:
            plan = formats.detect(columns, _sample(table), mapping=mapping, max_chars=max_chars)
        except formats.FormatError as err:
            raise IngestError(f"{source}: {err}") from None
        table = table.append_column("__row", pa.array(range(table.num_rows), pa.int64()))
        columns |= {"__row": pa.int64()}
        report(0.55, f"normalizing {table.num_rows:,} rows as {plan.format}")
        info = {
            "name": name, "kind": plan.kind, "format": plan.format,
            "source": str(source), "config": config, "split": split,
            "columns": formats.metadata_columns(columns, plan), "mapping": plan.mapping,
        }
        try:
            stored: DatasetInfo = db.replace_dataset(
                info, lambda source: formats.select_sql(plan, columns, source), {"src": table})
        except Exception as err:
            if type(err).__module__.startswith("duckdb") or "duckdb" in type(err).__module__:
                raise IngestError(f"{source}: could not normalize rows as {plan.format}: {_first_line(err)}") from None
            raise
    report(1.0, "done")
    return IngestSummary(
        name=name, format=plan.format, kind=plan.kind, source=str(source), rows_in=table.num_rows,
        rows_loaded=stored.row_count, rejected=stored.rejected_reasons,
        seconds=round(time.perf_counter() - started, 3), version=stored.version,
    )


DEMO_DIR = Path(__file__).resolve().parent.parent / "data" / "demo"
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
        _quiet(progress)(i / len(DEMO_SOURCES), f"loading demo dataset {name}")
        out.append(ingest(db, str(DEMO_DIR / file), name=name))
    return out
