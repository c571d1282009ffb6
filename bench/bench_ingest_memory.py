"""Peak memory of ingesting gzip files that expand a lot: one enormous line, millions of rows, a bomb.

    .venv/bin/python bench/bench_ingest_memory.py [--cases line,rows,bomb] [--code DIR] [--folder DIR]

Writes (once, into --folder, default a temp folder) gzip files made to expand:
  line   one good pair, then one line of 1 GiB (a pair whose chosen side is 1 GiB of 'a'): ~1 MB gzip
  rows   4,000,000 small trl-standard pairs, each a little different: ~32 MB gzip, ~380 MB of JSON lines
  bomb   5 GiB of lines of 4 MiB each, every one over the size cap: ~5 MB gzip
and ingests each with components.ingest.ingest() into a fresh database in a process of its own,
printing one Markdown row per case: file sizes, what the ingest said, seconds and the child's peak
resident memory (ru_maxrss). --code runs another checkout's components (an older version, to compare).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GIB = 1 << 30


def _gzip_writer(path: Path):
    comp = zlib.compressobj(6, zlib.DEFLATED, 31)
    f = open(path, "wb")

    def write(data: bytes | None) -> None:
        if data is None:
            f.write(comp.flush())
            f.close()
        else:
            f.write(comp.compress(data))

    return write


def make(case: str, folder: Path) -> tuple[Path, int]:
    """The gzip file of ``case`` (made once) and how many bytes it expands to."""
    path = folder / f"{case}.jsonl.gz"
    good = json.dumps({"prompt": "hello", "chosen": "hi there", "rejected": "go away"}).encode() + b"\n"
    block = b"a" * (16 << 20)
    if case == "line":
        size = len(good) + GIB + 48
    elif case == "rows":
        size = None
    else:
        size = 5 * GIB
    if path.exists():
        return path, int((folder / f"{case}.size").read_text())
    write = _gzip_writer(path)
    if case == "line":
        write(good)
        write(b'{"prompt": "p", "chosen": "')
        for _ in range(GIB // len(block)):
            write(block)
        write(b'", "rejected": "r"}\n')
    elif case == "rows":
        size = 0
        for start in range(0, 4_000_000, 100_000):
            text = "".join(f'{{"prompt": "question {i}", "chosen": "the answer is {i * 7 % 1000}", '
                           f'"rejected": "no idea about {i % 977}"}}\n' for i in range(start, start + 100_000)).encode()
            size += len(text)
            write(text)
    else:
        line = b'{"prompt": "p", "chosen": "' + b"b" * ((4 << 20) - 48) + b'", "rejected": "r"}\n'
        for _ in range(size // len(line)):
            write(line)
        size = (size // len(line)) * len(line)
    write(None)
    (folder / f"{case}.size").write_text(str(size))
    return path, size


def child(code: str, source: str, db_path: str) -> None:
    """Run in a process of its own: ingest ``source``, print a JSON line with the outcome and peak RSS."""
    sys.path.insert(0, code)
    from components.ingest import IngestError, ingest
    from components.store import Database

    db = Database(db_path)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    try:
        s = ingest(db, source, name="bench")
        outcome = f"{s.rows_loaded:,} loaded, rejected {dict(s.rejected)}"
    except IngestError as err:
        outcome = f"refused: {str(err).split(': ', 1)[-1][:90]}"
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"outcome": outcome, "seconds": seconds, "peak_mb": peak, "before_mb": base}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default="line,rows,bomb")
    ap.add_argument("--code", default=str(ROOT), help="the checkout whose components ingest (default this one)")
    ap.add_argument("--folder", help="where the gzip files are made (kept for the next run)")
    ap.add_argument("--child", nargs=3, metavar=("CODE", "SOURCE", "DB"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(*args.child)
    folder = Path(args.folder or tempfile.mkdtemp(prefix="bench-ingest-memory-"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"code: {args.code}; load average {os.getloadavg()[0]:.1f} at start", file=sys.stderr)
    print("| file | gzip | expands to | outcome | seconds | peak RSS | RSS before ingest |")
    print("|---|---|---|---|---|---|---|")
    for case in args.cases.split(","):
        path, size = make(case, folder)
        with tempfile.TemporaryDirectory(dir=folder) as tmp:
            out = subprocess.run([sys.executable, __file__, "--child", args.code, str(path), f"{tmp}/db.duckdb"],
                                 capture_output=True, text=True, cwd=args.code)
        if out.returncode:
            print(f"| {case} | failed: {out.stderr.strip().splitlines()[-1:]} |")
            continue
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"| {case} | {path.stat().st_size / 1e6:.1f} MB | {size / 1e9:.2f} GB | {r['outcome']} | "
              f"{r['seconds']:.1f} | {r['peak_mb']:,.0f} MB | {r['before_mb']:,.0f} MB |", flush=True)
    print(f"load average {os.getloadavg()[0]:.1f} at the end", file=sys.stderr)


if __name__ == "__main__":
    main()
