"""Local generation on a ZeroGPU Space: a GPU is attached only while a ``spaces.GPU`` task runs.

On such a Space (the platform sets ``$SPACES_ZERO_GPU``) the two tasks below -- one ``generate`` of
a batch, and one streamed ``generate`` -- are ``spaces.GPU`` functions, declared while the app starts
(ZeroGPU asks for that). ZeroGPU runs a task in a forked worker process, so a task receives only
plain values (token ids, generation options, the loaded model's key) and finds the model, loaded
in the app's process before the fork, by its key; a stream comes back as lists of token ids.
Elsewhere ``spaces`` is never imported and the local backend calls ``generate`` itself. Stop ends
the reading of a stream at once; a task already running on ZeroGPU finishes its tokens unseen.

>>> on_zero_gpu({"SPACES_ZERO_GPU": "true"}), on_zero_gpu({})
(True, False)
"""

from __future__ import annotations

import os
import threading
from typing import Iterator

from .loaded import MODELS

GPU_SECONDS = 120
"""The longest one task may hold the GPU (ZeroGPU's ``duration``): a batch of critiques or revisions."""


def on_zero_gpu(env: dict | None = None) -> bool:
    """On a ZeroGPU Space (the value ``spaces`` itself reads)."""
    value = (os.environ if env is None else env).get("SPACES_ZERO_GPU") or ""
    return value.lower() in ("1", "t", "true")


def generate_ids(key: tuple[str, str], inputs: dict[str, list], options: dict, seed: int) -> list[list[int]]:
    """One ``generate`` of the loaded model ``key`` over ``inputs`` (token ids and attention mask, as
    lists): every sequence's ids, prompt included."""
    import torch

    backend = MODELS[key]
    enc = {k: torch.tensor(v, device=backend.device) for k, v in inputs.items()}
    with torch.inference_mode():
        torch.manual_seed(seed)
        return backend.lm.generate(**enc, **options).tolist()


def stream_ids(key: tuple[str, str], inputs: dict[str, list], options: dict, seed: int) -> Iterator[list[int]]:
    """One streamed ``generate``: the prompt's ids first, then the new ids as they are made (what a
    transformers streamer is handed, as lists)."""
    import queue

    import torch

    backend = MODELS[key]
    enc = {k: torch.tensor(v, device=backend.device) for k, v in inputs.items()}
    made: queue.Queue = queue.Queue()
    failed: list[BaseException] = []

    class Relay:
        def put(self, value):
            made.put(value.reshape(-1).tolist())

        def end(self):
            pass

    def work():
        try:
            with torch.inference_mode():
                torch.manual_seed(seed)
                backend.lm.generate(**enc, **options, streamer=Relay())
        except BaseException as err:  # raised again by the reader, below
            failed.append(err)
        made.put(None)

    worker = threading.Thread(target=work, daemon=True, name="zerogpu-generate")
    worker.start()
    while (ids := made.get()) is not None:
        yield ids
    worker.join()
    if failed:
        raise failed[0]


if on_zero_gpu():  # declared while the app starts, as ZeroGPU requires; elsewhere spaces is not imported
    import spaces

    generate_ids = spaces.GPU(generate_ids, duration=GPU_SECONDS)
    stream_ids = spaces.GPU(stream_ids, duration=GPU_SECONDS)
