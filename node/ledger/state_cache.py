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

Warm from the start: when the ledger opens, it loads the whole state into the cache if it
fits in three quarters of `entries_max` (`warm`; the last quarter is room for new keys, so
the first blocks do not cut half of what was just loaded). Then a block reads no store page at any population
size: at 1,000,000 accounts each miss was a cold B-tree descent costing 2-3 µs, and a block
of random transfers missed ~2,400 keys, the largest part of the 1M penalty
(docs/benchmarks.md, rounds 8-10). The price is memory (about 330 bytes per account record
and 170 per balance or nonce) and time at open (5-8 s per million accounts, measured); a
larger state is not loaded at all, and the cache fills as blocks read.

Bounded: once it holds more than `entries_max` entries at the start of a block, it is cut
down to half of that (a dropped key is simply read again), keeping, in this order:
1. the keys to keep (always, even past the target: correctness);
2. the senders' entries: the account, nonce and balances of every signer whose nonce a block
   wrote since the last cut. A sender comes back (it read and wrote these three), while most
   recipients of a large population are touched once. Dropping by insertion order alone
   dropped the signers first (they were read first): at 1,000,000 accounts, once the cache
   had filled, blocks missed ~4,400 keys instead of ~1,900 (docs/benchmarks.md, round 7). If
   the senders alone are more than the target, their oldest entries go too, so a cut frees
   space unless everything left must be kept;
3. everything else, newest first.
Each dict gives up a share of the excess in proportion to its size, oldest entries first.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Container, Iterable
from itertools import islice
from typing import Any, NamedTuple

from node.ledger.keys import KEY_BYTES

StateDicts = tuple[dict[bytes, Any], dict[bytes, int], dict[bytes, int]]


class StateCacheStats(NamedTuple):
    entries: int
    entries_max: int
    loads: int  # keys evaluations added (misses), since the ledger was opened
    cuts: int
    warmed: int = 0  # entries loaded when the ledger opened (`warm`)
    warm_s: float = 0.0  # and the seconds that took


class StateCache:
    """Decoded accounts, balances and nonces after the block `position` (see the module
    docstring). `entries_max=0` turns it off. Not thread-safe: one evaluation at a time."""

    __slots__ = (
        "_position",
        "_senders",
        "_size_at_begin",
        "accounts",
        "balances",
        "cuts",
        "entries_max",
        "loads",
        "nonces",
        "warm_s",
        "warmed",
    )

    def __init__(self, entries_max: int) -> None:
        if entries_max < 0:
            raise ValueError(f"entries_max must be at least 0, not {entries_max}")
        self.entries_max = entries_max
        self.accounts: dict[bytes, Any] = {}  # public key -> AccountRecord | None
        self.balances: dict[bytes, int] = {}  # balance key -> amount
        self.nonces: dict[bytes, int] = {}  # public key -> next nonce
        self._position: bytes | None = None
        self._senders: set[bytes] = set()  # signers whose nonce changed since the last cut
        # For operators (node metrics) and the bench, since the ledger was opened: keys that
        # finished evaluations added to the cache (its misses: read from the store, or
        # re-seeded from uncommitted blocks after a clear), and cuts.
        self.loads = 0
        self.cuts = 0
        self.warmed = 0
        self.warm_s = 0.0
        self._size_at_begin = 0

    def __len__(self) -> int:
        return len(self.accounts) + len(self.balances) + len(self.nonces)

    def stats(self) -> StateCacheStats:
        return StateCacheStats(
            len(self), self.entries_max, self.loads, self.cuts, self.warmed, self.warm_s
        )

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
            self._cut(keep())
        self._position = None
        self._size_at_begin = len(self)
        return self.accounts, self.balances, self.nonces

    def end(self, block_hash: bytes, senders: Iterable[bytes] = ()) -> None:
        """The evaluation begun last finished: the dicts hold the state after `block_hash`.
        `senders`: the signers whose nonce it wrote (only a hint for eviction)."""
        if self.entries_max:
            self._position = block_hash
            self._senders.update(senders)
            # Nothing leaves the dicts during an evaluation, so its growth is what it loaded.
            self.loads += len(self) - self._size_at_begin

    def warm(
        self,
        position: bytes,
        accounts: Iterable[tuple[bytes, Any]],
        balances: Iterable[tuple[bytes, int]],
        nonces: Iterable[tuple[bytes, int]],
    ) -> None:
        """Fill the cache with the whole state after block `position`: every decoded account
        record, balance and nonce the store holds, which together fit in `entries_max`
        (later pairs win: a balance may come from the tree and then from its log)."""
        started = time.perf_counter()
        self.clear()
        self.accounts.update(accounts)
        self.balances.update(balances)
        self.nonces.update(nonces)
        if len(self) > self.entries_max:
            self.clear()  # the caller counted wrong: better cold than over the bound
            raise ValueError(f"warm: the state has more than {self.entries_max} entries")
        self._position = position
        self.warmed = len(self)
        self.warm_s = time.perf_counter() - started

    def clear(self) -> None:
        self.accounts.clear()
        self.balances.clear()
        self.nonces.clear()
        self._senders.clear()
        self._position = None

    def _cut(self, kept: Container[bytes]) -> None:
        """Down to half of `entries_max` (see the module docstring for what stays)."""
        self.cuts += 1
        target = self.entries_max // 2
        senders = self._senders
        tail = -KEY_BYTES  # a balance key ends with its holder's public key (keys.py)
        dicts: tuple[tuple[dict[bytes, Any], Callable[[bytes], bool]], ...] = (
            (self.accounts, senders.__contains__),
            (self.balances, lambda key: key[tail:] in senders),
            (self.nonces, senders.__contains__),
        )
        for take_senders in (False, True):
            excess, total = len(self) - target, len(self)
            if excess <= 0:
                break
            # Each dict its share, then whatever is still over, dict by dict.
            for cache, is_sender in dicts:
                spared = None if take_senders else is_sender
                _drop_oldest(cache, excess * len(cache) // total, kept, spared)
            for cache, is_sender in dicts:
                spared = None if take_senders else is_sender
                _drop_oldest(cache, len(self) - target, kept, spared)
        senders.clear()


def _drop_oldest(
    cache: dict[bytes, Any],
    count: int,
    kept: Container[bytes],
    spared: Callable[[bytes], bool] | None,
) -> None:
    """Drop up to `count` of `cache`'s oldest keys, never one in `kept`, nor one `spared`
    says to spare."""
    if count <= 0:
        return
    if spared is None:
        candidates = (key for key in cache if key not in kept)
    else:
        candidates = (key for key in cache if key not in kept and not spared(key))
    for key in list(islice(candidates, count)):
        del cache[key]
