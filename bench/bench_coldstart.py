"""Cold start: from `python app.py serve` to a served page, as a user meets it.

    .venv/bin/python bench/bench_coldstart.py [--repeat 3]

Times, for a fresh database (the demo data is ingested on first start) and again for the same
database once it exists, the wall time from launching the command to the first HTTP 200 of the page
and of the Gradio config (which is only served once every view is built).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from helpers import free_port  # noqa: E402


def start(db: Path) -> float:
    port = free_port()
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "serve", "--db", str(db), "--port", str(port)],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError("the app exited")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/config", timeout=1) as r:
                    if r.status == 200:
                        return time.perf_counter() - t
            except OSError:
                time.sleep(0.05)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    fresh, warm = [], []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            db = Path(tmp) / "studio.duckdb"
            fresh.append(start(db))
            warm.append(start(db))
    print("| start | median s | runs |")
    print("|---|---|---|")
    print(f"| first start (empty database, demo data ingested) | {statistics.median(fresh):.1f} | "
          + ", ".join(f"{x:.1f}" for x in fresh) + " |")
    print(f"| later start (database exists) | {statistics.median(warm):.1f} | " + ", ".join(f"{x:.1f}" for x in warm) + " |")


if __name__ == "__main__":
    main()
