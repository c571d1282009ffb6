"""The local models loaded in this process, by key (model, device): filled by ``local`` when it
loads one, read by ``zerogpu``'s tasks, which find the model loaded before ZeroGPU's fork by its key.
"""

from __future__ import annotations

import threading

MODELS: dict[tuple[str, str], object] = {}
"""Each loaded ``local.LocalBackend`` by its key."""
LOCK = threading.Lock()
"""Held while ``MODELS`` is read or changed."""
