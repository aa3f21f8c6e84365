"""The withhold-votes drill filter drops exactly this node's PREPAREs and COMMITs."""

from __future__ import annotations

import logging

import trio

from consensus.epoch_replica import frame
from consensus.messages import Checkpoint, Commit, Prepare, PrePrepare, encode_message
from node.runtime.byzantine import ByzantineMode, consensus_kind, misbehaving_transport
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
