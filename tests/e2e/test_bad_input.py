"""Hostile or broken input on both ports: a clear refusal, nothing changes, the node serves on."""

from __future__ import annotations

import struct
from typing import Any

import nacl.signing
import pytest
import trio

from config.keyfile import load_key_file
from node.api.framing import FrameDecoder, decode_body, decode_limits_for, encode_body
from node.api.requests import request_body
from node.client import ApiError
from node.cluster.bootstrap import bring_up, commit_probe
from node.cluster.processes import ClusterProcesses
from node.tx import Kind, make_tx
from p2p.errors import HandshakeError
from p2p.handshake import perform_initiator
from tests.e2e.helpers import ASSET, connect, converged, setup_holders

pytestmark = pytest.mark.e2e
FRAME_MAX = 1 << 20
READ_TIMEOUT_S = 10.0


async def _raw_exchange(procs: ClusterProcesses, name: str, data: bytes) -> tuple[list[Any], bool]:
    """Send raw bytes to the client port; the frames answered and whether the node closed."""
    entry = procs.layout.node(name)
    decoder = FrameDecoder(FRAME_MAX)
    frames: list[Any] = []
    closed = False
    with trio.fail_after(READ_TIMEOUT_S):
        stream = await trio.open_tcp_stream(entry.host, entry.client_port)
        async with stream:
            await stream.send_all(data)
            while True:
                try:
                    chunk = await stream.receive_some(65536)
                except trio.BrokenResourceError:
                    closed = True
                    break
                if not chunk:
                    closed = True
                    break
                for body in decoder.feed(chunk):
                    frames.append(decode_body(body, decode_limits_for(FRAME_MAX)))
                if frames and frames[-1][1] == "ok":
                    break  # a well-formed request answered; the connection stays open
    return frames, closed


def _error(frame: list[Any]) -> dict[str, Any]:
    assert frame[1] == "error", frame
    return frame[2]


async def _still_serving(procs: ClusterProcesses) -> None:
    for name in procs.names:
        async with connect(procs, name) as c:
            await c.status()
    await commit_probe(procs, timeout_s=10)


