"""What the benchmarks share: percentiles, peak memory, and the app served by ``python app.py serve``
in a subprocess with the round trip of one search through its API."""

from __future__ import annotations

import contextlib
import resource
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for _path in (str(ROOT), str(ROOT / "tests")):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from helpers import free_port, wait_http  # noqa: E402


def pct(times: list[float], p: float) -> float:
    """The ``p``-th percentile of ``times`` (nearest rank).

    >>> pct([5, 1, 3, 2, 4], 50), pct([5, 1, 3, 2, 4], 95)
    (3, 5)
    """
    s = sorted(times)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def peak_rss_mb(pid: int | None = None) -> float:
    """Peak resident memory in MB: of this process, or of process ``pid`` (its VmHWM)."""
    if pid is None:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@contextlib.contextmanager
def served(db_path: Path, log=None, timeout: float = 300):
    """``python app.py serve --no-demo`` over ``db_path`` until the block ends; yields (url, process)."""
    port = free_port()
    out = log if log is not None else subprocess.DEVNULL
    proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "serve", "--db", str(db_path), "--port", str(port),
                             "--no-demo"], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT if log is not None else out)
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_http(url, timeout=timeout, proc=proc)
        yield url, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def search_hits(client, name: str, query: str) -> int:
    """One search through the served app's ``/search`` API (a page of 10, the length filter at 30
    characters or more, highlighted); the number of hit cards it returned."""
    error, _summary, html, *_ = client.predict(query, [name], "contents", "words", "any", "30", "", "margin",
                                               "", "", "any", api_name="/search")
    assert not error, error
    return html.count('class="sr-hit"')
