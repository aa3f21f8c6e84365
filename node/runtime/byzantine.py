"""FAULT DRILL ONLY: misbehaving validators, to show the others stay safe and live.

Reachable only through `assetledger node --byzantine MODE` (and `cluster restart
--byzantine MODE`); a node started without that flag never builds anything from this file.
Each mode is a filter around the honest, unchanged replica (between the driver and the p2p
network, or between the proposer and the mempool): the misbehaviour is exactly what leaves
the process.

  withhold-votes   sends no PREPARE and no COMMIT (a silent voter: PRE-PREPAREs, checkpoints,
                   view changes, gossip and state transfer still go out)
  censor           as primary, leaves every transaction of half the signers (those whose
                   public key starts with an odd byte) out of its blocks, while ordering the
                   others': the chain keeps moving, so only the backups' per-request wait
                   replaces it (docs/consensus.md, R8a)
"""

from __future__ import annotations

import logging
from enum import StrEnum

import trio

from consensus.encoding import DecodeError, DecodeLimits, unpack
from consensus.epoch_replica import EPOCH_PREFIX_BYTES
from consensus.messages import Kind
from node.mempool import Mempool, PendingTx
from node.runtime.driver import PeerTransport
from node.runtime.peer_wire import PeerKind

# Our own outgoing envelopes (trusted): only the first bytes need a look, but the whole
# message is decoded; a peer frame is the largest thing we can send.
_OUTGOING_LIMITS = DecodeLimits(
    buffer_bytes_max=256 << 20, bin_bytes_max=256 << 20, array_items_max=1 << 20
)
_WITHHELD_KINDS = frozenset({Kind.PREPARE.value, Kind.COMMIT.value})
LOG_EVERY_WITHHELD = 100


class ByzantineMode(StrEnum):
    WITHHOLD_VOTES = "withhold-votes"
    CENSOR = "censor"


def consensus_kind(envelope: bytes) -> int | None:
    """The consensus message kind inside one of our PBFT envelopes, None for anything else."""
    try:
        outer = unpack(envelope, _OUTGOING_LIMITS)
        if not (isinstance(outer, list) and len(outer) == 2 and outer[0] == PeerKind.PBFT):
            return None
        inner = unpack(outer[1][EPOCH_PREFIX_BYTES:], _OUTGOING_LIMITS)  # after the epoch
    except (DecodeError, TypeError):
        return None
    if isinstance(inner, list) and inner and isinstance(inner[0], int):
        return inner[0]
    return None


class WithholdVotes:
    """A PeerTransport that drops this node's outgoing PREPARE and COMMIT messages."""

    def __init__(self, inner: PeerTransport, log: logging.Logger) -> None:
        self._inner = inner
        self._log = log
        self.withheld = 0
        log.warning("byzantine drill: this node will send no PREPARE or COMMIT")

    @property
    def incoming(self) -> trio.MemoryReceiveChannel[tuple[str, bytes]]:
        return self._inner.incoming

    def _withhold(self, message: bytes) -> bool:
        if consensus_kind(message) not in _WITHHELD_KINDS:
            return False
        if self.withheld % LOG_EVERY_WITHHELD == 0:
            self._log.warning(
                "byzantine drill: withholding votes", extra={"withheld": self.withheld + 1}
            )
        self.withheld += 1
        return True

    def send(self, peer_name: str, message: bytes) -> bool:
        if self._withhold(message):
            return True  # "sent", as far as the driver can tell
        return self._inner.send(peer_name, message)

    def broadcast(self, message: bytes) -> None:
        if not self._withhold(message):
            self._inner.broadcast(message)

    def heard_peers(self, within_ms: int) -> frozenset[str]:
        return self._inner.heard_peers(within_ms)


def censored(signer: bytes) -> bool:
    """The signers a `censor` node leaves out: half of them, predictably (odd first byte)."""
    return signer[0] % 2 == 1


class CensoringMempool(Mempool):
    """A mempool whose batches leave out every censored signer's transactions. They are
    marked proposed all the same, so they stay pending here, as a censor would keep them."""

    def __init__(self, *, log: logging.Logger, **limits: int) -> None:
        super().__init__(**limits)
        self._log = log
        self.left_out = 0
        log.warning("byzantine drill: as primary, this node will censor half the signers")

    def take_batch(
        self, *, txs_max: int, bytes_max: int, tx_overhead_bytes: int = 0
    ) -> list[PendingTx]:
        batch = super().take_batch(
            txs_max=txs_max, bytes_max=bytes_max, tx_overhead_bytes=tx_overhead_bytes
        )
        kept = [tx for tx in batch if not censored(tx.signer)]
        if len(kept) < len(batch):
            if self.left_out % LOG_EVERY_WITHHELD == 0:
                self._log.warning(
                    "byzantine drill: leaving transactions out",
                    extra={"left_out": self.left_out + len(batch) - len(kept)},
                )
            self.left_out += len(batch) - len(kept)
        return kept


def misbehaving_transport(
    mode: ByzantineMode, inner: PeerTransport, log: logging.Logger
) -> PeerTransport:
    if mode is ByzantineMode.WITHHOLD_VOTES:
        return WithholdVotes(inner, log)
    return inner  # the other modes leave the traffic alone


def misbehaving_mempool(mode: ByzantineMode | None, log: logging.Logger, **limits: int) -> Mempool:
    if mode is ByzantineMode.CENSOR:
        return CensoringMempool(log=log, **limits)
    return Mempool(**limits)
