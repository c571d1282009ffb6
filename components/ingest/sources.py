"""Sources -> Arrow rows: local files and folders, ``save_to_disk`` folders, Hub dataset ids.

JSON Lines and JSON arrays are streamed (``jsonstream``: decompressed a few megabytes at a time, the
size cap enforced on the way, parsed a batch at a time by ``jsonrows``), parquet is read by Arrow a
batch at a time (``ParquetRows``: only one batch is in memory, whatever the file's size), and CSV, ``save_to_disk``
folders and the Hub go through ``datasets``. Every source comes back as rows that give their
schema, their count, their first rows and then batches numbered by ``__row`` (``TableRows`` for an
Arrow table already in memory). Whatever must be written on the way
(``datasets``' Arrow copy of a CSV, a Hub download) goes to a scratch folder on disk named with the
owner's process id, so that folders a killed process left behind are recognized and removed.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from ..text import first_line
from . import jsonrows, jsonstream
from .jsonstream import nothing_loads  # noqa: F401  (part of this module's interface)

EXTENSIONS = {
    ".jsonl": "json", ".json": "json", ".jsonl.gz": "json", ".json.gz": "json", ".ndjson": "json",
    ".parquet": "parquet", ".csv": "csv", ".csv.gz": "csv",
}
SCRATCH_PREFIX = ".studio-ingest-"
_SCRATCH = re.compile(r"\.?studio-ingest-(\d+)-\w+")
_LEGACY = re.compile(r"studio-ingest-\w{8}")  # older versions' folders in /dev/shm, without a process id
LEGACY_AGE_S = 3600


class IngestError(Exception):
    """An ingest that could not run, explained in one line."""


def suffix(path: Path) -> str:
    """The known data-file extension of ``path`` ('' when none).

    >>> suffix(Path("hh/test.JSONL.gz"))
    '.jsonl.gz'
    """
    name = path.name.lower()
    return next((ext for ext in sorted(EXTENSIONS, key=len, reverse=True) if name.endswith(ext)), "")


def data_files(path: Path) -> tuple[str, list[Path]]:
    """The reader ('json', 'parquet' or 'csv') and the data files of a file or folder."""
    if path.is_file():
        ext = suffix(path)
        if not ext:
            raise IngestError(f"{path}: unsupported file type (use {', '.join(sorted(EXTENSIONS))})")
        return EXTENSIONS[ext], [path]
    files = sorted(p for p in path.rglob("*") if p.is_file() and suffix(p) and not p.name.startswith("."))
    readers = {EXTENSIONS[suffix(p)] for p in files}
    if not files:
        raise IngestError(f"{path}: no data files found (jsonl, jsonl.gz, json, parquet, csv)")
    if len(readers) > 1:
        raise IngestError(f"{path}: mixes file types ({', '.join(sorted(readers))}); point at one file or split folder")
    return readers.pop(), files


# -- readers --------------------------------------------------------------------------------------


def max_row_bytes(max_chars: int) -> int:
    """Rows longer than this many bytes are rejected as too long without being parsed: room for the
    text cap written with JSON escapes (up to 6 bytes a character) and for metadata."""
    return 8 * max_chars + (1 << 20)


def read_json(files: list[Path], max_chars: int, scratch: Path) -> jsonstream.JsonRows:
    """JSON Lines or JSON array files as rows (in file order, bad rows marked), read as a stream: the
    size cap holds while decompressing, and only one batch is parsed in memory at a time."""
    try:
        return jsonstream.JsonRows(files, max_row_bytes(max_chars), scratch)
    except jsonrows.JsonSourceError as err:
        raise IngestError(str(err)) from None


BATCH_BYTES = 512 << 20
"""Uncompressed bytes of parquet rows read at once, at most (fewer rows a batch for long rows)."""


class TableRows:
    """An Arrow table already in memory, as rows for staging.

    >>> rows = TableRows(pa.table({"text": ["a", "b", "c"]}))
    >>> [b.column("__row").to_pylist() for b in rows.batches(2)]
    [[0, 1], [2]]
    """

    def __init__(self, table: pa.Table):
        self.table, self.schema, self.num_rows = table, table.schema, table.num_rows

    def head(self, n: int) -> pa.Table:
        return self.table.slice(0, n)

    def batches(self, rows: int) -> Iterator[pa.Table]:
        """The rows ``rows`` at a time, each batch with ``__row``, the 0-based row of the source."""
        for start in range(0, max(self.num_rows, 1), rows):
            part = self.table.slice(start, rows)
            yield part.append_column("__row", pa.array(range(start, start + part.num_rows), pa.int64()))


class ParquetRows(TableRows):
    """Parquet files read one batch at a time: the schema and the row count come from their footers,
    the rows from one batch of at most ``BATCH_BYTES`` (uncompressed) after another."""

    def __init__(self, files: list[Path]):
        self.files = files
        self._readers = []
        for f in files:
            try:
                self._readers.append(pq.ParquetFile(f))
            except (pa.ArrowException, OSError) as err:
                raise IngestError(f"cannot read {f}: {first_line(err)}") from None
        try:
            self.schema = pa.unify_schemas([r.schema_arrow for r in self._readers], promote_options="permissive")
        except pa.ArrowException as err:
            raise IngestError(f"{files[0].parent}: the parquet files do not share one schema: {first_line(err)}") from None
        self.num_rows = sum(r.metadata.num_rows for r in self._readers)
        size = sum(r.metadata.row_group(i).total_byte_size for r in self._readers for i in range(r.num_row_groups))
        self.row_bytes = size / max(1, self.num_rows)

    def _conform(self, part: pa.Table) -> pa.Table:
        """A part of one file as a table of the files' shared schema (columns it lacks are null)."""
        if part.schema.equals(self.schema):
            return part
        return pa.concat_tables([self.schema.empty_table(), part], promote_options="permissive")

    def _parts(self, rows: int) -> Iterator[pa.Table]:
        """The files' rows, a row group at a time (a row group over ``BATCH_BYTES``, ``rows`` at a time).
        Whole row groups, read one by one: Arrow's batch iterator kept memory growing batch after batch."""
        for f, reader in zip(self.files, self._readers):
            try:
                for i in range(reader.num_row_groups):
                    if reader.metadata.row_group(i).total_byte_size <= BATCH_BYTES:
                        yield self._conform(reader.read_row_group(i))
                        continue
                    for batch in reader.iter_batches(batch_size=rows, row_groups=[i]):
                        yield self._conform(pa.Table.from_batches([batch]))
            except (pa.ArrowException, OSError) as err:
                raise IngestError(f"cannot read {f}: {first_line(err)}") from None

    def head(self, n: int) -> pa.Table:
        for f, reader in zip(self.files, self._readers):
            if reader.metadata.num_rows:
                try:
                    return self._conform(pa.Table.from_batches([next(reader.iter_batches(batch_size=n))]))
                except (pa.ArrowException, OSError) as err:
                    raise IngestError(f"cannot read {f}: {first_line(err)}") from None
        return self.schema.empty_table()

    def batches(self, rows: int) -> Iterator[pa.Table]:
        """Batches of whole row groups, each with ``__row``: at most ``rows`` rows (fewer when they are
        long, ``BATCH_BYTES``) unless one row group alone holds more."""
        rows = max(1, min(rows, int(BATCH_BYTES // max(1.0, self.row_bytes))))
        start, parts, held = 0, [], 0
        for part in self._parts(rows):
            if parts and held + part.num_rows > rows:
                yield self._numbered(parts, start)
                start, parts, held = start + held, [], 0
            parts.append(part)
            held += part.num_rows
        if parts or start == 0:
            yield self._numbered(parts or [self.schema.empty_table()], start)

    @staticmethod
    def _numbered(parts: list[pa.Table], start: int) -> pa.Table:
        table = pa.concat_tables(parts)
        return table.append_column("__row", pa.array(range(start, start + table.num_rows), pa.int64()))


def read_parquet(files: list[Path]) -> ParquetRows:
    return ParquetRows(files)


def load_source(source: str, split: str | None, config: str | None, max_chars: int,
                scratch: Path, hub_only: bool = False) -> tuple[TableRows, str]:
    """A local path or Hub dataset id as rows (``TableRows``), and its split. With ``hub_only`` the source is
    a Hub id and never a file of this machine (what a signed-in caller of the page may name)."""
    path = Path(source).expanduser()
    if hub_only:
        if source.startswith((".", "/", "~")) or path.exists() or ".." in source:
            raise IngestError(f"{source!r} is not a Hugging Face dataset id (files of the server are loaded "
                              "only from its data folder, --data-dir)")
        return TableRows(_hub(source, split, config, scratch)), split or "train"
    if path.exists():
        if path.is_dir() and ((path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists()):
            table, split = _saved(path, split)
            return TableRows(table), split
        reader, files = data_files(path)
        if reader == "json":
            return read_json(files, max_chars, scratch), split or "train"
        if reader == "parquet":
            return read_parquet(files), split or "train"
        return TableRows(_csv(path, files, scratch)), split or "train"
    if suffix(path) or source.startswith((".", "/", "~")):
        raise IngestError(f"{source}: no such file or folder")
    return TableRows(_hub(source, split, config, scratch)), split or "train"


def _saved(path: Path, split: str | None) -> tuple[pa.Table, str]:
    import datasets

    ds = datasets.load_from_disk(str(path))
    if isinstance(ds, datasets.DatasetDict):
        split = split or ("train" if "train" in ds else next(iter(ds)))
        if split not in ds:
            raise IngestError(f"{path}: no split {split!r} (splits: {', '.join(ds)})")
        ds = ds[split]
    return ds.flatten_indices().data.table, split or "train"


def _csv(path: Path, files: list[Path], scratch: Path) -> pa.Table:
    import datasets
    from datasets.utils.logging import disable_progress_bar

    disable_progress_bar()
    try:
        ds = datasets.load_dataset("csv", data_files=[str(f) for f in files], split="train", cache_dir=str(scratch))
    except Exception as err:  # the csv builder (pandas) raises many types; each is one line here
        raise IngestError(f"cannot read {path}: {first_line(err)}") from None
    return ds.data.table


def _hub(source: str, split: str | None, config: str | None, scratch: Path) -> pa.Table:
    import datasets
    from datasets.exceptions import DatasetNotFoundError
    from datasets.utils.logging import disable_progress_bar
    from huggingface_hub.errors import HfHubHTTPError

    disable_progress_bar()
    if not re.fullmatch(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?", source):
        raise IngestError(f"{source!r} is neither a local path nor a Hugging Face dataset id")
    try:
        ds = datasets.load_dataset(source, config, split=split or "train", cache_dir=str(scratch))
    except (ConnectionError, DatasetNotFoundError, HfHubHTTPError):
        raise IngestError(
            f"cannot load {source!r} from the Hugging Face Hub: the Hub is unreachable or the dataset is "
            "unknown (offline?). Download it elsewhere and ingest the files by path."
        ) from None
    except Exception as err:  # a dataset's own loading script or files can raise anything
        raise IngestError(f"cannot load {source!r} from the Hugging Face Hub: {first_line(err)}") from None
    return ds.data.table


# -- scratch folders ------------------------------------------------------------------------------


def scratch_roots(db_path: Path) -> list[Path]:
    """Where scratch folders are made (beside the database, on disk) and looked for when sweeping
    (also the temp folder and /dev/shm, where older versions put theirs)."""
    roots = [Path(db_path).resolve().parent, Path(tempfile.gettempdir()), Path("/dev/shm")]
    return [r for i, r in enumerate(roots) if r.is_dir() and r not in roots[:i]]


def make_scratch(db_path: Path) -> Path:
    """A new scratch folder beside the database, named with this process's id."""
    return Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-", dir=scratch_roots(db_path)[0]))


def alive(pid: int) -> bool:
    """Whether a process with this id exists (a zombie still does)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_scratch(db_path: Path) -> list[Path]:
    """Remove scratch folders whose process is gone (and older versions' unnamed ones after an hour)."""
    removed = []
    for root in scratch_roots(db_path):
        try:
            entries = list(root.iterdir())
        except OSError:
            continue
        for entry in entries:
            m = _SCRATCH.fullmatch(entry.name)
            try:
                stale = (m is not None and not alive(int(m.group(1)))) or (
                    _LEGACY.fullmatch(entry.name) is not None and time.time() - entry.stat().st_mtime > LEGACY_AGE_S)
                if stale and entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                    removed.append(entry)
            except OSError:
                continue  # another user's, or removed meanwhile
    return removed
