"""Exponential reconnect backoff with jitter (pure; the rng is injected for determinism)."""

from __future__ import annotations

import random


class Backoff:
    """Delays double from min to max; each is drawn uniformly from [delay/2, delay]
    ("equal jitter"), so peers that lost each other at the same moment do not redial in
    lockstep, yet the wait never collapses to zero."""

    def __init__(self, *, min_ms: int, max_ms: int, rng: random.Random) -> None:
        self._min_ms = min_ms
        self._max_ms = max_ms
        self._rng = rng
        self._next_ms = min_ms

    def reset(self) -> None:
        self._next_ms = self._min_ms

    def next_delay_s(self) -> float:
        delay_ms = self._next_ms
        self._next_ms = min(self._max_ms, self._next_ms * 2)
        return self._rng.uniform(delay_ms / 2, delay_ms) / 1000.0
