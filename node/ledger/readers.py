"""The snapshots that readers of an in-memory index hold, so the index forgets nothing a
reader may still need (node/ledger/bucket_log.py: a retired generation of swept keys).

A reader registers the last committed height it knows of BEFORE it begins its read
transaction, so its snapshot is at least that height; the floor is the lowest registered
height, or the committed height when nobody reads. Registration is a lock and a counter:
evaluation and admission register once per block or transaction, not per key.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager


class Readers:
    """Registered readers' lowest snapshot (see the module docstring). Thread-safe."""

    __slots__ = ("_active", "_committed", "_lock")

    def __init__(self, committed: int) -> None:
        self._lock = threading.Lock()
        self._active: Counter[int] = Counter()
        self._committed = committed

    @contextmanager
    def reading(self) -> Iterator[None]:
        with self._lock:
            registered = self._committed
            self._active[registered] += 1
        try:
            yield
        finally:
            with self._lock:
                self._active[registered] -= 1
                if not self._active[registered]:
                    del self._active[registered]

    def committed(self, height: int) -> int:
        """(Writer, after a commit of blocks up to `height`.) The floor: every reader's
        snapshot is at least this height."""
        with self._lock:
            self._committed = height
            return min(self._active, default=height)
