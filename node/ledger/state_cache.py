"""Decoded state kept between blocks, so a hot account is not read and decoded every block.

Reading state is most of what a transfer costs: five LMDB reads and two record decodes are
~7 of its ~9.5 µs on the fast path (docs/benchmarks.md, round 5). The accounts, balances and
nonces a block read or wrote are kept, decoded, for the next block.

Correctness rests on one rule: the cache holds the state right after ONE block, its
`position` (that block's hash, which fixes the whole chain below it). A block is evaluated
with the cache only if its parent is that position; otherwise the cache is cleared first. A
block view works directly in the cache's dicts, and the cache is invalid (position None)
until the evaluation has finished, so a failed evaluation, or a block evaluated and never
committed, can never leak its writes into another block: the next block's parent is then
not the position.

Blocks evaluated ahead of their commit (node/ledger/pipeline.py) rely on the cache for
their writes: the next block reads them here, not from the store, which may not have them
yet. So the keys those blocks wrote are never dropped (`keep`).

Bounded: once it holds more than `entries_max` entries at the start of a block, the oldest
half of each dict (insertion order) is dropped, except the keys to keep. A dropped key is
simply read again.
"""

from __future__ import annotations

from collections.abc import Callable, Container
from itertools import islice
from typing import Any

StateDicts = tuple[dict[bytes, Any], dict[bytes, int], dict[bytes, int]]


class StateCache:
    """Decoded accounts, balances and nonces after the block `position` (see the module
    docstring). `entries_max=0` turns it off. Not thread-safe: one evaluation at a time."""

    __slots__ = ("_position", "accounts", "balances", "entries_max", "nonces")

    def __init__(self, entries_max: int) -> None:
        if entries_max < 0:
            raise ValueError(f"entries_max must be at least 0, not {entries_max}")
        self.entries_max = entries_max
        self.accounts: dict[bytes, Any] = {}  # public key -> AccountRecord | None
        self.balances: dict[bytes, int] = {}  # balance key -> amount
        self.nonces: dict[bytes, int] = {}  # public key -> next nonce
        self._position: bytes | None = None

    def __len__(self) -> int:
        return len(self.accounts) + len(self.balances) + len(self.nonces)

    @property
    def position(self) -> bytes | None:
        """The hash of the block the cached state follows, or None (invalid)."""
        return self._position

    def begin(
        self, parent_hash: bytes, keep: Callable[[], Container[bytes]] = frozenset
    ) -> StateDicts | None:
        """The dicts for evaluating a child of block `parent_hash` (cleared unless the cache
        follows exactly that block), or None when the cache is off. Invalid until `end`.

        `keep()` (called only to evict) gives the keys that must stay: those written by the
        blocks not yet committed, which the store does not have yet."""
        if not self.entries_max:
            return None
        if self._position != parent_hash:
            self.clear()
        elif len(self) > self.entries_max:
            kept = keep()
            for cache in (self.accounts, self.balances, self.nonces):
                for key in list(islice(cache, len(cache) // 2)):
                    if key not in kept:
                        del cache[key]
        self._position = None
        return self.accounts, self.balances, self.nonces

    def end(self, block_hash: bytes) -> None:
        """The evaluation begun last finished: the dicts hold the state after `block_hash`."""
        if self.entries_max:
            self._position = block_hash

    def clear(self) -> None:
        self.accounts.clear()
        self.balances.clear()
        self.nonces.clear()
        self._position = None
