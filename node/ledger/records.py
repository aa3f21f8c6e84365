"""Stored records and their canonical msgpack layouts (fixed-order arrays).

Store values are written by us, so reads decode with plain `msgpack.unpackb` (no canonical
re-check: that protects against untrusted bytes, and these are not).

Hot records (accounts, assets, receipts) are NamedTuples, not dataclasses: a block of 1,000
transfers decodes and builds thousands of them, and a frozen dataclass costs ~4x as much to
construct (measured). They are just as immutable. Flat records whose items are only
None/bool/int/bytes/str are written with `msgpack.packb`, which for that shape yields
exactly `consensus.encoding.pack`'s bytes (tests/node/ledger/test_records.py checks it)
without its per-item validation walk; nested ones go through `pack`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NamedTuple

import msgpack

from consensus.encoding import pack
from node.ledger.reasons import ReasonCode


class AccountStatus(StrEnum):
    REGISTERED = "registered"
    REVOKED = "revoked"
    RECOVERED = "recovered"  # its balances moved to `recovered_to`; it can never act again


class Authority(StrEnum):
    REGULATOR = "regulator"
    ISSUER = "issuer"


@dataclass(frozen=True, slots=True, kw_only=True)
class Freeze:
    asset_id: str | None  # None: the whole account
    reason_code: str
    order_ref: str
    by: str  # Authority: an issuer may not lift a regulator's freeze
    tx_id: bytes
    height: int

    def wire(self) -> list[Any]:
        return [self.asset_id, self.reason_code, self.order_ref, self.by, self.tx_id, self.height]

    @classmethod
    def from_wire(cls, w: list[Any]) -> Freeze:
        return cls(
            asset_id=w[0], reason_code=w[1], order_ref=w[2], by=w[3], tx_id=w[4], height=w[5]
        )


class AccountRecord(NamedTuple):
    category: str
    kyc_hash: bytes
    expires_at_ms: int | None
    status: str  # AccountStatus
    recovered_to: bytes | None
    account_freeze: Freeze | None  # whole-account freeze
    asset_freezes: tuple[Freeze, ...]  # per-asset freezes, sorted by asset id
    assets: tuple[str, ...]  # every asset this account has ever held, sorted (for recovery)
    registered_height: int

    def is_frozen_for(self, asset_id: str | None) -> bool:
        if self.account_freeze is not None:
            return True
        if asset_id is None or not self.asset_freezes:
            return False
        return any(f.asset_id == asset_id for f in self.asset_freezes)

    def freezes(self) -> tuple[Freeze, ...]:
        head = () if self.account_freeze is None else (self.account_freeze,)
        return head + self.asset_freezes

    def encode(self) -> bytes:
        return pack(
            [
                self.category,
                self.kyc_hash,
                self.expires_at_ms,
                self.status,
                self.recovered_to,
                None if self.account_freeze is None else self.account_freeze.wire(),
                [f.wire() for f in self.asset_freezes],
                list(self.assets),
                self.registered_height,
            ]
        )

    @classmethod
    def decode(cls, data: bytes) -> AccountRecord:
        w = msgpack.unpackb(data, raw=False, use_list=False)
        if w[5] is not None or w[6]:
            w = (
                *w[:5],
                None if w[5] is None else Freeze.from_wire(w[5]),
                tuple(Freeze.from_wire(f) for f in w[6]),
                *w[7:],
            )
        return tuple.__new__(cls, w)

    @classmethod
    def decode_shared(cls, data: bytes, seen: dict[Any, Any]) -> AccountRecord:
        """`decode`, with equal category, status and asset-list values shared through `seen`:
        a million records resident in the state cache hold a handful of distinct ones, and
        sharing them saves about a third of its memory (docs/benchmarks.md, round 10)."""
        w = cls.decode(data)
        c, s, a = w.category, w.status, w.assets
        c, s, a = seen.setdefault(c, c), seen.setdefault(s, s), seen.setdefault(a, a)
        return tuple.__new__(cls, (c, w[1], w[2], s, w[4], w[5], w[6], a, w[8]))


class AssetRecord(NamedTuple):
    asset_id: str
    name: str
    decimals: int
    cap: int
    issuer: bytes
    document_hash: bytes | None
    supply: int
    paused: bool
    created_height: int

    def encode(self) -> bytes:
        return msgpack.packb(tuple(self), use_bin_type=True)  # flat: see module docstring

    @classmethod
    def decode(cls, data: bytes) -> AssetRecord:
        return tuple.__new__(cls, msgpack.unpackb(data, raw=False))


class ReceiptStatus(StrEnum):
    APPLIED = "applied"
    REJECTED = "rejected"


class Receipt(NamedTuple):
    """The outcome of one transaction in one block.

    `detail` is a human-readable explanation; it is not stored and not part of any digest
    (library error texts may differ between nodes), only the codes are.
    """

    tx_id: bytes
    height: int
    index: int  # type: ignore[assignment]  # a field named like tuple.index (shadowing it)
    status: ReceiptStatus
    reason: ReasonCode | None = None
    kind: str | None = None
    signer: bytes | None = None
    reason_code: str | None = None  # audit: the order's reason (freeze, forced transfer...)
    order_ref: str | None = None  # audit: the order reference
    detail: str = ""

    @property
    def applied(self) -> bool:
        return self.status is ReceiptStatus.APPLIED

    def encode(self, pack: Callable[[Any], bytes] | None = None) -> bytes:
        """Flat (see module docstring); `detail` is deliberately left out. `pack` may be a
        caller-owned `msgpack.Packer(use_bin_type=True).pack` (saves building one per call;
        a Packer is not thread-safe, so never share one across threads)."""
        # The first nine fields, in order (everything but `detail`).
        return (pack or _packb)(self[:9])

    @classmethod
    def decode(cls, data: bytes) -> Receipt:
        w = msgpack.unpackb(data, raw=False)
        return cls(
            tx_id=w[0],
            height=w[1],
            index=w[2],
            status=ReceiptStatus(w[3]),
            reason=None if w[4] is None else ReasonCode(w[4]),
            kind=w[5],
            signer=w[6],
            reason_code=w[7],
            order_ref=w[8],
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class BlockRecord:
    height: int
    timestamp_ms: int
    prev_block_hash: bytes
    tx_root: bytes
    block_hash: bytes
    state_digest: bytes
    txs: tuple[bytes, ...]
    outcomes: tuple[str, ...]  # "applied" or the reason code, per tx
    certificate: bytes | None = None  # stored separately; filled in by the query

    def encode(self) -> bytes:
        # Only ints, bytes and flat lists of bytes/str: msgpack's encoding is the canonical one.
        return msgpack.packb(
            (
                self.height,
                self.timestamp_ms,
                self.prev_block_hash,
                self.tx_root,
                self.block_hash,
                self.state_digest,
                self.txs,
                self.outcomes,
            ),
            use_bin_type=True,
        )

    @classmethod
    def decode(cls, data: bytes, certificate: bytes | None = None) -> BlockRecord:
        w = msgpack.unpackb(data, raw=False)
        return cls(
            height=w[0],
            timestamp_ms=w[1],
            prev_block_hash=w[2],
            tx_root=w[3],
            block_hash=w[4],
            state_digest=w[5],
            txs=tuple(w[6]),
            outcomes=tuple(w[7]),
            certificate=certificate,
        )


def _packb(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def encode_int(value: int) -> bytes:
    # msgpack's int encoding is already the canonical one (smallest form), so no walk needed.
    return msgpack.packb(value)


def decode_int(data: bytes) -> int:
    return msgpack.unpackb(data)