async def test_bad_frames_on_the_client_port_are_refused_and_the_node_serves_on(
    procs: ClusterProcesses,
) -> None:
    await bring_up(procs)
    # Not a frame at all (an HTTP request): its "length" is far above the frame limit.
    frames, closed = await _raw_exchange(procs, "node-0", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert closed and _error(frames[-1])["code"] == "frame_too_large"
    # A frame of the right size holding garbage instead of msgpack.
    frames, closed = await _raw_exchange(procs, "node-0", struct.pack(">I", 6) + b"\xc1\xc1junk")
    assert closed and _error(frames[-1])["code"] == "malformed_frame"
    # Valid msgpack, wrong shape.
    frames, closed = await _raw_exchange(procs, "node-0", encode_body({"hello": 1}, FRAME_MAX))
    assert closed and _error(frames[-1])["code"] == "malformed_frame"
    # An oversized frame announced and partly sent.
    big = struct.pack(">I", 64 << 20) + b"\x00" * 65536
    frames, closed = await _raw_exchange(procs, "node-1", big)
    assert closed and _error(frames[-1])["code"] == "frame_too_large"
    # A well-formed request for an unknown operation: an error, the connection stays usable.
    frames, closed = await _raw_exchange(
        procs,
        "node-1",
        encode_body(request_body(7, "explode", {}), FRAME_MAX)
        + encode_body(request_body(8, "status", {}), FRAME_MAX),
    )
    assert _error(frames[0])["code"] == "unknown_op" and frames[0][0] == 7
    assert frames[1][0] == 8 and frames[1][1] == "ok"
    await _still_serving(procs)


async def test_bad_transactions_are_refused_with_their_reason(procs: ClusterProcesses) -> None:
    await bring_up(procs)
    alice, bob = nacl.signing.SigningKey.generate(), nacl.signing.SigningKey.generate()
    await setup_holders(procs, [alice, bob], each=1_000, via="node-1")
    bob_pub = bytes(bob.verify_key)
    transfer = {"asset_id": ASSET, "to_account": bob_pub, "amount": 10}
    async with connect(procs, "node-2") as c:
        chain_id = await c.chain_id()
        nonce = await c.next_nonce(bytes(alice.verify_key))
        done = await c.send(Kind.TRANSFER, transfer, key=alice, wait=True)
        assert done.status == "committed", done
        before = await c.status()

        async def refused(raw: bytes, code: str = "rejected") -> ApiError:
            with pytest.raises(ApiError) as caught:
                await c.submit(raw)
            assert caught.value.code == code, caught.value
            return caught.value

        other = make_tx(
            Kind.TRANSFER, transfer, signer_key=alice, nonce=nonce + 1, chain_id="other-chain"
        )
        assert (await refused(other.encode())).reason == "wrong_chain"
        good = make_tx(
            Kind.TRANSFER, transfer, signer_key=alice, nonce=nonce + 1, chain_id=chain_id
        )
        forged = bytearray(good.encode())
        forged[-1] ^= 0x01  # last byte of the signature
        assert (await refused(bytes(forged))).reason == "bad_signature"
        stolen = make_tx(
            Kind.TRANSFER, transfer, signer_key=bob, nonce=0, chain_id=chain_id
        ).encode()
        # bob's body signed, then presented as alice's: the signature does not match the signer
        assert (
            await refused(stolen.replace(bytes(bob.verify_key), bytes(alice.verify_key)))
        ).reason == "bad_signature"
        reused = make_tx(
            Kind.TRANSFER,
            {**transfer, "amount": 11},
            signer_key=alice,
            nonce=nonce,
            chain_id=chain_id,
        )
        assert (await refused(reused.encode())).reason == "nonce_used"
        # Above the chain's tx_bytes_max: refused by the request layer, before decoding.
        assert "tx" in (await refused(b"\x92" + b"\x00" * 40_000, "bad_request")).message
        undecodable = await refused(b"\x92\xc1\xc1")
        assert undecodable.reason is not None, undecodable
        # A replay of the committed transaction changes nothing: same id, same receipt.
        replay = await c.submit_and_wait(
            make_tx(Kind.TRANSFER, transfer, signer_key=alice, nonce=nonce, chain_id=chain_id)
        )
        assert (replay.tx_id, replay.height) == (done.tx_id, done.height)
        assert await c.balance(ASSET, bob_pub) == 1_010
        # Nothing the refusals carried reached a block.
        after = await c.status()
        assert after.height == before.height and after.state_digest == before.state_digest
    await _still_serving(procs)
    await converged(procs)


async def test_an_unknown_key_dialling_the_peer_port_is_refused(procs: ClusterProcesses) -> None:
    await bring_up(procs)
    stranger = nacl.signing.SigningKey.generate()
    regulator = load_key_file(procs.layout.regulator_key)  # a real key, just not a validator's
    entry = procs.layout.node("node-0")
    for identity in (stranger, regulator):
        with trio.fail_after(READ_TIMEOUT_S):
            stream = await trio.open_tcp_stream(entry.host, entry.peer_port)
            async with stream:
                with pytest.raises((HandshakeError, trio.BrokenResourceError)):
                    await perform_initiator(
                        stream,
                        chain_id=procs.layout.chain_id.encode(),
                        identity=identity,
                        expected_peer_key=bytes.fromhex(entry.public_key),
                    )
    # Garbage instead of a HELLO is dropped too.
    with trio.fail_after(READ_TIMEOUT_S):
        stream = await trio.open_tcp_stream(entry.host, entry.peer_port)
        async with stream:
            await stream.send_all(b"\x00" * 200)
            with pytest.raises(trio.BrokenResourceError):
                while await stream.receive_some(4096):
                    pass
                raise trio.BrokenResourceError
    await _still_serving(procs)
    assert "unknown-key" in procs.log_tail("node-0", 200)
