"""A step on a Ray cluster: Ray Data ``map_batches`` over an actor pool, one model per actor.

The server reads the rows to do from DuckDB and puts them in the cluster's object store; each actor
loads the step's model once and turns batches of records into batches of results, which stream back
to the server (``iter_batches``), where they are written. A killed actor is restarted and its batch
run again (Ray Data's actor retries); only results that came back are written, so none twice.
Cancel stops the stream, which shuts the pool down. ``ray`` is imported here only, when a job asks
for it: the app's start does not pay for it.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path
from typing import Iterable, Iterator
from urllib.parse import urlsplit

import pyarrow as pa

from .step import JobError, run_step

PACKAGE = Path(__file__).resolve().parent.parent  # components/: shipped to the cluster's workers
STARTUP: dict = {}
"""How long connecting to (or starting) the cluster took, in seconds, the last time: {"seconds": s}."""


def check_reachable(address: str, timeout: float = 3.0) -> None:
    """A clear error at once when nothing answers at ``address`` (Ray would wait a minute or more)."""
    parts = urlsplit(address if "://" in address else f"ray://{address}")
    host, port = parts.hostname, parts.port
    if not host or not port:
        raise JobError(f"Ray address {address!r}: expected HOST:PORT, ray://HOST:PORT or auto")
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return
    except OSError as err:
        raise JobError(f"cannot reach the Ray cluster at {address}: {err.strerror or err}") from None


def connect(address: str):
    """Join the cluster at ``address`` ("auto": the one this process or machine runs, else a new local
    one); return the ``ray`` module."""
    # Ray's driver would put its own crash handler on SIGSEGV, which the JVM of this process (search)
    # raises on purpose and handles itself: with Ray's handler in the way, the process died (exit 139)
    os.environ.setdefault("RAY_DISABLE_FAILURE_SIGNAL_HANDLER", "1")
    import ray

    if ray.is_initialized():
        return ray
    started = time.perf_counter()
    # the app's own code goes to the workers with the job (Ray takes a local folder at the job level only)
    env = {"env_vars": {k: os.environ[k] for k in ("HF_HUB_OFFLINE", "HF_HOME", "TRANSFORMERS_OFFLINE",
                                                   "RAY_AUTH_MODE") if k in os.environ},
           "py_modules": [str(PACKAGE)]}
    try:
        if address == "auto":
            try:
                ray.init(address="auto", runtime_env=env, log_to_driver=False)
            except ConnectionError:
                ray.init(runtime_env=env, include_dashboard=False, log_to_driver=False)
        else:
            check_reachable(address)
            ray.init(address=address, runtime_env=env, log_to_driver=False)
    except JobError:
        raise
    except Exception as err:
        raise JobError(f"cannot join the Ray cluster at {address}: {type(err).__name__}: "
                       f"{str(err).splitlines()[0] if str(err) else ''}"[:300]) from None
    STARTUP["seconds"] = time.perf_counter() - started
    return ray


class _StepActor:
    """One actor of the pool: the step's model loaded once, then batch after batch."""

    def __init__(self, step):
        self.step = step
        step.load()

    def __call__(self, batch: pa.Table) -> pa.Table:
        return run_step(self.step, batch)


def results(step, batches: Iterable[pa.Table], *, address: str, workers: int = 1, num_gpus: float | None = None,
            batch_size: int = 32, cancel: threading.Event | None = None) -> Iterator[pa.Table]:
    """The step's results of ``batches``, computed on the cluster, as they come back."""
    ray = connect(address)
    if workers < 1:
        raise JobError("workers must be at least 1")
    if num_gpus is None:
        num_gpus = 1 if ray.cluster_resources().get("GPU", 0) > 0 else 0
    refs = [ray.put(b) for b in batches]
    if not refs:
        return
    ds = ray.data.from_arrow_refs(refs).map_batches(
        _StepActor, fn_constructor_args=(step,), batch_size=batch_size, batch_format="pyarrow",
        concurrency=int(workers), num_gpus=num_gpus or None,
    )
    stream = iter(ds.iter_batches(batch_size=None, batch_format="pyarrow", prefetch_batches=1))
    try:
        for out in stream:
            yield out
            if cancel is not None and cancel.is_set():
                return
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            close()  # shuts the pipeline down: the actors stop and go
        del ds
