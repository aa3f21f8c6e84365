"""An account's history: the transactions that touched it, newest first, as back-linked chains.

Layout (docs/ledger.md, Store layout):

    history_heads  account             -> position of the account's newest entry
    history_links  position ‖ account  -> position of the account's previous entry ‖ tx id

A page of history starts at the head (or at the entry a cursor names) and follows the
links: one point read per entry, never a scan.

Why chains, not one tree keyed account ‖ position (schema 2): there every entry was a
random-key insert into a tree that grows with the chain, so once it is large each entry
dirtied a page of its own, which the commit then wrote back and waited for (with 5,000,000
entries behind it, the 10,000-account stream lost a third: docs/benchmarks.md, round 14).
Keyed position first, a block's links go to the end of their tree (appends, a few pages).
The random-key writes left are the heads, one per account, into a tree as large as the
accounts that ever transacted, not as long as the chain.

Linking an entry needs the account's current head. The writer keeps the heads in memory
(HeadsCache: all of them, loaded at open, when they fit), so writing a block reads no page
for them; the cache follows one block, like the state cache (node/ledger/state_cache.py),
and starts over when a write transaction it followed was aborted.

Once the heads tree is large, a block's heads go to a bucketed log in front of it, swept
into it a bucket at a time (node/ledger/bucket_log.py): at 1,000,000 accounts a block's
~2,000 heads would otherwise dirty ~2,000 leaves of the tree. Every read of a head looks
in the log first.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, NamedTuple

from node.ledger import keys as kl
from node.ledger.bucket_log import HISTORY_HEADS as HEADS_LOG
from node.ledger.bucket_log import BucketLog
from node.ledger.errors import LedgerCorruptError, LedgerError
from node.ledger.txn import Txn

# The previous position of an account's first entry: no real position (heights stop short).
NO_PREVIOUS = b"\xff" * kl.POSITION_BYTES
_P = kl.POSITION_BYTES

# What a block adds to the history, per transaction that claimed its id (in position order):
# its position, its tx id and the accounts it touched (the signer first; may repeat).
HistoryItems = list[tuple[bytes, bytes, tuple[bytes, ...]]]


@dataclass(frozen=True, slots=True, kw_only=True)
class HistoryEntry:
    height: int
    index: int
    tx_id: bytes


class HistoryCursorError(LedgerError):
    """A page was asked to continue from a position that is not in the account's history.
    Nothing was read; continue from the last entry of the previous page."""


class HeadsCacheStats(NamedTuple):
    entries: int
    warmed: int  # heads `warm` loaded when the ledger opened: 0 if none stored or too many
    warm_s: float  # and the seconds that took


class HeadsCache:
    """Every account's head as of block `position`, for the heads the writer read or wrote
    since it last started over (see the module docstring); or every head the store holds,
    when `warm` loaded them all, and then an account it lacks has no history yet, so writing
    a block reads no page at all (most of a block's recipients at 1,000,000 accounts are
    touched for the first time). Bounded: past `entries_max` it starts over (a head not
    cached is read from the store). Used only inside write transactions, which LMDB
    serialises, so it needs no lock of its own. It writes the heads through their `log`
    (node/ledger/bucket_log.py), whose owner tells it when the transaction commits or aborts."""

    __slots__ = (
        "_complete",
        "_heads",
        "_position",
        "entries_max",
        "log",
        "warm_s",
        "warmed",
    )

    def __init__(self, entries_max: int, *, log: BucketLog) -> None:
        if entries_max < 0:
            raise ValueError(f"entries_max must be at least 0, not {entries_max}")
        self.entries_max = entries_max
        self.log = log
        self._heads: dict[bytes, bytes] = {}
        self._position: bytes | None = None  # the hash of the block the heads follow
        self._complete = False  # it holds every head the store holds
        self.warmed = 0  # heads `warm` loaded when the ledger opened (for operators)
        self.warm_s = 0.0  # and the seconds that took

    def __len__(self) -> int:
        return len(self._heads)

    def stats(self) -> HeadsCacheStats:
        return HeadsCacheStats(len(self._heads), self.warmed, self.warm_s)

    def warm(self, txn: Txn, dbs: dict[str, Any], position: bytes) -> None:
        """Load every head the store holds after block `position` (the tip of `txn`), if
        they fit in half of `entries_max` (the other half is room for new accounts)."""
        if not self.entries_max or self.log.entries(txn, dbs) * 2 > self.entries_max:
            return
        started = time.perf_counter()
        self._heads = {bytes(k): bytes(v) for k, v in self.log.tables.tree_then_log(txn, dbs)}
        self._position = position
        self._complete = True
        self.warmed = len(self._heads)
        self.warm_s = time.perf_counter() - started

    def write(
        self,
        txn: Txn,
        dbs: dict[str, Any],
        *,
        height: int,
        parent_hash: bytes,
        block_hash: bytes,
        items: HistoryItems,
    ) -> None:
        """Put block `height`'s (`block_hash`'s) history `items` into `txn`, whose tip is its
        parent."""
        heads = self._heads
        if self._position != parent_hash or len(heads) > self.entries_max:
            heads.clear()  # it followed a block that is not this one's parent: start over
            self._complete = False
        complete = self._complete
        self._position = None  # invalid until this block is in: a failed put leaves it so
        cached = heads.get
        stored = self.log.read_own
        links: list[tuple[bytes, bytes]] = []
        link = links.append
        written: dict[bytes, bytes] = {}
        accounts: tuple[bytes, ...]
        for position, tx_id, touched in items:
            # Link keys must ascend within a position (appends), and an account touched
            # twice is one entry (or it would link to itself). Most touch two: no sort.
            if len(touched) == 2:
                a, b = touched
                accounts = (a, b) if a < b else (b, a) if b < a else (a,)
            else:
                accounts = touched if len(touched) == 1 else tuple(sorted(set(touched)))
            for account in accounts:
                previous = cached(account)
                if previous is None:
                    previous = NO_PREVIOUS if complete else stored(txn, dbs, account) or NO_PREVIOUS
                link((position + account, previous + tx_id))
                heads[account] = written[account] = position
        if links:
            _, added = txn.cursor(db=dbs[kl.HISTORY_LINKS]).putmulti(links, append=True)
            if added != len(links):  # an append that was not after the last key
                raise LedgerCorruptError(
                    f"history of block {int.from_bytes(links[0][0][:8], 'big')} is not after"
                    " the stored history"
                )
        keys = sorted(written)  # sorting keys alone: bytes compare faster than tuples
        # Every block, written or not: each sweeps a bucket of the log.
        self.log.put(txn, dbs, height, list(zip(keys, map(written.__getitem__, keys), strict=True)))
        if not self.entries_max:
            heads.clear()  # (never complete: warm needs room)
            return
        self._position = block_hash


def page(
    txn: Txn,
    dbs: dict[str, Any],
    account: bytes,
    limit: int,
    before: tuple[int, int] | None,
) -> list[HistoryEntry]:
    """Up to `limit` entries of `account`'s history, newest first. `before=(height, index)`,
    the last entry of a previous page, continues that page (HistoryCursorError if it is
    not an entry of this account's history)."""
    links = dbs[kl.HISTORY_LINKS]
    newer = NO_PREVIOUS  # every entry must be older than the one before it (or the cursor)
    if before is None:
        position = HEADS_LOG.read_at(txn, dbs, account)
    else:
        height, index = before if type(before) is tuple and len(before) == 2 else (None, None)
        if not (
            type(height) is int
            and type(index) is int
            and 0 <= height < 1 << 64
            and 0 <= index < 1 << 32
        ):
            raise HistoryCursorError(f"position ({height!r}, {index!r}) is out of range")
        newer = kl.position_key(height, index)
        raw = txn.get(newer + account, None, links)
        if raw is None:
            raise HistoryCursorError(
                f"position ({height}, {index}) is not in the history of account"
                f" {account.hex()}: continue from the last entry of the previous page"
            )
        position = bytes(raw[:_P])
    out: list[HistoryEntry] = []
    while position is not None and position != NO_PREVIOUS and len(out) < limit:
        if position >= newer:  # a cycle would never end
            raise LedgerCorruptError(
                f"the history of {account.hex()} links {newer.hex()} to {position.hex()},"
                " which is not older"
            )
        raw = txn.get(position + account, None, links)
        if raw is None:
            raise LedgerCorruptError(
                f"the history of {account.hex()} links to {position.hex()}, which is not stored"
            )
        out.append(
            HistoryEntry(
                height=int.from_bytes(position[: kl.HEIGHT_BYTES], "big"),
                index=int.from_bytes(position[kl.HEIGHT_BYTES :], "big"),
                tx_id=bytes(raw[_P:]),
            )
        )
        newer, position = position, bytes(raw[:_P])
    return out


def upgrade_from_schema_2(txn: Txn, dbs: dict[str, Any], legacy: Any) -> int:
    """Convert schema 2's history (account ‖ position -> tx id, in `legacy`) into chains,
    inside the caller's write transaction, and drop it. Streams: memory stays flat however
    long the history is. Returns the entries converted."""
    put_link = txn.cursor(db=dbs[kl.HISTORY_LINKS]).put
    put_head = txn.cursor(db=dbs[kl.HISTORY_HEADS]).put
    converted = 0
    last_account: bytes | None = None
    previous = NO_PREVIOUS
    for key, tx_id in txn.cursor(db=legacy):
        account, position = bytes(key[: kl.KEY_BYTES]), bytes(key[kl.KEY_BYTES :])
        if len(position) != _P:
            raise LedgerCorruptError(f"schema 2 history key {bytes(key).hex()} is malformed")
        if account != last_account:  # keys are account-major: the previous chain is complete
            if last_account is not None:
                put_head(last_account, previous)
            last_account, previous = account, NO_PREVIOUS
        put_link(position + account, previous + bytes(tx_id))
        previous = position
        converted += 1
    if last_account is not None:
        put_head(last_account, previous)
    txn.drop(legacy, delete=True)
    return converted
