"""FAULT DRILL ONLY: misbehaving validators, to show the others stay safe and live.

Reachable only through `assetledger node --byzantine MODE` (and `cluster restart
--byzantine MODE`); a node started without that flag never builds anything from this file.
Each mode is a filter between the consensus driver and the p2p network, so the replica
itself stays honest and unchanged: the misbehaviour is exactly what leaves the process.

  withhold-votes   sends no PREPARE and no COMMIT (a silent voter: PRE-PREPAREs, checkpoints,
                   view changes, gossip and state transfer still go out)
"""

from __future__ import annotations

import logging
from enum import StrEnum

import trio

from consensus.encoding import DecodeError, DecodeLimits, unpack
from consensus.epoch_replica import EPOCH_PREFIX_BYTES
from consensus.messages import Kind
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


def misbehaving_transport(
    mode: ByzantineMode, inner: PeerTransport, log: logging.Logger
) -> PeerTransport:
    if mode is ByzantineMode.WITHHOLD_VOTES:
        return WithholdVotes(inner, log)
    raise ValueError(f"unknown byzantine mode {mode!r}")
