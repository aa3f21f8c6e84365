"""The drill filters: withhold-votes drops exactly this node's PREPAREs and COMMITs; censor
leaves exactly the censored signers out of its batches (and only as a fault drill)."""

from __future__ import annotations

import logging

import trio

from consensus.epoch_replica import frame
from consensus.messages import Checkpoint, Commit, Prepare, PrePrepare, encode_message
from node.mempool import Mempool, PendingTx
from node.runtime.byzantine import (
    ByzantineMode,
    CensoringMempool,
    censored,
    consensus_kind,
    misbehaving_mempool,
    misbehaving_transport,
)
from node.runtime.peer_wire import PeerKind, encode_envelope

DIGEST = bytes(32)
SIG = bytes(64)


class RecordingTransport:
    def __init__(self) -> None:
        self.incoming: trio.MemoryReceiveChannel[tuple[str, bytes]]
        _, self.incoming = trio.open_memory_channel[tuple[str, bytes]](1)
        self.sent: list[tuple[str | None, bytes]] = []

    def send(self, peer_name: str, message: bytes) -> bool:
        self.sent.append((peer_name, message))
        return True

    def broadcast(self, message: bytes) -> None:
        self.sent.append((None, message))

    def heard_peers(self, within_ms: int) -> frozenset[str]:
        return frozenset()


def _pbft(message: object) -> bytes:
    # As the driver sends it: the replica's output, framed with its epoch.
    return encode_envelope(PeerKind.PBFT, frame(3, encode_message(message)))  # type: ignore[arg-type]


def test_only_votes_are_withheld() -> None:
    votes = [
        _pbft(Prepare(view=0, seq=1, digest=DIGEST, replica="node-3", signature=SIG)),
        _pbft(Commit(view=0, seq=1, digest=DIGEST, replica="node-3", signature=SIG)),
    ]
    others = [
        _pbft(
            PrePrepare(view=0, seq=1, digest=DIGEST, replica="node-3", signature=SIG, payload=b"p")
        ),
        _pbft(Checkpoint(seq=16, state_digest=DIGEST, replica="node-3", signature=SIG)),
        encode_envelope(PeerKind.TXS, [b"tx"]),
        encode_envelope(PeerKind.FETCH, [1, 2]),
        b"\xc1 not msgpack",
    ]
    inner = RecordingTransport()
    transport = misbehaving_transport(
        ByzantineMode.WITHHOLD_VOTES, inner, logging.getLogger("test")
    )
    for message in votes + others:
        transport.broadcast(message)
        assert transport.send("node-0", message)
    assert [m for _, m in inner.sent] == [m for m in others for _ in range(2)]
    assert transport.withheld == 4  # type: ignore[attr-defined]
    assert transport.incoming is inner.incoming
    assert consensus_kind(encode_envelope(PeerKind.TXS, [])) is None


def _pending(first_byte: int, nonce: int) -> PendingTx:
    signer = bytes([first_byte]) * 32
    return PendingTx(
        tx_id=bytes([first_byte, nonce]) * 16, signer=signer, nonce=nonce, raw=b"x", received_ms=0
    )


def test_the_censor_leaves_out_half_the_signers_and_keeps_their_transactions() -> None:
    log = logging.getLogger("test")
    assert type(misbehaving_mempool(None, log, capacity_txs=10, gap_wait_ms=10)) is Mempool
    pool = misbehaving_mempool(ByzantineMode.CENSOR, log, capacity_txs=10, gap_wait_ms=10)
    assert isinstance(pool, CensoringMempool)
    assert misbehaving_transport(ByzantineMode.CENSOR, transport := RecordingTransport(), log) is (
        transport
    )
    for first_byte in (1, 2, 3, 4):  # odd: censored
        for nonce in (0, 1):
            assert pool.add(_pending(first_byte, nonce), next_nonce=0) is None
    batch = pool.take_batch(txs_max=100, bytes_max=10_000)
    assert sorted((tx.signer[0], tx.nonce) for tx in batch) == [(2, 0), (2, 1), (4, 0), (4, 1)]
    assert all(not censored(tx.signer) for tx in batch)
    assert len(pool) == 8 and pool.left_out == 4  # still pending here, as a censor keeps them
    assert pool.take_batch(txs_max=100, bytes_max=10_000) == []
